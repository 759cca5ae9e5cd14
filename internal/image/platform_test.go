package image

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func plat(s string) ocispec.Platform {
	parts := strings.SplitN(s, "/", 3)
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p
}

func TestParsePlatform(t *testing.T) {
	host := HostPlatform()
	hostOS := runtime.GOOS
	tests := []struct{ in, want string }{
		{"linux/amd64", "linux/amd64"},
		{"linux/x86_64", "linux/amd64"},
		{"LINUX/AMD64", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/arm64", "linux/arm64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/aarch64", "linux/arm64"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/arm/6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/i686", "linux/386"},
		{"linux/riscv64", "linux/riscv64"},
		{"windows/amd64", "windows/amd64"},
		{"arm64", hostOS + "/arm64"},
		{"linux", FormatPlatform(Normalize(ocispec.Platform{OS: "linux", Architecture: host.Architecture, Variant: host.Variant}))},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePlatform(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatPlatform(p); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	for _, in := range []string{"", "/", "linux/", "/amd64", "linux/amd64/v8/x", "foo", "linux/am d64", "plan10/amd64"} {
		t.Run("error "+in, func(t *testing.T) {
			if p, err := ParsePlatform(in); err == nil || !errdefs.Is(err, errdefs.KindInvalidArgument) ||
				!strings.Contains(err.Error(), "invalid platform") {
				t.Fatalf("got %+v, %v; want an invalid platform error", p, err)
			}
		})
	}
}

func TestHostPlatform(t *testing.T) {
	p := HostPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Fatalf("HostPlatform = %+v", p)
	}
	if (runtime.GOARCH == "arm" || runtime.GOARCH == "arm64") && p.Variant == "" {
		t.Fatalf("arm host without a variant: %+v", p)
	}
}

func index(platforms ...string) *ocispec.Index {
	idx := &ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	for i, s := range platforms {
		d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Size: 1,
			Digest: digest.FromString(s + string(rune('a'+i)))}
		if s != "" {
			p := plat(s)
			d.Platform = &p
		}
		idx.Manifests = append(idx.Manifests, d)
	}
	return idx
}

