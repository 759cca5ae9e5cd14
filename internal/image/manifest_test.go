package image

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	d1 = "sha256:" + strings.Repeat("1", 64)
	d2 = "sha256:" + strings.Repeat("2", 64)
	d3 = "sha256:" + strings.Repeat("3", 64)
)

const ociManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "D1", "size": 100},
  "layers": [
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "D2", "size": 200},
    {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": "D3", "size": 300}
  ],
  "annotations": {"org.opencontainers.image.ref.name": "1.0"}
}`

const dockerManifest = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "D1", "size": 1469},
  "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "D2", "size": 2}]
}`

const ociIndex = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "D1", "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "D2", "size": 2, "platform": {"os": "unknown", "architecture": "unknown"}}
  ]
}`

const dockerList = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "D1", "size": 528, "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "D2", "size": 528, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "features": ["sse4"]}}
  ]
}`

func fill(s string) []byte {
	return []byte(strings.NewReplacer("D1", d1, "D2", d2, "D3", d3).Replace(s))
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, mt, data string
		wantMT         string
		layers         []Compression
	}{
		{"oci", ocispec.MediaTypeImageManifest, ociManifest, ocispec.MediaTypeImageManifest, []Compression{Gzip, Zstd}},
		{"oci detected", "", ociManifest, ocispec.MediaTypeImageManifest, []Compression{Gzip, Zstd}},
		{"docker", MediaTypeDockerManifest, dockerManifest, MediaTypeDockerManifest, []Compression{Gzip}},
		{"docker detected", "", dockerManifest, MediaTypeDockerManifest, []Compression{Gzip}},
		{"oci without mediaType field", ocispec.MediaTypeImageManifest,
			strings.Replace(ociManifest, `"mediaType": "application/vnd.oci.image.manifest.v1+json",`, "", 1),
			ocispec.MediaTypeImageManifest, []Compression{Gzip, Zstd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest(tt.mt, fill(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if m.MediaType != tt.wantMT || m.Config.Digest != digest.Digest(d1) || len(m.Layers) != len(tt.layers) {
				t.Fatalf("got %+v", m)
			}
			for i, l := range m.Layers {
				if c, err := LayerCompression(l.MediaType); err != nil || c != tt.layers[i] {
					t.Fatalf("layer %d: %v, %v", i, c, err)
				}
			}
		})
	}
}

func TestParseManifestErrors(t *testing.T) {
	tests := []struct {
		name, mt, data string
		want           string
		unsupported    bool
	}{
		{"not json", "", "{", "not JSON", false},
		{"empty", "", "", "not JSON", false},
		{"array", "", "[]", "not JSON", false},
		{"schema 1", "", `{"schemaVersion": 1, "fsLayers": []}`, "schema 1 is deprecated", true},
		{"schema 1 media type", mediaTypeSchema1Signed, `{"schemaVersion": 1}`, "schema 1", true},
		{"no schema version", "", `{"config": {}}`, "schemaVersion must be 2", false},
		{"schema 3", "", `{"schemaVersion": 3, "config": {}}`, "schemaVersion must be 2", false},
		{"index given", "", ociIndex, "got an index", false},
		{"type mismatch", MediaTypeDockerManifest, ociManifest, "differs from", false},
		{"no config", ocispec.MediaTypeImageManifest, `{"schemaVersion": 2}`, "config: descriptor has no mediaType", false},
		{"bad config digest", "", strings.Replace(ociManifest, "D1", "sha256:abc", 1), "config: descriptor digest", false},
		{"negative size", "", strings.Replace(ociManifest, `"size": 200`, `"size": -1`, 1), "negative size", false},
		{"artifact", "", strings.Replace(ociManifest, "application/vnd.oci.image.config.v1+json", "application/vnd.cncf.helm.config.v1+json", 1), "not a container image", true},
		{"unknown layer", "", strings.Replace(ociManifest, "tar+zstd", "tar+lz4", 1), "layer 1", true},
		{"layer without type", "", strings.Replace(ociManifest, `"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", `, "", 1), "layer 1: descriptor has no mediaType", false},
		{"trailing data", "", ociManifest + "{}", "after top-level value", false},
		{"wrong field type", "", strings.Replace(ociManifest, `"size": 100`, `"size": "100"`, 1), "cannot unmarshal", false},
		{"unknown type", "text/plain", `{"schemaVersion": 2}`, "not an image manifest media type", true},
		{"too big", "", `{"schemaVersion": 2, "x": "` + strings.Repeat("a", MaxManifestSize) + `"}`, "limit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifest(tt.mt, fill(tt.data))
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if tt.unsupported != errors.Is(err, ErrUnsupported) || tt.unsupported == errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %v: unsupported=%v invalid=%v, want unsupported=%v", err,
					errors.Is(err, ErrUnsupported), errors.Is(err, ErrInvalidManifest), tt.unsupported)
			}
			if k := errdefs.KindOf(err); k != errdefs.KindInvalidArgument && k != errdefs.KindNotImplemented {
				t.Fatalf("error %v is not classified", err)
			}
		})
	}
}

