package vfs_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/storage/storagetest"
	"github.com/berth-dev/berth/internal/storage/vfs"
)

// TestCopyTree checks what the conformance suite's layers do not hold: a
// socket, file capabilities (which chown clears) on a setuid file, a
// read-only directory, and hard links across directories.
func TestCopyTree(t *testing.T) {
	storagetest.RequireRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	dst := filepath.Join(t.TempDir(), "dst")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "a/ro"), 0o755))
	must(os.MkdirAll(filepath.Join(src, "b"), 0o755))
	must(os.WriteFile(filepath.Join(src, "a/ro/f"), []byte("f"), 0o644))
	must(os.Chmod(filepath.Join(src, "a/ro"), 0o555))
	must(os.WriteFile(filepath.Join(src, "a/ping"), []byte("elf"), 0o755))
	must(os.Chown(filepath.Join(src, "a/ping"), 0, 10))
	must(unix.Chmod(filepath.Join(src, "a/ping"), 0o4755)) // os.Chmod wants os.ModeSetuid
	// cap_net_raw+ep, VFS_CAP_REVISION_2.
	capability := []byte{0, 0, 0, 2, 0, 32, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if err := unix.Setxattr(filepath.Join(src, "a/ping"), "security.capability", capability, 0); err != nil {
		t.Skipf("file capabilities not supported here: %v", err)
	}
	must(os.Link(filepath.Join(src, "a/ping"), filepath.Join(src, "b/ping")))
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	must(err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	must(vfs.CopyTree(src, dst))

	var st, st2 unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "a/ping"), &st))
	if st.Mode&07777 != 0o4755 || st.Gid != 10 {
		t.Errorf("a/ping: mode %o gid %d, want 4755 10", st.Mode&07777, st.Gid)
	}
	must(unix.Lstat(filepath.Join(dst, "b/ping"), &st2))
	if st.Ino != st2.Ino {
		t.Error("hard link across directories not kept")
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dst, "a/ping"), "security.capability", buf)
	if err != nil || !bytes.Equal(buf[:n], capability) {
		t.Errorf("security.capability = %x, %v; want %x", buf[:max(n, 0)], err, capability)
	}
	must(unix.Lstat(filepath.Join(dst, "a/ro"), &st))
	if st.Mode&07777 != 0o555 {
		t.Errorf("a/ro: mode %o, want 555", st.Mode&07777)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "a/ro/f")); err != nil || string(got) != "f" {
		t.Errorf("a/ro/f = %q, %v", got, err)
	}
	must(unix.Lstat(filepath.Join(dst, "sock"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("sock: mode %o, want a socket", st.Mode)
	}
	if err := vfs.CopyTree(src, dst); err == nil {
		t.Error("copy onto an existing directory succeeded")
	}
}
