package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func TestNormalizeServer(t *testing.T) {
	for _, tc := range []struct{ in, host, key string }{
		{"", DockerHubHost, dockerHubKey},
		{"docker.io", DockerHubHost, dockerHubKey},
		{"index.docker.io", DockerHubHost, dockerHubKey},
		{"https://index.docker.io/v1/", DockerHubHost, dockerHubKey},
		{"registry-1.docker.io", DockerHubHost, dockerHubKey},
		{"localhost:5000", "localhost:5000", "localhost:5000"},
		{"http://127.0.0.1:5000/v2/", "127.0.0.1:5000", "127.0.0.1:5000"},
		{"Registry.Example.com", "registry.example.com", "registry.example.com"},
		{"https://ghcr.io", "ghcr.io", "ghcr.io"},
	} {
		if got := normalizeServer(tc.in); got != tc.host {
			t.Errorf("normalizeServer(%q) = %q, want %q", tc.in, got, tc.host)
		}
		if got := credentialKey(tc.in); got != tc.key {
			t.Errorf("credentialKey(%q) = %q, want %q", tc.in, got, tc.key)
		}
	}
}

func TestPlainHTTPAllowed(t *testing.T) {
	for _, tc := range []struct {
		host     string
		insecure []string
		want     bool
	}{
		{"localhost:5000", nil, true},
		{"localhost", nil, true},
		{"reg.localhost:5000", nil, true},
		{"127.0.0.1:5000", nil, true},
		{"127.1.2.3:5000", nil, true},
		{"[::1]:5000", nil, true},
		{"::1", nil, true},
		{"10.0.0.1:5000", nil, false},
		{"192.168.1.10:5000", nil, false},
		{"index.docker.io", nil, false},
		{"10.0.0.1:5000", []string{"10.0.0.0/8"}, true},
		{"10.0.0.1:5000", []string{"192.168.0.0/16"}, false},
		{"reg.example:5000", []string{"reg.example:5000"}, true},
		{"reg.example:5000", []string{"reg.example"}, true},
		{"reg.example:5000", []string{"http://reg.example:5000/"}, true},
		{"reg.example:5001", []string{"reg.example:5000"}, false},
		{"other.example", []string{"reg.example"}, false},
	} {
		o := Options{Insecure: tc.insecure}
		if got := o.plainHTTPAllowed(tc.host); got != tc.want {
			t.Errorf("plainHTTPAllowed(%q) with insecure %v = %v, want %v", tc.host, tc.insecure, got, tc.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHTTPGuard(t *testing.T) {
	var reached atomic.Int32
	g := &httpGuard{inner: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		reached.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}), o: Options{Insecure: []string{"insecure.example"}}}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://10.1.2.3:5000/v2/", false},
		{"http://registry.example/v2/", false},
		{"https://registry.example/v2/", true},
		{"http://127.0.0.1:5000/v2/", true},
		{"http://insecure.example:5000/v2/", true},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		before := reached.Load()
		resp, err := g.RoundTrip(req)
		if tc.ok != (err == nil) || tc.ok != (reached.Load() > before) {
			t.Errorf("%s: err %v, reached %v", tc.url, err, reached.Load() > before)
		}
		if err != nil && !errdefs.Is(err, errdefs.KindPermission) {
			t.Errorf("%s: error of kind %v: %v", tc.url, errdefs.KindOf(err), err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}

func TestFileKeychain(t *testing.T) {
	dir := t.TempDir()
	docker := filepath.Join(dir, "docker.json")
	berth := filepath.Join(dir, "berth.json")
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	writeTestFile(t, docker, `{
		"auths": {
			"https://index.docker.io/v1/": {"auth": "`+enc("hubuser:hubpass")+`"},
			"reg.example:5000": {"auth": "`+enc("docker:fromdocker")+`"},
			"ghcr.io": {}
		},
		"credsStore": "desktop"
	}`)
	writeTestFile(t, berth, `{"auths": {"http://reg.example:5000/v2/": {"username": "berth", "password": "fromberth"}}}`)
	kc := FileKeychain(berth, docker, filepath.Join(dir, "missing.json"))
	for _, tc := range []struct {
		registry   string
		user, pass string
	}{
		{"index.docker.io", "hubuser", "hubpass"},
		{"docker.io", "hubuser", "hubpass"},
		{"reg.example:5000", "berth", "fromberth"}, // the first file wins
		{"ghcr.io", "", ""},                        // an empty entry (a credential helper's) is anonymous
		{"quay.io", "", ""},
	} {
		reg, err := name.NewRegistry(tc.registry)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := kc.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", tc.registry, err)
		}
		cfg, err := authn.Authorization(context.Background(), auth)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user || cfg.Password != tc.pass {
			t.Errorf("%s: credentials %q:%q, want %q:%q", tc.registry, cfg.Username, cfg.Password, tc.user, tc.pass)
		}
	}

	writeTestFile(t, berth, `{"auths": {"reg.example:5000": {"auth": "not base64!"}}}`)
	reg, _ := name.NewRegistry("reg.example:5000")
	if _, err := kc.Resolve(reg); !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("bad auth field: %v", err)
	}
}

func TestLogoutKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	writeTestFile(t, path, `{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}, "reg.example": {"auth": "dTpw"}}, "credsStore": "desktop"}`)
	if err := Logout("docker.io", path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Auths      map[string]json.RawMessage
		CredsStore string
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Auths[dockerHubKey]; ok || got.Auths["reg.example"] == nil || got.CredsStore != "desktop" {
		t.Errorf("after logout: %s", data)
	}
	if err := Logout("docker.io", path); !errors.Is(err, ErrNotLoggedIn) || !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("second logout: %v", err)
	}
	if err := Logout("reg.example", filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("logout without a file: %v", err)
	}
}

func TestDefaultFiles(t *testing.T) {
	t.Setenv("BERTH_CONFIG", "/cfg/berth")
	t.Setenv("DOCKER_CONFIG", "/cfg/docker")
	if got := DefaultAuthFile(); got != "/cfg/berth/auth.json" {
		t.Errorf("DefaultAuthFile() = %s", got)
	}
	if got := DockerConfigFile(); got != "/cfg/docker/config.json" {
		t.Errorf("DockerConfigFile() = %s", got)
	}
	t.Setenv("BERTH_CONFIG", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultAuthFile(); got != "/home/u/.config/berth/auth.json" {
		t.Errorf("DefaultAuthFile() = %s", got)
	}
}

func TestPrinterPlain(t *testing.T) {
	var buf bytes.Buffer
	p := NewPrinter(&buf, false)
	a := digest.FromString("a")
	b := digest.FromString("b")
	ref, _ := image.ParseReference("busybox")
	p.Pulling(ref)
	p.Update(Update{Digest: a, Status: Exists})
	p.Update(Update{Digest: b, Status: Queued, Total: 100})
	for i := int64(0); i <= 100; i += 10 {
		p.Update(Update{Digest: b, Status: Downloading, Current: i, Total: 100})
	}
	p.Update(Update{Digest: b, Status: Verifying})
	p.Update(Update{Digest: b, Status: Downloaded})
	p.Update(Update{Digest: b, Status: Extracting, Current: 50, Total: 100})
	p.Update(Update{Digest: b, Status: Complete})
	p.PullDone(&PullResult{Reference: ref.WithDefaultTag(), RepoDigest: a}, true)
	want := strings.Join([]string{
		"latest: Pulling from library/busybox",
		a.Encoded()[:12] + ": Already exists",
		b.Encoded()[:12] + ": Pulling fs layer",
		b.Encoded()[:12] + ": Verifying Checksum",
		b.Encoded()[:12] + ": Download complete",
		b.Encoded()[:12] + ": Pull complete",
		"Digest: " + a.String(),
		"Status: Downloaded newer image for busybox:latest",
		"docker.io/library/busybox:latest",
	}, "\n") + "\n"
	if buf.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestPrinterTTY(t *testing.T) {
	var buf syncBuffer
	p := NewPrinter(&buf, true)
	ref, _ := image.ParseReference("localhost:5000/app:v2")
	p.Pushing(ref)
	a := digest.FromString("a")
	p.Update(Update{Digest: a, Status: Preparing, Total: 4 << 20})
	p.Update(Update{Digest: a, Status: Pushing, Current: 1 << 20, Total: 4 << 20})
	time.Sleep(400 * time.Millisecond) // a refresh or two
	p.Update(Update{Digest: a, Status: Pushed})
	p.PushDone(&PushResult{Reference: ref, Manifest: ocispec.Descriptor{Digest: a, Size: 527}})
	out := buf.String()
	for _, want := range []string{
		"The push refers to repository [localhost:5000/app]",
		a.Encoded()[:12] + ": Pushing [============>",
		"1.05MB/4.19MB",
		a.Encoded()[:12] + ": Pushed",
		"v2: digest: " + a.String() + " size: 527\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestByteCountAndBar(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1kB", 1234567: "1.23MB", 27150000: "27.1MB", 5 << 30: "5.37GB"} {
		if got := byteCount(n); got != want {
			t.Errorf("byteCount(%d) = %s, want %s", n, got, want)
		}
	}
	if got := progressBar(5, 10, 10); got != "[=====>    ]" {
		t.Errorf("half bar %q", got)
	}
	if got := progressBar(10, 10, 10); got != "[==========]" {
		t.Errorf("full bar %q", got)
	}
}

// fakeRegistry serves manifests and blobs, with or without Range support,
// on loopback: for what the real registry cannot be made to do.
type fakeRegistry struct {
	manifests  map[string]ocispec.Descriptor // by tag or digest, Data holds the bytes
	blobs      map[digest.Digest][]byte
	honorRange bool
	ranges     atomic.Int32 // Range requests seen
}

func (f *fakeRegistry) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/v2/")
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(path, "/manifests/"):
			d, ok := f.manifests[path[strings.LastIndex(path, "/")+1:]]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", d.MediaType)
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(d.Data).String())
			_, _ = w.Write(d.Data)
		case strings.Contains(path, "/blobs/"):
			data, ok := f.blobs[digest.Digest(path[strings.LastIndex(path, "/")+1:])]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			if r.Header.Get("Range") != "" {
				f.ranges.Add(1)
			}
			if f.honorRange {
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
				return
			}
			_, _ = w.Write(data)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestPullRefusesSchema1(t *testing.T) {
	schema1 := []byte(`{"schemaVersion": 1, "name": "x", "tag": "latest", "fsLayers": [], "history": []}`)
	f := &fakeRegistry{manifests: map[string]ocispec.Descriptor{
		"latest": {MediaType: "application/vnd.docker.distribution.manifest.v1+prettyjws", Data: schema1},
		"plain":  {MediaType: "application/json", Data: schema1},
	}}
	host := f.start(t)
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"latest", "plain"} {
		ref, _ := image.ParseReference(host + "/old:" + tag)
		_, err = Pull(context.Background(), cs, ref, PullOptions{})
		if !errors.Is(err, image.ErrUnsupported) || !errdefs.Is(err, errdefs.KindNotImplemented) || !strings.Contains(err.Error(), "schema 1") {
			t.Errorf("%s: %v", tag, err)
		}
	}
}

// TestPullRestarts checks what a pull does with an interrupted download
// when the registry ignores Range (starts over) and when the partial data is
// corrupt (the digest check fails, the pull starts over).
func TestPullRestarts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		honorRange bool
		corrupt    bool
	}{
		{"range ignored", false, false},
		{"range honored", true, false},
		{"corrupt partial data", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			layerData := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
			ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(layerData), Size: int64(len(layerData))}
			cfg, _ := json.Marshal(image.Config{OS: "linux", Architecture: "amd64",
				RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld.Digest}}})
			cd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
			m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}})
			f := &fakeRegistry{
				manifests:  map[string]ocispec.Descriptor{"latest": {MediaType: ocispec.MediaTypeImageManifest, Data: m}},
				blobs:      map[digest.Digest][]byte{ld.Digest: layerData, cd.Digest: cfg},
				honorRange: tc.honorRange,
			}
			host := f.start(t)
			cs, err := content.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			// Half a download, left by an earlier pull.
			w, err := cs.Ingest(ctx, ld.Digest.String(), ld.Digest, ld.Size)
			if err != nil {
				t.Fatal(err)
			}
			half := append([]byte(nil), layerData[:len(layerData)/2]...)
			if tc.corrupt {
				half[100] ^= 0xff
			}
			if _, err := w.Write(half); err != nil {
				t.Fatal(err)
			}
			w.Close()

			ref, _ := image.ParseReference(host + "/app")
			res, err := Pull(ctx, cs, ref, PullOptions{})
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if got, err := cs.ReadBlob(ctx, ld.Digest); err != nil || !bytes.Equal(got, layerData) {
				t.Errorf("layer blob: %v", err)
			}
			if f.ranges.Load() == 0 {
				t.Error("no Range request for the interrupted download")
			}
			if res.Image.Platform.Architecture != "amd64" {
				t.Errorf("platform %v", res.Image.Platform)
			}
		})
	}
}

func TestIsSchema1(t *testing.T) {
	for _, tc := range []struct {
		mt   string
		data string
		want bool
	}{
		{mediaTypeSchema1, "{}", true},
		{mediaTypeSchema1Signed, "{}", true},
		{"", `{"schemaVersion": 1, "fsLayers": []}`, true},
		{"application/json", `{"schemaVersion":1}`, true},
		{"", `{"schemaVersion": 2, "mediaType": "x"}`, false},
		{ocispec.MediaTypeImageManifest, `{"schemaVersion": 1}`, false},
	} {
		if got := isSchema1(tc.mt, []byte(tc.data)); got != tc.want {
			t.Errorf("isSchema1(%q, %s) = %v", tc.mt, tc.data, got)
		}
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
