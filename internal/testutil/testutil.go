// Package testutil builds what berth's integration tests share: a busybox
// root filesystem, OCI bundles made from it, the berth binary, and checks
// that a test left no mount, cgroup or process behind.
package testutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	berthruntime "github.com/berth-dev/berth/internal/runtime"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// RequireRoot skips t unless it runs as root, as integration tests need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts real containers")
	}
}

// RequireBusybox skips t when busybox-static is missing.
func RequireBusybox(t testing.TB) {
	t.Helper()
	if err := checkStatic(BusyboxPath); err != nil {
		t.Skipf("needs busybox-static (apt-get install busybox-static): %v", err)
	}
}

func checkStatic(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// A dynamic ELF names its interpreter; a static one has no PT_INTERP.
	if strings.Contains(string(data[:min(len(data), 4096)]), "/lib64/ld-linux") {
		return fmt.Errorf("%s is dynamically linked", path)
	}
	return nil
}

var applets struct {
	once sync.Once
	list []string
	err  error
}

func busyboxApplets() ([]string, error) {
	applets.once.Do(func() {
		out, err := exec.Command(BusyboxPath, "--list-full").Output()
		if err != nil {
			applets.err = fmt.Errorf("busybox --list-full: %w", err)
			return
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				applets.list = append(applets.list, l)
			}
		}
	})
	return applets.list, applets.err
}

// MakeRootfs fills dir with a busybox root filesystem: /bin/busybox, a
// link per applet, /etc/passwd and group, and the usual empty directories.
func MakeRootfs(dir string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		return err
	}
	list, err := busyboxApplets()
	if err != nil {
		return err
	}
	for _, a := range list {
		dst := filepath.Join(dir, a)
		if dst == filepath.Join(dir, "bin/busybox") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", dst); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
		"etc/hosts":  "127.0.0.1\tlocalhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Bundle is an OCI bundle in a temporary directory.
type Bundle struct {
	Dir  string
	Spec *specs.Spec
}

// Rootfs is the bundle's root filesystem directory.
func (b *Bundle) Rootfs() string { return filepath.Join(b.Dir, "rootfs") }

// NewBundle makes a bundle with a fresh busybox rootfs and runc's default
// spec, changed to run args without a terminal. Edit b.Spec, then Save.
func NewBundle(t testing.TB, args ...string) *Bundle {
	t.Helper()
	RequireBusybox(t)
	dir := t.TempDir()
	// A user namespace's root is "other" to host-owned directories: let it
	// reach the rootfs, as a real bundle directory would.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := MakeRootfs(filepath.Join(dir, "rootfs")); err != nil {
		t.Fatalf("make busybox rootfs: %v", err)
	}
	spec := berthruntime.DefaultSpec(false)
	spec.Process.Terminal = false
	if len(args) > 0 {
		spec.Process.Args = args
	}
	b := &Bundle{Dir: dir, Spec: spec}
	b.Save(t)
	return b
}

// Save writes b.Spec as the bundle's config.json.
func (b *Bundle) Save(t testing.TB) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

var built struct {
	once sync.Once
	path string
	err  error
}

// Binary builds cmd/berth once per test process and returns its path.
// BERTH_BINARY, when set, names a prebuilt binary instead.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BINARY"); p != "" {
		return p
	}
	built.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		repo := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "berth-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/berth")
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}