func TestParseIndex(t *testing.T) {
	for _, tt := range []struct{ name, mt, data, want string }{
		{"oci", ocispec.MediaTypeImageIndex, ociIndex, ocispec.MediaTypeImageIndex},
		{"oci detected", "", ociIndex, ocispec.MediaTypeImageIndex},
		{"docker list", MediaTypeDockerManifestList, dockerList, MediaTypeDockerManifestList},
		{"docker list detected", "", dockerList, MediaTypeDockerManifestList},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := ParseIndex(tt.mt, fill(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if idx.MediaType != tt.want || len(idx.Manifests) != 2 || idx.Manifests[0].Platform == nil {
				t.Fatalf("got %+v", idx)
			}
		})
	}
	for _, tt := range []struct{ name, data, want string }{
		{"manifest given", ociManifest, "single manifest"},
		{"bad entry", strings.Replace(ociIndex, "D2", "sha256:zz", 1), "manifest 1: descriptor digest"},
		{"not json", `{"schemaVersion": 2, "manifests": [`, "not JSON"},
		{"manifests not a list", `{"schemaVersion": 2, "manifests": {}}`, "cannot unmarshal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIndex("", fill(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestVerifyBlob(t *testing.T) {
	data := []byte("hello")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: 5}
	if err := VerifyBlob(desc, data); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBlob(desc, []byte("hellO")); err == nil || !strings.Contains(err.Error(), "hashes to") {
		t.Fatalf("tampered: %v", err)
	}
	if err := VerifyBlob(desc, []byte("hello!")); err == nil || !strings.Contains(err.Error(), "6 bytes") {
		t.Fatalf("longer: %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{ociManifest, dockerManifest, ociIndex, dockerList, `{"schemaVersion":1}`, "{", ""} {
		f.Add("", fill(s))
		f.Add(ocispec.MediaTypeImageManifest, fill(s))
		f.Add(MediaTypeDockerManifestList, fill(s))
	}
	f.Fuzz(func(t *testing.T, mt string, data []byte) {
		if m, err := ParseManifest(mt, data); err == nil {
			if !IsManifest(m.MediaType) || !IsConfig(m.Config.MediaType) || m.Config.Digest.Validate() != nil {
				t.Fatalf("accepted %+v", m)
			}
			for _, l := range m.Layers {
				if _, err := LayerCompression(l.MediaType); err != nil || l.Size < 0 {
					t.Fatalf("accepted layer %+v", l)
				}
			}
		} else if !errors.Is(err, ErrInvalidManifest) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("unclassified error %v", err)
		}
		if idx, err := ParseIndex(mt, data); err == nil {
			for _, d := range idx.Manifests {
				if d.Digest.Validate() != nil || d.Size < 0 {
					t.Fatalf("accepted entry %+v", d)
				}
			}
			SelectManifest(idx, Only(HostPlatform()))
		}
		if cfg, err := ParseConfig(data); err == nil {
			History(cfg, func(digest.Digest) int64 { return 1 })
		}
		DetectMediaType(data)
	})
}
