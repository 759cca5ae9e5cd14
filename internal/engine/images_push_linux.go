package engine

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

// Push uploads the image that ref names locally to ref's registry, as
// `docker push` does: blobs the registry lacks, then the manifest under
// ref's tag. The manifest's digest becomes a repository digest of the image.
func (s *Images) Push(ctx context.Context, ref string, progress registry.Progress) (*registry.PushResult, error) {
	r, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	r = r.WithDefaultTag()
	img, err := s.is.Get(ctx, r.String())
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil, errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", r.FamiliarName()))
	}
	if err != nil {
		return nil, err
	}
	res, err := registry.Push(ctx, s.cs, r, img.Manifest, registry.PushOptions{Options: s.opts.Registry, Progress: progress})
	if err != nil {
		return nil, err
	}
	dref := image.Reference{Domain: r.Domain, Path: r.Path, Digest: res.Manifest.Digest}
	if _, err := s.is.Put(ctx, img, dref); err != nil {
		return res, fmt.Errorf("push %s: record its digest: %w", r.Familiar(), err)
	}
	return res, nil
}

// Tag points target at the image source names, as `docker tag` does.
func (s *Images) Tag(ctx context.Context, source, target string) error {
	r, err := image.ParseReference(target)
	if err != nil {
		return err
	}
	return s.is.Tag(ctx, source, r)
}
