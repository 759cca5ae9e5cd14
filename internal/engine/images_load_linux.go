package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/storage"
)

// Loaded is one image Load recorded.
type Loaded struct {
	// Name is the familiar reference it was loaded as; "" for an image
	// loaded without one (docker's "Loaded image ID").
	Name string
	ID   digest.Digest
	// Replaced is the image that Name named before, which is now untagged;
	// "" when none.
	Replaced digest.Digest
}

// maxArchiveJSON bounds the JSON files read from an archive.
const maxArchiveJSON = 16 << 20

// Load reads an image archive from r (plain or compressed) as `docker
// load` does: a docker-archive (manifest.json, as `docker save` writes) or
// an OCI image layout (index.json), found out from what it holds.
func (s *Images) Load(ctx context.Context, r io.Reader) ([]Loaded, error) {
	dir, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(ctx, r, dir); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return s.LoadDir(ctx, dir)
}

// LoadDir loads the images of an archive unpacked in dir, or of an OCI
// image layout directory.
func (s *Images) LoadDir(ctx context.Context, dir string) ([]Loaded, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer root.Close()
	st, done, err := s.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer done()

	l := &loader{s: s, st: st, root: root}
	switch {
	case exists(root, "manifest.json"):
		return l.docker(ctx)
	case exists(root, ocispec.ImageIndexFile):
		return l.oci(ctx)
	}
	return nil, errdefs.InvalidArgument(errors.New("load: unrecognized image archive: it holds neither manifest.json (docker-archive) nor index.json (OCI layout)"))
}

func exists(root *os.Root, name string) bool {
	_, err := root.Stat(name)
	return err == nil
}

type loader struct {
	s    *Images
	st   *storage.Store
	root *os.Root
}

func (l *loader) readJSON(name string, v any) ([]byte, error) {
	f, err := l.root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxArchiveJSON+1))
	if err != nil {
		return nil, fmt.Errorf("load: read %s: %w", name, err)
	}
	if len(data) > maxArchiveJSON {
		return nil, errdefs.InvalidArgument(fmt.Errorf("load: %s is larger than %d bytes", name, maxArchiveJSON))
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("load: %s: %w", name, err))
		}
	}
	return data, nil
}

