package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Reference names the new image (REPOSITORY[:TAG]); "" leaves it
	// untagged.
	Reference string
	// Changes are Dockerfile instructions applied to the config (--change).
	Changes []string
	// Message is the commit message (-m); "" means "Imported from -".
	Message string
	// Platform is the image's platform; nil means the host's.
	Platform *ocispec.Platform
}

// Import makes a one-layer image from the root filesystem tar r (plain or
// compressed), as `docker import` does: the layer is stored gzip-compressed
// in the content store and unpacked into the layer store.
func (s *Images) Import(ctx context.Context, r io.Reader, opts ImportOptions) (image.Image, error) {
	var refs []image.Reference
	if opts.Reference != "" {
		ref, err := image.ParseReference(opts.Reference)
		if err != nil {
			return image.Image{}, err
		}
		if ref.Digest != "" {
			return image.Image{}, fmt.Errorf("import: refusing to create a tag with a digest reference")
		}
		refs = append(refs, ref.WithDefaultTag())
	}
	var run image.RunConfig
	if err := ApplyChanges(&run, opts.Changes); err != nil {
		return image.Image{}, err
	}
	msg := opts.Message
	if msg == "" {
		msg = "Imported from -"
	}
	platform := image.HostPlatform()
	if opts.Platform != nil {
		platform = image.Normalize(*opts.Platform)
	}

	st, done, err := s.beginWrite(ctx)
	if err != nil {
		return image.Image{}, err
	}
	defer done()

	layer, diffID, err := s.storeLayer(ctx, r, ingestRef("import"))
	if err != nil {
		return image.Image{}, fmt.Errorf("import: %w", err)
	}
	created := timeNow().UTC()
	cfg := image.Config{
		Created:      &created,
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Config:       run,
		RootFS:       ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:      []ocispec.History{{Created: &created, Comment: msg}},
		Comment:      msg,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return image.Image{}, err
	}
	img, err := s.storeManifest(ctx, data, &cfg, []ocispec.Descriptor{layer})
	if err != nil {
		return image.Image{}, fmt.Errorf("import: %w", err)
	}
	if err := s.unpackStored(ctx, st, &img); err != nil {
		return image.Image{}, fmt.Errorf("import: %w", err)
	}
	out, err := s.record(ctx, st, img, refs)
	if err != nil {
		releaseAll(st, []digest.Digest{img.ChainID()})
		return image.Image{}, fmt.Errorf("import: %w", err)
	}
	return out, nil
}

// ingestRef names an ingest of content whose digest is known only at the
// end: unique, so that two imports never share one.
func ingestRef(what string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return what + "-" + hex.EncodeToString(b[:])
}
