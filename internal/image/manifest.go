package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Docker's v2 schema 2 media types, alongside the OCI ones in ocispec.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	// MediaTypeDockerLayerTar is not in the schema but found in the wild
	// (docker save of uncompressed layers, some builders).
	MediaTypeDockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"

	mediaTypeSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize is the largest manifest or index accepted, as
// distribution's registry limits them.
const MaxManifestSize = 4 << 20

var (
	// ErrInvalidManifest is wrapped by every manifest, index and config
	// parsing error.
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrUnsupported is wrapped when the content is well-formed but not
	// something berth runs: schema 1 manifests, artifacts that are not
	// container images.
	ErrUnsupported = errors.New("unsupported media type")
)

func invalid(what string, format string, args ...any) error {
	return errdefs.InvalidArgument(fmt.Errorf("%s: %w: %s", what, ErrInvalidManifest, fmt.Sprintf(format, args...)))
}

func unsupported(format string, args ...any) error {
	return errdefs.NotImplemented(fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...)))
}

// IsIndex reports whether mt is an OCI index or a Docker manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is an OCI or a Docker schema 2 manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// IsConfig reports whether mt is an image config media type.
func IsConfig(mt string) bool {
	return mt == ocispec.MediaTypeImageConfig || mt == MediaTypeDockerConfig
}

// Compression is how a layer blob is compressed.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "none"
}

// LayerCompression returns the compression a layer media type declares,
// or an error when mt is not a layer media type berth can unpack.
func LayerCompression(mt string) (Compression, error) {
	// The non-distributable types are deprecated (image-spec 1.1) but
	// still in registries (Windows base layers).
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerNonDistributable,
		MediaTypeDockerLayerTar:
		return Uncompressed, nil
	case ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerNonDistributableGzip,
		MediaTypeDockerLayer, MediaTypeDockerForeignLayer:
		return Gzip, nil
	case ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerNonDistributableZstd:
		return Zstd, nil
	}
	return 0, unsupported("layer media type %q is not a tar, tar+gzip or tar+zstd layer", mt)
}

