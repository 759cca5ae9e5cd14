package e2e

// Helpers for the image tests: a berth root of their own per test, a busybox
// root filesystem tar, images of several layers made on the spot as OCI
// layouts, and Debian's docker-registry on a loopback port. Nothing here
// contacts a public registry or resolves a name: every reference is
// 127.0.0.1:PORT/... or local.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/testutil"
)

// imageEnv is one berth root (and run root) driven through the binary.
type imageEnv struct {
	t       *testing.T
	bin     string
	root    string
	runRoot string
	// flags go before every command: --storage-driver, for one.
	flags []string
	// cgroupParent, when set, holds the containers' cgroups.
	cgroupParent string
	// extraEnv is added to berth's environment (the env's own bridge).
	extraEnv []string
}

// newImageEnv makes a fresh root under a temporary directory; the test's
// end unmounts what berth left mounted there and fails if anything was.
func newImageEnv(t *testing.T, flags ...string) *imageEnv {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	return newImageEnvAt(t, filepath.Join(dir, "root"), flags...)
}

func newImageEnvAt(t *testing.T, root string, flags ...string) *imageEnv {
	t.Helper()
	e := &imageEnv{t: t, bin: testutil.Binary(t), root: root, runRoot: root + "-run", flags: flags}
	t.Cleanup(func() {
		if n := unmountUnder(e.root); n > 0 {
			t.Errorf("%d mount(s) left under %s", n, e.root)
		}
		testutil.CheckNoLeaks(t, []string{e.root}, nil)
	})
	return e
}

// berth runs berth with the env's root and returns what it printed.
func (e *imageEnv) berth(args ...string) result {
	return e.berthStdin(nil, args...)
}

