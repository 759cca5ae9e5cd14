package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
}

func mounted(t *testing.T, path string) bool {
	t.Helper()
	ok, err := isMountPoint(path)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestTmpfsVolumeMount(t *testing.T) {
	needRoot(t)
	s := openStore(t)
	v, err := s.Create("scratch", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,mode=0700,nodev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountAll(v.Mountpoint) })
	p1, err := s.Mount("scratch")
	if err != nil {
		t.Fatal(err)
	}
	if p1 != v.Mountpoint || !mounted(t, p1) {
		t.Fatalf("Mount = %q, mounted %v", p1, mounted(t, p1))
	}
	// The fallback for kernels without STATX_ATTR_MOUNT_ROOT agrees.
	if ok, err := inMountinfo(p1); !ok || err != nil {
		t.Errorf("inMountinfo(%s) = %v, %v", p1, ok, err)
	}
	if ok, _ := inMountinfo(s.Dir()); ok {
		t.Errorf("inMountinfo(%s) = true", s.Dir())
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(p1, &fs); err != nil || fs.Type != unix.TMPFS_MAGIC || fs.Blocks*uint64(fs.Bsize) != 1<<20 {
		t.Errorf("statfs: type %#x, %d bytes, %v", fs.Type, fs.Blocks*uint64(fs.Bsize), err)
	}
	if st, err := os.Stat(p1); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("mode: %v %v", st, err)
	}
	if err := os.WriteFile(filepath.Join(p1, "f"), []byte("kept while mounted"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second user shares the mount: one mount, counted twice.
	if _, err := s.Mount("scratch"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(readMountinfo(t), " "+p1+" "); n != 1 {
		t.Errorf("mounted %d times, want once", n)
	}
	if err := s.Unmount("scratch"); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, p1) {
		t.Fatal("unmounted while a user remains")
	}
	if _, err := os.Stat(filepath.Join(p1, "f")); err != nil {
		t.Errorf("content lost: %v", err)
	}
	if err := s.Unmount("scratch"); err != nil {
		t.Fatal(err)
	}
	if mounted(t, p1) {
		t.Fatal("still mounted after the last Unmount")
	}
	// An extra Unmount is harmless.
	if err := s.Unmount("scratch"); err != nil {
		t.Error(err)
	}
	// A count left by a reboot (the mount gone) is not trusted.
	if err := os.WriteFile(filepath.Join(s.Dir(), "scratch", mountsFile), []byte("3"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("scratch"); err != nil || !mounted(t, p1) {
		t.Fatalf("Mount after stale count: %v", err)
	}
	if err := s.Unmount("scratch"); err != nil || mounted(t, p1) {
		t.Fatalf("Unmount after stale count: %v, mounted %v", err, mounted(t, p1))
	}
}

func readMountinfo(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A volume of a host directory (o=bind) is unmounted before removal: the
// host's files survive Remove.
func TestRemoveBindVolumeKeepsHostFiles(t *testing.T) {
	needRoot(t)
	s := openStore(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("hostdir", map[string]string{"type": "none", "device": host, "o": "bind,ro"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unmountAll(v.Mountpoint) })
	p, err := s.Mount("hostdir")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "precious")); err != nil {
		t.Fatalf("bind not visible: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p, "new"), nil, 0o644); err == nil {
		t.Error("ro bind volume is writable")
	}
	if err := s.Remove("hostdir", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Errorf("host file removed with the volume: %v", err)
	}
	if strings.Contains(readMountinfo(t), s.Dir()) {
		t.Error("mount left behind")
	}
}

func TestMountFailure(t *testing.T) {
	needRoot(t)
	s := openStore(t)
	if _, err := s.Create("bad", map[string]string{"type": "nosuchfs", "device": "x"}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.Mount("bad")
	if err == nil || !strings.Contains(err.Error(), "failed to mount local volume") {
		t.Fatalf("Mount = %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "bad", mountsFile)); !os.IsNotExist(err) {
		t.Errorf("count written for a failed mount: %v", err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
