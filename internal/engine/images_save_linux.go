package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// savedImage is one image to save and the tags to save it under.
type savedImage struct {
	img  image.Image
	tags []image.Reference
}

// resolveSave finds what `docker save NAME...` saves: a name:tag saves
// that tag, a bare repository name every tag of it, an ID or a digest
// reference the image without tags.
func (s *Images) resolveSave(ctx context.Context, names []string) ([]savedImage, error) {
	var out []savedImage
	index := map[digest.Digest]int{}
	add := func(img image.Image, tag *image.Reference) {
		i, ok := index[img.ID]
		if !ok {
			i = len(out)
			index[img.ID] = i
			out = append(out, savedImage{img: img})
		}
		if tag != nil {
			for _, t := range out[i].tags {
				if t == *tag {
					return
				}
			}
			out[i].tags = append(out[i].tags, *tag)
		}
	}
	all, err := s.is.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		ref, perr := image.ParseReference(name)
		if perr == nil && ref.Tag == "" && ref.Digest == "" {
			found := false
			for _, img := range all {
				for _, t := range img.RepoTags {
					tr, err := image.ParseReference(t)
					if err == nil && tr.Name() == ref.Name() {
						add(img, &tr)
						found = true
					}
				}
			}
			if found {
				continue
			}
		}
		img, err := s.is.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if perr == nil && ref.Tag != "" && ref.Digest == "" {
			add(img, &ref)
		} else {
			add(img, nil)
		}
	}
	return out, nil
}

// Save writes the images names name to w as a tar: a docker-archive
// (FormatDocker, which `docker load` reads) or an OCI image layout
// (FormatOCI).
func (s *Images) Save(ctx context.Context, names []string, w io.Writer, format string) error {
	tw := newTarLayout(w)
	if err := s.save(ctx, names, tw, format); err != nil {
		return err
	}
	return tw.close()
}

// SaveDir writes the images as a directory: an OCI image layout, or the
// docker-archive's files.
func (s *Images) SaveDir(ctx context.Context, names []string, dir, format string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return s.save(ctx, names, &dirLayout{dir: dir, files: map[string]bool{}}, format)
}

func (s *Images) save(ctx context.Context, names []string, lw layoutWriter, format string) error {
	if len(names) == 0 {
		return errdefs.InvalidArgument(errors.New("save: no image named"))
	}
	imgs, err := s.resolveSave(ctx, names)
	if err != nil {
		return err
	}
	switch format {
	case "", FormatDocker, "docker-archive":
		return s.saveDocker(ctx, imgs, lw)
	case FormatOCI, "oci-archive", "oci-dir":
		return s.saveOCI(ctx, imgs, lw)
	}
	return errdefs.InvalidArgument(fmt.Errorf("save: unknown format %q: use docker or oci", format))
}

func blobPath(d digest.Digest) string { return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded() }

func (s *Images) addBlob(ctx context.Context, lw layoutWriter, d digest.Digest) error {
	f, err := s.cs.ReaderAt(ctx, d)
	if err != nil {
		return err
	}
	defer f.Close()
	return lw.add(blobPath(d), f.Size(), io.NewSectionReader(f, 0, f.Size()))
}

func addJSON(lw layoutWriter, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return lw.add(name, int64(len(data)), bytes.NewReader(data))
}