func TestSelectManifest(t *testing.T) {
	tests := []struct {
		name    string
		m       Matcher
		entries []string
		want    int // index of the entry picked, -1 for none
	}{
		{"amd64 exact", Only(plat("linux/amd64")), []string{"linux/arm64/v8", "linux/amd64", "linux/386"}, 1},
		{"amd64 falls back to 386", Only(plat("linux/amd64")), []string{"linux/arm64", "linux/386"}, 1},
		{"amd64/v3 prefers v3", Only(plat("linux/amd64/v3")), []string{"linux/amd64", "linux/amd64/v2", "linux/amd64/v3"}, 2},
		{"amd64/v2 refuses v3", Only(plat("linux/amd64/v2")), []string{"linux/amd64/v3", "linux/amd64"}, 1},
		{"arm64 host matches v8 entry", Only(plat("linux/arm64/v8")), []string{"linux/amd64", "linux/arm64/v8"}, 1},
		{"arm64 host matches entry without variant", Only(plat("linux/arm64/v8")), []string{"linux/arm/v7", "linux/arm64"}, 1},
		{"arm64 host runs arm/v7", Only(plat("linux/arm64/v8")), []string{"linux/amd64", "linux/arm/v6", "linux/arm/v7"}, 2},
		{"arm/v7 prefers v7", Only(plat("linux/arm/v7")), []string{"linux/arm/v6", "linux/arm/v7", "linux/arm64"}, 1},
		{"arm/v7 runs v6", Only(plat("linux/arm/v7")), []string{"linux/arm64", "linux/arm/v6"}, 1},
		{"arm/v6 refuses v7", Only(plat("linux/arm/v6")), []string{"linux/arm/v7"}, -1},
		{"os must match", Only(plat("linux/amd64")), []string{"windows/amd64"}, -1},
		{"no platform never picked", Only(plat("linux/amd64")), []string{""}, -1},
		{"first among equals", Only(plat("linux/amd64")), []string{"linux/amd64", "linux/amd64"}, 0},
		{"exact refuses fallback", Exact(plat("linux/amd64")), []string{"linux/386"}, -1},
		{"exact arm64 equals v8", Exact(plat("linux/arm64")), []string{"linux/arm64/v8"}, 0},
		{"exact arm means v7", Exact(plat("linux/arm")), []string{"linux/arm/v6", "linux/arm/v7"}, 1},
		{"attestations skipped", Only(plat("linux/amd64")), []string{"unknown/unknown", "linux/amd64"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := index(tt.entries...)
			got, err := SelectManifest(idx, tt.m)
			if tt.want < 0 {
				if !errors.Is(err, ErrNoMatchingPlatform) || !errdefs.Is(err, errdefs.KindNotFound) {
					t.Fatalf("got %v, %v; want no match", got.Platform, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != idx.Manifests[tt.want].Digest {
				t.Fatalf("picked %s, want entry %d (%s)", FormatPlatform(*got.Platform), tt.want, tt.entries[tt.want])
			}
		})
	}
}

func TestSelectManifestError(t *testing.T) {
	_, err := SelectManifest(index("linux/amd64", "unknown/unknown", "linux/386"), Only(plat("linux/arm64/v8")))
	want := "no matching manifest for linux/arm64/v8 in the manifest list entries (it has linux/amd64, linux/386; choose one with --platform)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestParseConfigAndHistory(t *testing.T) {
	raw := `{
  "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
  "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"a": "b"},
             "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}},
  "rootfs": {"type": "layers", "diff_ids": ["D1", "D2"]},
  "history": [
    {"created": "2024-01-01T00:00:00Z", "created_by": "ADD file:abc in /"},
    {"created": "2024-01-01T00:00:01Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
    {"created": "2024-01-02T03:04:05Z", "created_by": "RUN echo", "comment": "buildkit"}
  ],
  "docker_version": "24.0.0"
}`
	cfg, err := ParseConfig(fill(raw))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Platform().Architecture != "amd64" || cfg.Config.Cmd[0] != "sh" || cfg.Config.Healthcheck.Interval.Seconds() != 1 ||
		cfg.DockerVersion != "24.0.0" || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("parsed %+v", cfg)
	}
	sizes := map[digest.Digest]int64{digest.Digest(d1): 100, digest.Digest(d2): 20}
	h := History(cfg, func(d digest.Digest) int64 { return sizes[d] })
	want := []struct {
		by    string
		size  int64
		empty bool
	}{{"RUN echo", 20, false}, {`CMD ["sh"]`, 0, true}, {"ADD file:abc in /", 100, false}}
	if len(h) != len(want) {
		t.Fatalf("history %+v", h)
	}
	for i, w := range want {
		if h[i].CreatedBy != w.by || h[i].Size != w.size || h[i].EmptyLayer != w.empty {
			t.Errorf("entry %d = %+v, want %+v", i, h[i], w)
		}
	}
	if h[0].Comment != "buildkit" || h[0].Created.Year() != 2024 {
		t.Errorf("entry 0 = %+v", h[0])
	}

	// No history: one entry per layer, newest first.
	cfg.History = nil
	h = History(cfg, nil)
	if len(h) != 2 || h[0].DiffID != digest.Digest(d2) || h[1].DiffID != digest.Digest(d1) {
		t.Fatalf("synthesized history %+v", h)
	}

	for _, bad := range []string{
		`{"rootfs": {"type": "tarsum"}}`,
		`{"rootfs": {"type": "layers", "diff_ids": ["sha256:nothex"]}}`,
		`{"rootfs": `,
		`[]`,
	} {
		if _, err := ParseConfig([]byte(bad)); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("ParseConfig(%s) = %v, want an invalid error", bad, err)
		}
	}
}

func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "arm64", "linux", "windows/amd64", "a/b/c/d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlatform(s)
		if err != nil {
			return
		}
		again, err := ParsePlatform(FormatPlatform(p))
		if err != nil || FormatPlatform(again) != FormatPlatform(p) {
			t.Fatalf("%q parsed as %s; reparses as %s, %v", s, FormatPlatform(p), FormatPlatform(again), err)
		}
		if !Exact(p).Match(p) || !Only(p).Match(p) {
			t.Fatalf("%s does not match itself", FormatPlatform(p))
		}
	})
}
