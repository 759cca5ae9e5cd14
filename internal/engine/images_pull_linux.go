package engine

import (
	"context"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

// PullOptions tune Pull.
type PullOptions struct {
	// Platform picks one of a multi-platform image's (--platform); nil
	// picks the host's.
	Platform *ocispec.Platform
	// Progress receives the blobs' updates: downloads, then "Extracting"
	// and "Pull complete" as each layer is unpacked.
	Progress registry.Progress
}

// PullResult is what Pull did.
type PullResult struct {
	*registry.PullResult
	// Image is the image as recorded.
	Image image.Image
	// Newer is false when nothing changed: the reference named this image
	// already and no blob was downloaded (docker's "Image is up to date").
	Newer bool
}

// Pull pulls ref (a docker reference; a name alone means :latest) from its
// registry into the content store and unpacks its layers into the layer
// store as their blobs arrive: each layer is decompressed while others
// download and applied in order. The image is then recorded under the
// reference and its repository digest. A content Lease is held throughout,
// so no garbage collection removes a blob before the image is recorded.
func (s *Images) Pull(ctx context.Context, ref string, opts PullOptions) (*PullResult, error) {
	r, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	r = r.WithDefaultTag()
	st, done, err := s.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer done()

	var before string
	if old, err := s.is.Get(ctx, r.String()); err == nil {
		before = old.ID.String()
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u := newUnpacker(ctx, s.cs, st, opts.Progress)
	var res *registry.PullResult
	var pullErr error
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		res, pullErr = registry.Pull(ctx, s.cs, r, registry.PullOptions{
			Options:  s.opts.Registry,
			Platform: opts.Platform,
			Progress: opts.Progress,
			LayerReady: func(i int, l registry.Layer) {
				u.ready(i, unpackLayer{Blob: l.Blob, DiffID: l.DiffID, Ahead: l.Fetched})
			},
		})
		if pullErr != nil {
			cancel(pullErr)
			return
		}
		u.finish(len(res.Layers))
	}()
	out, err := u.run(ctx)
	if err != nil {
		cancel(err)
	}
	<-pulled
	if pullErr != nil {
		// run failed too (the pull's failure cancelled it) and released
		// what it held.
		return nil, pullErr
	}
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}

	img := res.Image
	for i := range img.Layers {
		img.Layers[i].Size = out.Sizes[i]
	}
	img.Size = 0
	refs := []image.Reference{r}
	if r.Digest == "" {
		refs = append(refs, image.Reference{Domain: r.Domain, Path: r.Path, Digest: res.RepoDigest})
	}
	rec, err := s.record(ctx, st, img, refs)
	if err != nil {
		releaseAll(st, []digest.Digest{out.Top})
		return nil, fmt.Errorf("pull %s: %w", r.Familiar(), err)
	}
	return &PullResult{PullResult: res, Image: rec, Newer: res.Fetched > 0 || before != rec.ID.String()}, nil
}