func (e *imageEnv) berthStdin(stdin io.Reader, args ...string) result {
	e.t.Helper()
	full := append([]string{"--root", e.root, "--runroot", e.runRoot}, e.flags...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, append(full, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	// Logins of their own: neither berth's nor docker's of the host.
	cmd.Env = append(os.Environ(), "BERTH_CONFIG="+e.root+"-config", "DOCKER_CONFIG="+e.root+"-docker-config")
	if e.cgroupParent != "" {
		cmd.Env = append(cmd.Env, "BERTH_CGROUP_PARENT="+e.cgroupParent)
	}
	cmd.Env = append(cmd.Env, e.extraEnv...)
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// must runs berth and fails the test unless it exits 0.
func (e *imageEnv) must(args ...string) string {
	e.t.Helper()
	res := e.berth(args...)
	if res.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// fails runs berth, wants exit code 1 and stderr holding want.
func (e *imageEnv) fails(want string, args ...string) result {
	e.t.Helper()
	res := e.berth(args...)
	if res.code != 1 || !strings.Contains(res.stderr, want) {
		e.t.Fatalf("berth %s: want exit 1 and %q on stderr, got exit %d\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), want, res.code, res.stdout, res.stderr)
	}
	return res
}

// storageLayers counts the layer records of the root's layer store and the
// layer directories its driver keeps.
func (e *imageEnv) storageLayers(driver string) (records, dirs int) {
	e.t.Helper()
	recs, _ := filepath.Glob(filepath.Join(e.root, "storage", "layers", "*.json"))
	ents, _ := os.ReadDir(filepath.Join(e.root, "storage", driver))
	for _, d := range ents {
		if d.IsDir() && d.Name() != "l" {
			dirs++
		}
	}
	return len(recs), dirs
}

// busyboxTar writes a tar of a busybox root filesystem and returns its path.
func busyboxTar(t *testing.T) string {
	t.Helper()
	testutil.RequireBusybox(t)
	dir := t.TempDir()
	if err := testutil.MakeRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatalf("make busybox rootfs: %v", err)
	}
	path := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := writeTree(f, filepath.Join(dir, "rootfs")); err != nil {
		t.Fatal(err)
	}
	return path
}

// testLayer is a layer made by a test: a gzip blob and its tar's digest.
type testLayer struct {
	blob   []byte
	diffID digest.Digest
}

// randomLayer makes a layer holding name, a file of size random bytes
// (which gzip cannot shrink), and count small files.
func randomLayer(t *testing.T, name string, size int64, count int) testLayer {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	add := func(hdr *tar.Header, r io.Reader) {
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if r != nil {
			if _, err := io.Copy(tw, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "data/" + name, Mode: 0o644, Size: size}, io.LimitReader(rand.Reader, size))
	for i := range count {
		body := fmt.Sprintf("%s file %d\n", name, i)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("data/%s.d/%d", name, i), Mode: 0o644, Size: int64(len(body))}, strings.NewReader(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l := testLayer{diffID: digest.FromBytes(tarBuf.Bytes())}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	l.blob = gz.Bytes()
	return l
}

// ociLayout writes an OCI image layout directory holding one image named
// name (a full reference) made of layers, and returns its path.
func ociLayout(t *testing.T, name string, cmd []string, layers ...testLayer) string {
	t.Helper()
	dir := t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) map[string]any {
		d := digest.FromBytes(data)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"digest": d.String(), "size": len(data)}
	}
	var diffIDs []string
	var layerDescs []map[string]any
	for _, l := range layers {
		d := put(l.blob)
		d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
		layerDescs = append(layerDescs, d)
		diffIDs = append(diffIDs, l.diffID.String())
	}
	cfg, _ := json.Marshal(map[string]any{
		"created":      "2024-01-02T03:04:05Z",
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, "Cmd": cmd},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cfgDesc := put(cfg)
	cfgDesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfgDesc,
		"layers":        layerDescs,
	})
	mDesc := put(manifest)
	mDesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
	mDesc["annotations"] = map[string]string{"io.containerd.image.name": name}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{mDesc}})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// registryBinary is Debian's docker-registry (distribution 2.8):
// apt-get install -y docker-registry.
const registryBinary = "/usr/bin/docker-registry"

// testUser and testPassword are in testHtpasswd (htpasswd -Bbn: bcrypt, as
// distribution requires).
const (
	testUser     = "tester"
	testPassword = "s3cret-pass"
	testHtpasswd = "tester:$2y$05$D9/mH9QE5VGbwXYCwuwFjuaVFZV3tcpEVyikXRMCAt2px.9vY3.ha\n"
)

// startRegistry runs docker-registry on a free loopback port with its
// storage in a temporary directory and returns its host:port; the test's
// end (or the test binary's death) stops it.
func startRegistry(t *testing.T) string {
	t.Helper()
	return startRegistryWith(t, false)
}

// startRegistryWith starts the registry, with htpasswd basic auth for
// testUser if auth.
func startRegistryWith(t *testing.T, auth bool) string {
	t.Helper()
	if _, err := os.Stat(registryBinary); err != nil {
		msg := fmt.Sprintf("needs %s (apt-get install -y docker-registry): %v", registryBinary, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var lastErr error
	for range 3 {
		host := freeLoopbackAddr(t)
		conf := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"+
			"storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"+
			"http:\n  addr: %s\n  secret: berth-test-secret\n", filepath.Join(dir, "data"), host)
		if auth {
			htpasswd := filepath.Join(dir, "htpasswd")
			if err := os.WriteFile(htpasswd, []byte(testHtpasswd), 0o600); err != nil {
				t.Fatal(err)
			}
			conf += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", htpasswd)
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
		if err := waitRegistry(host, exited); err != nil {
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

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitRegistry(host string, exited <-chan struct{}) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry exited")
		default:
		}
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("docker-registry did not answer on %s", host)
}

// pushed makes an image from an OCI layout in a root of its own and pushes
// it to ref; pulls then start from a fresh root.
func pushed(t *testing.T, ref, layout string) {
	t.Helper()
	seed := newImageEnv(t)
	seed.must("load", "-i", layout)
	seed.must("push", ref)
}