// docker loads a docker-archive: each manifest.json entry is an image,
// its layers tars (compressed or not) in the archive.
func (l *loader) docker(ctx context.Context) ([]Loaded, error) {
	var entries []dockerManifest
	if _, err := l.readJSON("manifest.json", &entries); err != nil {
		return nil, err
	}
	var out []Loaded
	for _, e := range entries {
		cfgData, err := l.readJSON(cleanArchivePath(e.Config), nil)
		if err != nil {
			return out, err
		}
		cfg, err := image.ParseConfig(cfgData)
		if err != nil {
			return out, fmt.Errorf("load: %s: %w", e.Config, err)
		}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return out, errdefs.InvalidArgument(fmt.Errorf("load: %s names %d layers but its config %d", "manifest.json", len(e.Layers), len(cfg.RootFS.DiffIDs)))
		}
		var layers []ocispec.Descriptor
		for i, p := range e.Layers {
			desc, diffID, err := l.storeLayer(ctx, cleanArchivePath(p))
			if err != nil {
				return out, err
			}
			if diffID != cfg.RootFS.DiffIDs[i] {
				return out, errdefs.InvalidArgument(fmt.Errorf("load: layer %s hashes to %s, but the config says %s", p, diffID, cfg.RootFS.DiffIDs[i]))
			}
			layers = append(layers, desc)
		}
		img, err := l.s.storeManifest(ctx, cfgData, cfg, layers)
		if err != nil {
			return out, fmt.Errorf("load: %w", err)
		}
		var refs []image.Reference
		for _, t := range e.RepoTags {
			r, err := image.ParseReference(t)
			if err != nil {
				return out, fmt.Errorf("load: %w", err)
			}
			refs = append(refs, r.WithDefaultTag())
		}
		loaded, err := l.record(ctx, img, refs)
		out = append(out, loaded...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// cleanArchivePath makes an archive's path relative (os.Root refuses the
// rest).
func cleanArchivePath(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (l *loader) storeLayer(ctx context.Context, name string) (ocispec.Descriptor, digest.Digest, error) {
	f, err := l.root.Open(name)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	desc, diffID, err := l.s.storeLayer(ctx, f, ingestRef("load"))
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("load: layer %s: %w", name, err)
	}
	return desc, diffID, nil
}

// record unpacks img and records it under refs, saying what it did.
func (l *loader) record(ctx context.Context, img image.Image, refs []image.Reference) ([]Loaded, error) {
	if err := l.s.unpackStored(ctx, l.st, &img); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var out []Loaded
	for _, r := range refs {
		ld := Loaded{Name: r.Familiar(), ID: img.ID}
		if old, err := l.s.is.Get(ctx, r.String()); err == nil && old.ID != img.ID {
			ld.Replaced = old.ID
		}
		out = append(out, ld)
	}
	if len(refs) == 0 {
		out = append(out, Loaded{ID: img.ID})
	}
	if _, err := l.s.record(ctx, l.st, img, refs); err != nil {
		releaseAll(l.st, []digest.Digest{img.ChainID()})
		return nil, fmt.Errorf("load: %w", err)
	}
	return out, nil
}

// oci loads an OCI image layout: each index.json entry is an image (an
// index picks the host's platform), named by its annotations.
func (l *loader) oci(ctx context.Context) ([]Loaded, error) {
	data, err := l.readJSON(ocispec.ImageIndexFile, nil)
	if err != nil {
		return nil, err
	}
	idx, err := image.ParseIndex("", data)
	if err != nil {
		return nil, fmt.Errorf("load: %s: %w", ocispec.ImageIndexFile, err)
	}
	var out []Loaded
	for _, desc := range idx.Manifests {
		var refs []image.Reference
		if r, ok := ociName(desc.Annotations); ok {
			refs = append(refs, r)
		}
		img, err := l.ociImage(ctx, desc)
		if err != nil {
			return out, err
		}
		loaded, err := l.record(ctx, img, refs)
		out = append(out, loaded...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// ociName reads an index entry's name: containerd's annotation, else the
// OCI ref.name when it is a full reference (a bare tag names no
// repository).
func ociName(ann map[string]string) (image.Reference, bool) {
	for _, key := range []string{annotationContainerdName, annotationRefName} {
		v := ann[key]
		if v == "" || (key == annotationRefName && !strings.ContainsAny(v, "/:")) {
			continue
		}
		if r, err := image.ParseReference(v); err == nil && r.Digest == "" {
			return r.WithDefaultTag(), true
		}
	}
	return image.Reference{}, false
}

// blob copies the layout's blob desc into the content store, verified.
func (l *loader) blob(ctx context.Context, desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("load: descriptor digest %q: %w", desc.Digest, err))
	}
	if l.s.cs.Exists(ctx, desc.Digest) {
		return nil
	}
	f, err := l.root.Open(blobPath(desc.Digest))
	if err != nil {
		return fmt.Errorf("load: blob %s: %w", desc.Digest, err)
	}
	defer f.Close()
	if _, err := l.s.cs.Put(ctx, desc.Digest.String(), f, desc.Digest, desc.Size); err != nil {
		return fmt.Errorf("load: blob %s: %w", desc.Digest, err)
	}
	return nil
}

func (l *loader) readBlob(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > image.MaxManifestSize {
		return nil, errdefs.InvalidArgument(fmt.Errorf("load: %s: %d bytes is too large", desc.Digest, desc.Size))
	}
	if err := l.blob(ctx, desc); err != nil {
		return nil, err
	}
	return l.s.cs.ReadBlob(ctx, desc.Digest)
}

func (l *loader) ociImage(ctx context.Context, desc ocispec.Descriptor) (image.Image, error) {
	var index *ocispec.Descriptor
	for depth := 0; ; depth++ {
		if depth > 4 {
			return image.Image{}, errdefs.InvalidArgument(errors.New("load: indexes nested too deep"))
		}
		data, err := l.readBlob(ctx, desc)
		if err != nil {
			return image.Image{}, err
		}
		if desc.MediaType == "" {
			desc.MediaType = image.DetectMediaType(data)
		}
		if !image.IsIndex(desc.MediaType) {
			break
		}
		idx, err := image.ParseIndex(desc.MediaType, data)
		if err != nil {
			return image.Image{}, fmt.Errorf("load: index %s: %w", desc.Digest, err)
		}
		if index == nil {
			d := desc
			d.Annotations = nil
			index = &d
		}
		child, err := image.SelectManifest(idx, image.Only(image.HostPlatform()))
		if err != nil {
			return image.Image{}, fmt.Errorf("load: %w", err)
		}
		desc = child
	}
	data, err := l.s.cs.ReadBlob(ctx, desc.Digest)
	if err != nil {
		return image.Image{}, err
	}
	m, err := image.ParseManifest(desc.MediaType, data)
	if err != nil {
		return image.Image{}, fmt.Errorf("load: manifest %s: %w", desc.Digest, err)
	}
	cfgData, err := l.readBlob(ctx, m.Config)
	if err != nil {
		return image.Image{}, err
	}
	cfg, err := image.ParseConfig(cfgData)
	if err != nil {
		return image.Image{}, fmt.Errorf("load: config %s: %w", m.Config.Digest, err)
	}
	for _, ld := range m.Layers {
		if err := l.blob(ctx, ld); err != nil {
			return image.Image{}, err
		}
	}
	desc.Annotations = nil
	if desc.Platform == nil {
		p := cfg.Platform()
		desc.Platform = &p
	}
	img, err := image.NewImage(desc, m, cfg)
	if err != nil {
		return image.Image{}, fmt.Errorf("load: %w", err)
	}
	img.Index = index
	return img, nil
}

// extractArchive unpacks the tar r (plain or compressed) into dir: regular
// files, directories and the links docker-archives use between layers.
// Nothing lands outside dir.
func extractArchive(ctx context.Context, r io.Reader, dir string) error {
	dc, err := archive.Decompress(r)
	if err != nil {
		return errdefs.InvalidArgument(err)
	}
	defer dc.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(dc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("read archive: %w", err))
		}
		name, err := archive.CleanEntryName(hdr.Name)
		if err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("archive entry %q: %w", hdr.Name, err))
		}
		if name == "" {
			continue
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			var f *os.File
			f, err = root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err == nil {
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		case tar.TypeSymlink:
			// Resolved later, beneath dir, by os.Root.
			err = root.Symlink(hdr.Linkname, name)
		case tar.TypeLink:
			var target string
			if target, err = archive.CleanEntryName(hdr.Linkname); err == nil {
				err = root.Link(target, name)
			}
		default:
			continue // not part of an image archive
		}
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
		}
	}
}
