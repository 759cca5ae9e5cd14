package volume

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func statT(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestCopyUp(t *testing.T) {
	img := filepath.Join(t.TempDir(), "app")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(img, "sub", "deep"), 0o755))
	must(os.WriteFile(filepath.Join(img, "file"), []byte("hello"), 0o640))
	must(os.WriteFile(filepath.Join(img, "sub", "deep", "x"), []byte("deep"), 0o600))
	must(os.WriteFile(filepath.Join(img, "suid"), []byte("#!"), 0o755))
	// unix.Chmod: os.Chmod reads 0o4755 as plain permission bits.
	must(unix.Chmod(filepath.Join(img, "suid"), 0o4755))
	must(os.Symlink("../../etc/passwd", filepath.Join(img, "link")))
	must(os.Symlink("sub", filepath.Join(img, "dirlink")))
	must(os.Link(filepath.Join(img, "file"), filepath.Join(img, "hard")))
	must(unix.Mkfifo(filepath.Join(img, "fifo"), 0o600))
	must(unix.Chmod(filepath.Join(img, "fifo"), 0o620))
	must(unix.Chmod(filepath.Join(img, "sub"), 0o1777))
	must(os.Chmod(img, 0o750))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(img, "file"), old, old))
	root := os.Geteuid() == 0
	if root {
		must(os.Lchown(filepath.Join(img, "file"), 1234, 5678))
		must(os.Lchown(filepath.Join(img, "link"), 42, 43))
		must(os.Chown(img, 1000, 1000))
	}
	xattr := unix.Setxattr(filepath.Join(img, "file"), "user.berth", []byte("v"), 0) == nil

	vol := filepath.Join(t.TempDir(), "_data")
	must(os.Mkdir(vol, 0o755))
	must(CopyUp(img, vol))

	data, err := os.ReadFile(filepath.Join(vol, "file"))
	if err != nil || string(data) != "hello" {
		t.Errorf("file = %q, %v", data, err)
	}
	if data, _ := os.ReadFile(filepath.Join(vol, "sub", "deep", "x")); string(data) != "deep" {
		t.Errorf("deep file = %q", data)
	}
	for p, mode := range map[string]uint32{"": 0o750, "file": 0o640, "suid": 0o4755, "sub": 0o1777, "sub/deep/x": 0o600, "fifo": 0o620} {
		if got := statT(t, filepath.Join(vol, p)).Mode & 0o7777; got != mode {
			t.Errorf("mode of %q = %o, want %o", p, got, mode)
		}
	}
	if statT(t, filepath.Join(vol, "fifo")).Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Error("fifo is not a fifo")
	}
	if target, err := os.Readlink(filepath.Join(vol, "link")); err != nil || target != "../../etc/passwd" {
		t.Errorf("link = %q, %v", target, err)
	}
	if target, _ := os.Readlink(filepath.Join(vol, "dirlink")); target != "sub" {
		t.Errorf("dirlink = %q", target)
	}
	if a, b := statT(t, filepath.Join(vol, "file")), statT(t, filepath.Join(vol, "hard")); a.Ino != b.Ino {
		t.Error("hard link copied as two files")
	}
	if st := statT(t, filepath.Join(vol, "file")); time.Unix(st.Mtim.Unix()).UTC() != old {
		t.Errorf("mtime = %v, want %v", time.Unix(st.Mtim.Unix()).UTC(), old)
	}
	if root {
		if st := statT(t, filepath.Join(vol, "file")); st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("file owner %d:%d", st.Uid, st.Gid)
		}
		if st := statT(t, filepath.Join(vol, "link")); st.Uid != 42 || st.Gid != 43 {
			t.Errorf("link owner %d:%d", st.Uid, st.Gid)
		}
		if st := statT(t, vol); st.Uid != 1000 || st.Gid != 1000 {
			t.Errorf("volume root owner %d:%d", st.Uid, st.Gid)
		}
	}
	if xattr {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(filepath.Join(vol, "file"), "user.berth", buf)
		if err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr = %q, %v", buf[:n], err)
		}
	}
}

func TestCopyUpSkips(t *testing.T) {
	img := t.TempDir()
	if err := os.WriteFile(filepath.Join(img, "new"), []byte("image"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A volume with data keeps it: no copy at all.
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "old"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyUp(img, vol); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(vol, "new")); !os.IsNotExist(err) {
		t.Error("copied into a volume that had data")
	}
	// Nothing at the mount point in the image, or a file there: nothing to do.
	empty := t.TempDir()
	if err := CopyUp(filepath.Join(img, "missing"), empty); err != nil {
		t.Error(err)
	}
	if err := CopyUp(filepath.Join(img, "new"), empty); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("copied %d entries from nothing", len(entries))
	}
	if err := CopyUp(img, filepath.Join(empty, "missing")); err == nil {
		t.Error("CopyUp into a missing volume directory succeeded")
	}
}