func ociLayout(lw layoutWriter) error {
	return addJSON(lw, ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
}

// indexEntry names desc in index.json as tag (none for an untagged image).
func indexEntry(desc ocispec.Descriptor, tag *image.Reference) ocispec.Descriptor {
	desc.Annotations = nil
	if tag != nil {
		desc.Annotations = map[string]string{
			annotationContainerdName: tag.String(),
			annotationRefName:        tag.Tag,
		}
	}
	return desc
}

// saveOCI writes the images' blobs as stored, with an index.json entry per
// tag.
func (s *Images) saveOCI(ctx context.Context, imgs []savedImage, lw layoutWriter) error {
	if err := ociLayout(lw); err != nil {
		return err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, si := range imgs {
		img := si.img
		blobs := []digest.Digest{img.Manifest.Digest, img.Config.Digest}
		for _, l := range img.Layers {
			blobs = append(blobs, l.Blob.Digest)
		}
		for _, d := range blobs {
			if err := s.addBlob(ctx, lw, d); err != nil {
				return fmt.Errorf("save %s: %w", img.ShortID(), err)
			}
		}
		desc := img.Manifest
		if len(si.tags) == 0 {
			idx.Manifests = append(idx.Manifests, indexEntry(desc, nil))
		}
		for i := range si.tags {
			idx.Manifests = append(idx.Manifests, indexEntry(desc, &si.tags[i]))
		}
	}
	return addJSON(lw, ocispec.ImageIndexFile, idx)
}

// saveDocker writes a docker-archive whose files also make an OCI layout:
// configs and uncompressed layer tars under blobs/, a manifest per image
// naming the uncompressed layers, manifest.json and repositories.
func (s *Images) saveDocker(ctx context.Context, imgs []savedImage, lw layoutWriter) error {
	if err := ociLayout(lw); err != nil {
		return err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var manifests []dockerManifest
	repos := map[string]map[string]string{}
	for _, si := range imgs {
		img := si.img
		if err := s.addBlob(ctx, lw, img.Config.Digest); err != nil {
			return fmt.Errorf("save %s: %w", img.ShortID(), err)
		}
		dm := dockerManifest{Config: blobPath(img.Config.Digest), RepoTags: []string{}}
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.Config.Digest, Size: img.Config.Size},
			Layers: []ocispec.Descriptor{}}
		for _, l := range img.Layers {
			if err := s.addLayerTar(ctx, lw, l); err != nil {
				return fmt.Errorf("save %s: %w", img.ShortID(), err)
			}
			dm.Layers = append(dm.Layers, blobPath(l.DiffID))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.DiffID, Size: l.Size})
		}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		mDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := lw.add(blobPath(mDesc.Digest), mDesc.Size, bytes.NewReader(data)); err != nil {
			return err
		}
		if len(si.tags) == 0 {
			idx.Manifests = append(idx.Manifests, indexEntry(mDesc, nil))
		}
		for i, t := range si.tags {
			idx.Manifests = append(idx.Manifests, indexEntry(mDesc, &si.tags[i]))
			dm.RepoTags = append(dm.RepoTags, t.Familiar())
			if len(img.Layers) > 0 {
				name := t.FamiliarName()
				if repos[name] == nil {
					repos[name] = map[string]string{}
				}
				repos[name][t.Tag] = img.Layers[len(img.Layers)-1].DiffID.Encoded()
			}
		}
		manifests = append(manifests, dm)
	}
	if err := addJSON(lw, ocispec.ImageIndexFile, idx); err != nil {
		return err
	}
	if err := addJSON(lw, "manifest.json", manifests); err != nil {
		return err
	}
	if len(repos) > 0 {
		return addJSON(lw, "repositories", repos)
	}
	return nil
}

// addLayerTar writes layer l's uncompressed tar, checked against its diff
// ID: it streams when the unpacked size is known, else it goes through a
// temporary file to learn it.
func (s *Images) addLayerTar(ctx context.Context, lw layoutWriter, l image.Layer) error {
	if lw.has(blobPath(l.DiffID)) {
		return nil
	}
	f, err := s.cs.Open(ctx, l.Blob.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	dc, err := archive.Decompress(f)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Blob.Digest, err)
	}
	defer dc.Close()
	size := l.Size
	var src io.Reader = dc
	if size <= 0 {
		tmp, err := os.CreateTemp(s.tmpDir(), "layer-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if size, err = io.Copy(tmp, dc); err != nil {
			return fmt.Errorf("layer %s: %w", l.Blob.Digest, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return err
		}
		src = tmp
	}
	dg := l.DiffID.Algorithm().Digester()
	if err := lw.add(blobPath(l.DiffID), size, io.TeeReader(src, dg.Hash())); err != nil {
		return fmt.Errorf("layer %s: %w", l.Blob.Digest, err)
	}
	if got := dg.Digest(); got != l.DiffID {
		return errdefs.InvalidArgument(fmt.Errorf("layer %s: uncompressed content hashes to %s, not its diff ID %s", l.Blob.Digest, got, l.DiffID))
	}
	return nil
}
