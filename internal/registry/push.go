package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// PushOptions tune Push.
type PushOptions struct {
	Options
	// Progress receives an update per layer blob; nil for none.
	Progress Progress
	// Jobs is how many blobs upload at once; 0 means DefaultJobs.
	Jobs int
}

// PushResult describes what Push did.
type PushResult struct {
	// Reference is the reference pushed to, with :latest added when it
	// named neither a tag nor a digest.
	Reference image.Reference
	// Manifest is the manifest or index the reference now names.
	Manifest ocispec.Descriptor
	// Uploaded counts the blobs uploaded; the others were in the registry.
	Uploaded int
}

// Push uploads the image that desc (a manifest or an index, stored in cs
// with everything it names) describes to ref: blobs the registry lacks
// (a HEAD tells), then the manifests, the one ref names last. A reference
// with a digest must name desc itself.
func Push(ctx context.Context, cs *content.Store, ref image.Reference, desc ocispec.Descriptor, opts PushOptions) (*PushResult, error) {
	ref = ref.WithDefaultTag()
	what := "push " + ref.Familiar()
	if ref.Digest != "" && ref.Digest != desc.Digest {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: the reference's digest is not the image's (%s)", what, desc.Digest))
	}
	repo, err := opts.repository(ref)
	if err != nil {
		return nil, err
	}
	s, err := opts.connect(ctx, repo, transport.PushScope)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer s.close()
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	ps := &pusher{s: s, cs: cs, p: opts.Progress, jobs: jobs, done: map[digest.Digest]bool{}}

	var target name.Reference = repo.Digest(desc.Digest.String())
	if ref.Digest == "" {
		target = repo.Tag(ref.Tag)
	}
	if err := ps.manifest(ctx, desc, target, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &PushResult{Reference: ref, Manifest: desc, Uploaded: ps.uploaded}, nil
}

type pusher struct {
	s    *session
	cs   *content.Store
	p    Progress
	jobs int

	mu       sync.Mutex
	done     map[digest.Digest]bool // blobs already handled in this push
	uploaded int
}

// manifest pushes what desc names, then desc itself as target.
func (ps *pusher) manifest(ctx context.Context, desc ocispec.Descriptor, target name.Reference, depth int) error {
	data, err := ps.cs.ReadBlob(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	mt := desc.MediaType
	if mt == "" {
		mt = image.DetectMediaType(data)
	}
	switch {
	case image.IsIndex(mt):
		if depth >= maxIndexDepth {
			return errdefs.InvalidArgument(fmt.Errorf("indexes nested more than %d deep", maxIndexDepth))
		}
		idx, err := image.ParseIndex(mt, data)
		if err != nil {
			return fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		for _, child := range idx.Manifests {
			if !image.IsIndex(child.MediaType) && !image.IsManifest(child.MediaType) {
				// Not an image (an attestation, an artifact): push it as a blob.
				if err := ps.blobs(ctx, []ocispec.Descriptor{child}, false); err != nil {
					return err
				}
				continue
			}
			if !ps.cs.Exists(ctx, child.Digest) {
				return errdefs.NotFound(fmt.Errorf("index %s names manifest %s (%s), which is not stored here: pull it first, or push a single platform",
					desc.Digest, child.Digest, platformName(child.Platform)))
			}
			if err := ps.manifest(ctx, child, ps.s.repo.Digest(child.Digest.String()), depth+1); err != nil {
				return err
			}
		}
	case image.IsManifest(mt):
		m, err := image.ParseManifest(mt, data)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		if err := ps.blobs(ctx, []ocispec.Descriptor{m.Config}, false); err != nil {
			return err
		}
		if err := ps.blobs(ctx, m.Layers, true); err != nil {
			return err
		}
	default:
		return errdefs.NotImplemented(fmt.Errorf("manifest %s: %w: %q", desc.Digest, image.ErrUnsupported, mt))
	}
	err = remote.Put(target, rawManifest{data: data, mediaType: mt},
		remote.WithTransport(ps.s.rt), remote.WithContext(ctx))
	return explain(err, "put manifest "+desc.Digest.String(), ps.s.repo, ps.s.authed)
}

func platformName(p *ocispec.Platform) string {
	if p == nil {
		return "no platform"
	}
	return image.FormatPlatform(*p)
}

// blobs uploads the blobs the registry lacks, jobs at once, reporting
// progress for layers.
func (ps *pusher) blobs(ctx context.Context, descs []ocispec.Descriptor, layers bool) error {
	var todo []ocispec.Descriptor
	ps.mu.Lock()
	for _, d := range descs {
		if ps.done[d.Digest] {
			continue
		}
		ps.done[d.Digest] = true
		todo = append(todo, d)
	}
	ps.mu.Unlock()
	p := ps.p
	if !layers {
		p = nil
	}
	for _, d := range todo {
		report(p, Update{Digest: d.Digest, Status: Preparing, Total: d.Size})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ps.jobs)
	for _, d := range todo {
		g.Go(func() error {
			if err := ps.blob(gctx, d, p); err != nil {
				report(p, Update{Digest: d.Digest, Status: Failed, Total: d.Size})
				return fmt.Errorf("blob %s: %w", d.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("upload blobs: %w", ctx.Err())
		}
		return err
	}
	return nil
}

func (ps *pusher) blob(ctx context.Context, d ocispec.Descriptor, p Progress) error {
	if !ps.cs.Exists(ctx, d.Digest) {
		return errdefs.NotFound(fmt.Errorf("not stored here: %w", content.ErrNotFound))
	}
	exists, err := ps.exists(ctx, d)
	if err != nil {
		return err
	}
	if exists {
		report(p, Update{Digest: d.Digest, Status: LayerExists, Current: d.Size, Total: d.Size})
		return nil
	}
	l, err := partial.CompressedToLayer(&storeBlob{ctx: ctx, cs: ps.cs, desc: d, p: p})
	if err != nil {
		return err
	}
	if err := remote.WriteLayer(ps.s.repo, l, remote.WithTransport(ps.s.rt), remote.WithContext(ctx)); err != nil {
		return explain(err, "upload", ps.s.repo, ps.s.authed)
	}
	ps.mu.Lock()
	ps.uploaded++
	ps.mu.Unlock()
	report(p, Update{Digest: d.Digest, Status: Pushed, Current: d.Size, Total: d.Size})
	return nil
}

// exists asks the registry whether it holds d (HEAD).
func (ps *pusher) exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, ps.s.url("blobs/"+d.Digest.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := ps.s.client().Do(req)
	if err != nil {
		return false, explain(err, "check blob", ps.s.repo, ps.s.authed)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.ContentLength < 0 || resp.ContentLength == d.Size, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, explain(transport.CheckError(resp, http.StatusOK, http.StatusNotFound), "check blob", ps.s.repo, ps.s.authed)
}

// storeBlob is a blob of the content store as go-containerregistry uploads
// it. It keeps the push's context because the interface it implements takes
// none.
type storeBlob struct {
	ctx  context.Context
	cs   *content.Store
	desc ocispec.Descriptor
	p    Progress
}

func (b *storeBlob) Digest() (v1.Hash, error) { return v1.NewHash(b.desc.Digest.String()) }
func (b *storeBlob) Size() (int64, error)     { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.desc.MediaType), nil
}

// Compressed opens the blob; each upload attempt opens it anew, and
// progress starts again from 0.
func (b *storeBlob) Compressed() (io.ReadCloser, error) {
	rc, err := b.cs.Open(b.ctx, b.desc.Digest)
	if err != nil {
		return nil, err
	}
	u := Update{Digest: b.desc.Digest, Status: Pushing, Total: b.desc.Size}
	report(b.p, u)
	return &progressReader{rc: rc, p: b.p, u: u}, nil
}

type progressReader struct {
	rc io.ReadCloser
	p  Progress
	u  Update
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.rc.Read(b)
	if n > 0 && pr.p != nil {
		pr.u.Current += int64(n)
		pr.p.Update(pr.u)
	}
	return n, err
}

func (pr *progressReader) Close() error { return pr.rc.Close() }

// rawManifest is a stored manifest as go-containerregistry puts it.
type rawManifest struct {
	data      []byte
	mediaType string
}

func (r rawManifest) RawManifest() ([]byte, error) { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) {
	return types.MediaType(r.mediaType), nil
}
