package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/storage"
)

// putBlob stores data in the content store and describes it.
func (s *Images) putBlob(ctx context.Context, mediaType string, data []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := s.cs.Put(ctx, "", bytes.NewReader(data), d.Digest, d.Size); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}

// storeManifest writes cfg and an OCI manifest naming it and layers (blobs
// already stored) into the content store, and returns the image they make,
// its layers' sizes left for the unpacker.
func (s *Images) storeManifest(ctx context.Context, cfgData []byte, cfg *image.Config, layers []ocispec.Descriptor) (image.Image, error) {
	cfgDesc, err := s.putBlob(ctx, ocispec.MediaTypeImageConfig, cfgData)
	if err != nil {
		return image.Image{}, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return image.Image{}, err
	}
	mDesc, err := s.putBlob(ctx, ocispec.MediaTypeImageManifest, data)
	if err != nil {
		return image.Image{}, err
	}
	p := cfg.Platform()
	mDesc.Platform = &p
	return image.NewImage(mDesc, &m, cfg)
}

// unpackStored unpacks layers whose blobs are all in the content store,
// in order, and fills in their sizes. It returns holding a reference to
// the top layer (see record).
func (s *Images) unpackStored(ctx context.Context, st *storage.Store, img *image.Image) error {
	u := newUnpacker(ctx, s.cs, st, nil)
	for i, l := range img.Layers {
		u.ready(i, unpackLayer{Blob: l.Blob, DiffID: l.DiffID, Ahead: true})
	}
	u.finish(len(img.Layers))
	out, err := u.run(ctx)
	if err != nil {
		return err
	}
	for i := range img.Layers {
		img.Layers[i].Size = out.Sizes[i]
	}
	img.Size = 0
	return nil
}

// storeLayer stores the layer tar r (compressed or not) in the content
// store, gzip-compressed unless it came compressed with gzip or zstd, and
// returns its descriptor and diff ID (the digest of the uncompressed tar).
func (s *Images) storeLayer(ctx context.Context, r io.Reader, ref string) (ocispec.Descriptor, digest.Digest, error) {
	br := newPeekReader(r)
	head, _ := br.peek(6)
	comp := archive.DetectCompression(head)
	var mediaType string
	var src io.Reader
	dg := digest.Canonical.Digester()
	errc := make(chan error, 1)
	switch comp {
	case archive.Gzip, archive.Zstd:
		// Kept as it came; the diff ID is computed on a second stream.
		mediaType = ocispec.MediaTypeImageLayerGzip
		if comp == archive.Zstd {
			mediaType = ocispec.MediaTypeImageLayerZstd
		}
		pr, pw := io.Pipe()
		go func() {
			dc, err := archive.Decompress(pr)
			if err == nil {
				_, err = io.Copy(dg.Hash(), dc)
				dc.Close()
			}
			if err != nil {
				err = fmt.Errorf("decompress layer: %w", err)
			}
			pr.CloseWithError(err) // a failure stops the writer too
			errc <- err
		}()
		src = io.TeeReader(br, pw)
		defer pw.Close()
		d, err := s.cs.Put(ctx, ref, src, "", -1)
		pw.Close()
		if derr := <-errc; derr != nil {
			err = derr
		}
		if err != nil {
			return ocispec.Descriptor{}, "", err
		}
		info, err := s.cs.Info(ctx, d)
		if err != nil {
			return ocispec.Descriptor{}, "", err
		}
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: info.Size}, dg.Digest(), nil
	}
	// Uncompressed (or bzip2): store it gzip-compressed, as docker pushes.
	dc, err := archive.Decompress(br)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("read layer: %w", err)
	}
	defer dc.Close()
	pr, pw := io.Pipe()
	go func() {
		zw, err := archive.Compress(pw, archive.Gzip)
		if err == nil {
			_, err = io.Copy(zw, io.TeeReader(dc, dg.Hash()))
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			err = fmt.Errorf("compress layer: %w", err)
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	d, err := s.cs.Put(ctx, ref, pr, "", -1)
	pr.CloseWithError(io.ErrClosedPipe)
	if cerr := <-errc; cerr != nil {
		err = cerr
	}
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	info, err := s.cs.Info(ctx, d)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: info.Size}, dg.Digest(), nil
}

// peekReader is a reader whose first bytes can be looked at first.
type peekReader struct {
	r    io.Reader
	head []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) peek(n int) ([]byte, error) {
	for len(p.head) < n {
		buf := make([]byte, n-len(p.head))
		m, err := p.r.Read(buf)
		p.head = append(p.head, buf[:m]...)
		if err != nil {
			return p.head, err
		}
	}
	return p.head, nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}
