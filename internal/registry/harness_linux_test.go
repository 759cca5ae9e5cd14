package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/testutil"
)

// registryBinary is Debian's docker-registry (distribution 2.8):
// apt-get install -y docker-registry.
const registryBinary = "/usr/bin/docker-registry"

// testUser and testPassword are in testHtpasswd (htpasswd -Bbn, bcrypt as
// distribution requires).
const (
	testUser     = "tester"
	testPassword = "s3cret-pass"
	testHtpasswd = "tester:$2y$05$D9/mH9QE5VGbwXYCwuwFjuaVFZV3tcpEVyikXRMCAt2px.9vY3.ha\n"
)

type registryConfig struct {
	auth  bool       // htpasswd basic auth with testUser
	token *tokenAuth // bearer tokens from a token server
	tls   *tlsFiles  // serve TLS with this certificate
}

type tokenAuth struct {
	realm  string // the token server's URL
	bundle string // the certificate that signs tokens
}

type tlsFiles struct {
	caPEM             []byte
	certPath, keyPath string
}

// startRegistry runs docker-registry on a free loopback port with its
// storage in a temporary directory, and returns its host:port. The process
// is killed when the test ends (and if the test binary dies).
func startRegistry(t *testing.T, cfg registryConfig) string {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		t.Skipf("needs %s (apt-get install -y docker-registry): %v", registryBinary, err)
	}
	dir := t.TempDir()
	var lastErr error
	for range 3 {
		host := freeAddr(t)
		conf := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: berth-test-secret
`, filepath.Join(dir, "data"), host)
		if cfg.tls != nil {
			conf += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cfg.tls.certPath, cfg.tls.keyPath)
		}
		if cfg.auth {
			htpasswd := filepath.Join(dir, "htpasswd")
			if err := os.WriteFile(htpasswd, []byte(testHtpasswd), 0o600); err != nil {
				t.Fatal(err)
			}
			conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
		}
		if cfg.token != nil {
			conf += fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
				cfg.token.realm, tokenService, tokenIssuer, cfg.token.bundle)
		}
		confPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cmd := exec.Command(registryBinary, "serve", confPath)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", registryBinary, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		if err := waitReady(host, cfg.tls != nil, exited); err != nil {
			stop()
			lastErr = fmt.Errorf("%v; registry output:\n%s", err, logs.String())
			continue
		}
		t.Cleanup(stop)
		return host
	}
	t.Fatalf("docker-registry did not start: %v", lastErr)
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(host string, tls bool, exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited")
		default:
		}
		conn, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			conn.Close()
			if tls {
				return nil
			}
			resp, err := http.Get("http://" + host + "/v2/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("docker-registry did not answer on %s", host)
}

// makeTLS writes a CA and a certificate for 127.0.0.1 it signed.
func makeTLS(t *testing.T) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFiles{
		caPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certPath: filepath.Join(dir, "cert.pem"),
		keyPath:  filepath.Join(dir, "key.pem"),
	}
	if err := os.WriteFile(f.certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// newStore opens a content store in a fresh temporary root.
func newStore(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// layer is a layer made by a test: its blob and the digest of its tar.
type layer struct {
	data      []byte
	mediaType string
	diffID    digest.Digest
}

// tarDir writes dir as a tar, as a layer would hold it.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarFiles writes a tar of regular files.
func tarFiles(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipLayer(t *testing.T, tarData []byte) layer {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(tarData); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return layer{data: buf.Bytes(), mediaType: ocispec.MediaTypeImageLayerGzip, diffID: digest.FromBytes(tarData)}
}

func zstdLayer(t *testing.T, tarData []byte) layer {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(tarData); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return layer{data: buf.Bytes(), mediaType: ocispec.MediaTypeImageLayerZstd, diffID: digest.FromBytes(tarData)}
}

func plainLayer(tarData []byte) layer {
	return layer{data: tarData, mediaType: ocispec.MediaTypeImageLayer, diffID: digest.FromBytes(tarData)}
}

var (
	busyboxOnce  sync.Once
	busyboxLayer layer
	busyboxErr   error
)

// busybox is a gzipped layer of a busybox root filesystem, made once.
func busybox(t *testing.T) layer {
	t.Helper()
	testutil.RequireBusybox(t)
	busyboxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-registry-busybox-")
		if err != nil {
			busyboxErr = err
			return
		}
		defer os.RemoveAll(dir)
		if busyboxErr = testutil.MakeRootfs(dir); busyboxErr != nil {
			return
		}
		busyboxLayer = gzipLayer(t, tarDir(t, dir))
	})
	if busyboxErr != nil {
		t.Fatal(busyboxErr)
	}
	return busyboxLayer
}

func putBlob(t *testing.T, cs *content.Store, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := cs.Put(context.Background(), "", bytes.NewReader(data), d.Digest, d.Size); err != nil {
		t.Fatal(err)
	}
	return d
}

func putJSON(t *testing.T, cs *content.Store, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return putBlob(t, cs, mediaType, data)
}

// putImage stores a config and an OCI manifest for layers on platform,
// and returns the manifest's descriptor.
func putImage(t *testing.T, cs *content.Store, platform ocispec.Platform, layers ...layer) ocispec.Descriptor {
	t.Helper()
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := image.Config{
		Created: &created, Architecture: platform.Architecture, OS: platform.OS, Variant: platform.Variant,
		Config: image.RunConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
		RootFS: ocispec.RootFS{Type: "layers"},
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, putBlob(t, cs, l.mediaType, l.data))
	}
	m.Config = putJSON(t, cs, ocispec.MediaTypeImageConfig, cfg)
	d := putJSON(t, cs, ocispec.MediaTypeImageManifest, m)
	d.Platform = &platform
	return d
}

// putIndex stores an OCI index of manifests.
func putIndex(t *testing.T, cs *content.Store, manifests ...ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	return putJSON(t, cs, ocispec.MediaTypeImageIndex, idx)
}

func mustRef(t *testing.T, s string) image.Reference {
	t.Helper()
	ref, err := image.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// recorder is a Progress that keeps every update.
type recorder struct {
	mu      sync.Mutex
	updates []Update
	hook    func(Update)
}

func (r *recorder) Update(u Update) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(u)
	}
}

// statuses returns the distinct statuses d went through, in order.
func (r *recorder) statuses(d digest.Digest) []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Status
	for _, u := range r.updates {
		if u.Digest == d && (len(out) == 0 || out[len(out)-1] != u.Status) {
			out = append(out, u.Status)
		}
	}
	return out
}

// first returns d's first update with status s.
func (r *recorder) first(d digest.Digest, s Status) (Update, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.updates {
		if u.Digest == d && u.Status == s {
			return u, true
		}
	}
	return Update{}, false
}

func hasLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func digestOf(data []byte) digest.Digest { return digest.FromBytes(data) }

func itoa(n int64) string { return fmt.Sprint(n) }

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