// probe is what DetectMediaType and the parsers read first.
type probe struct {
	SchemaVersion *int            `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Layers        json.RawMessage `json:"layers"`
	Manifests     json.RawMessage `json:"manifests"`
	FSLayers      json.RawMessage `json:"fsLayers"`
}

// DetectMediaType guesses the media type of a manifest or index that came
// without one (an OCI layout entry, a registry that sent no Content-Type):
// the mediaType field if present, else its shape. It returns "" when data
// is neither.
func DetectMediaType(data []byte) string {
	var p probe
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	switch {
	case p.MediaType != "":
		return p.MediaType
	case p.FSLayers != nil:
		return mediaTypeSchema1
	case p.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case p.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return ""
}

// checkEnvelope does what manifests and indexes share: size limit, JSON,
// schema version 2, and a mediaType field that agrees with mt.
func checkEnvelope(what, mt string, data []byte) (string, error) {
	if len(data) > MaxManifestSize {
		return "", invalid(what, "%d bytes, more than the %d-byte limit", len(data), MaxManifestSize)
	}
	var p probe
	if err := json.Unmarshal(data, &p); err != nil {
		return "", invalid(what, "not JSON: %v", err)
	}
	if mt == "" {
		mt = DetectMediaType(data)
	}
	if mt == mediaTypeSchema1 || mt == mediaTypeSchema1Signed || p.FSLayers != nil ||
		(p.SchemaVersion != nil && *p.SchemaVersion == 1) {
		return "", unsupported("Docker image manifest schema 1 is deprecated and not supported; push the image again with a current docker or buildah")
	}
	if p.SchemaVersion == nil || *p.SchemaVersion != 2 {
		return "", invalid(what, "schemaVersion must be 2")
	}
	if p.MediaType != "" && p.MediaType != mt {
		return "", invalid(what, "mediaType %q in the content differs from %q", p.MediaType, mt)
	}
	return mt, nil
}

// ParseManifest parses and validates an image manifest of media type mt
// (OCI or Docker schema 2; "" to detect it). It refuses manifests that are
// not container images (a config that is not an image config, a layer
// berth cannot unpack) with an error wrapping ErrUnsupported, and
// malformed ones with an error wrapping ErrInvalidManifest.
func ParseManifest(mt string, data []byte) (*ocispec.Manifest, error) {
	const what = "parse image manifest"
	mt, err := checkEnvelope(what, mt, data)
	if err != nil {
		return nil, err
	}
	if IsIndex(mt) {
		return nil, invalid(what, "got an index (%s); pick a manifest from it first", mt)
	}
	if !IsManifest(mt) {
		return nil, unsupported("%q is not an image manifest media type", mt)
	}
	var m ocispec.Manifest
	if err := strictUnmarshal(data, &m); err != nil {
		return nil, invalid(what, "%v", err)
	}
	m.MediaType = mt
	if err := checkDescriptor(m.Config); err != nil {
		return nil, invalid(what, "config: %v", err)
	}
	if !IsConfig(m.Config.MediaType) {
		return nil, unsupported("not a container image: its config is %q (an artifact?)", m.Config.MediaType)
	}
	for i, l := range m.Layers {
		if err := checkDescriptor(l); err != nil {
			return nil, invalid(what, "layer %d: %v", i, err)
		}
		if _, err := LayerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", what, i, err)
		}
	}
	return &m, nil
}

// ParseIndex parses and validates an OCI index or a Docker manifest list
// of media type mt ("" to detect it).
func ParseIndex(mt string, data []byte) (*ocispec.Index, error) {
	const what = "parse image index"
	mt, err := checkEnvelope(what, mt, data)
	if err != nil {
		return nil, err
	}
	if IsManifest(mt) {
		return nil, invalid(what, "got a single manifest (%s), not an index", mt)
	}
	if !IsIndex(mt) {
		return nil, unsupported("%q is not an index media type", mt)
	}
	var idx ocispec.Index
	if err := strictUnmarshal(data, &idx); err != nil {
		return nil, invalid(what, "%v", err)
	}
	idx.MediaType = mt
	for i, d := range idx.Manifests {
		if err := checkDescriptor(d); err != nil {
			return nil, invalid(what, "manifest %d: %v", i, err)
		}
	}
	return &idx, nil
}

// strictUnmarshal decodes one JSON value and refuses trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func checkDescriptor(d ocispec.Descriptor) error {
	if d.MediaType == "" {
		return errors.New("descriptor has no mediaType")
	}
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("descriptor digest %q: %v", string(d.Digest), err)
	}
	if d.Size < 0 {
		return fmt.Errorf("descriptor %s has a negative size", d.Digest)
	}
	return nil
}

// VerifyBlob checks that data is what desc describes: the size and the
// digest. Registries and archives are outside input; everything read from
// them goes through this or the content store.
func VerifyBlob(desc ocispec.Descriptor, data []byte) error {
	if int64(len(data)) != desc.Size {
		return errdefs.InvalidArgument(fmt.Errorf("blob %s: got %d bytes, the descriptor says %d", desc.Digest, len(data), desc.Size))
	}
	if err := desc.Digest.Validate(); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("blob %q: %v", string(desc.Digest), err))
	}
	if got := desc.Digest.Algorithm().FromBytes(data); got != desc.Digest {
		return errdefs.InvalidArgument(fmt.Errorf("blob %s: content hashes to %s", desc.Digest, got))
	}
	return nil
}

// Layer is one layer of an image: the blob the manifest names, the digest
// of its uncompressed tar (the config's diff ID), and its unpacked size
// when known.
type Layer struct {
	Blob   ocispec.Descriptor `json:"blob"`
	DiffID digest.Digest      `json:"diffID"`
	Size   int64              `json:"size,omitempty"`
}

// Layers pairs the manifest's layer blobs with the config's diff IDs, and
// fails when their counts differ.
func Layers(m *ocispec.Manifest, cfg *Config) ([]Layer, error) {
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return nil, invalid("image", "the manifest lists %d layers but the config %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	out := make([]Layer, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = Layer{Blob: l, DiffID: cfg.RootFS.DiffIDs[i]}
	}
	return out, nil
}
