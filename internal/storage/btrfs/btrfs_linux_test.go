package btrfs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/btrfs"
	"github.com/berth-dev/berth/internal/storage/storagetest"
)

func newDriver(t testing.TB, root string) storage.Driver {
	t.Helper()
	d, err := btrfs.New(filepath.Join(root, btrfs.Name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// loopBtrfs makes a 300 MB btrfs file system in a file, mounts it through
// a loop device, and returns where; the test's end unmounts it and
// detaches the loop device, whatever happened.
func loopBtrfs(t testing.TB) string {
	t.Helper()
	storagetest.RequireRoot(t)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("needs mkfs.btrfs to make the test file system (apt-get install btrfs-progs); the driver itself does not")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup (util-linux) to attach the test file system")
	}
	fsList, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(fsList), "\tbtrfs\n") {
		t.Skip("the kernel has no btrfs")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(300 << 20)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", dev, err)
	}
	t.Cleanup(func() {
		storagetest.UnmountUnder(mnt)
		if err := unix.Unmount(mnt, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

func TestConformance(t *testing.T) { storagetest.Run(t, loopBtrfs(t), newDriver) }

func TestNotBtrfs(t *testing.T) {
	_, err := btrfs.New(filepath.Join(t.TempDir(), "btrfs"))
	if fsName, _ := storage.FSName(os.TempDir()); fsName == "btrfs" {
		t.Skip("the temporary directory is on btrfs")
	}
	if !errors.Is(err, storage.ErrUnsupported) {
		t.Fatalf("btrfs.New off btrfs: %v, want ErrUnsupported", err)
	}
	if !strings.Contains(err.Error(), "not btrfs") {
		t.Errorf("error does not say why: %v", err)
	}
}

// TestNestedSubvolume checks that removing a layer removes a subvolume a
// container made inside it.
func TestNestedSubvolume(t *testing.T) {
	mnt := loopBtrfs(t)
	d := newDriver(t, mnt)
	if err := d.Create("a", "", true); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(d.Dir("a"), "nested")).CombinedOutput(); err != nil {
		t.Skipf("btrfs subvolume create: %v: %s", err, out)
	}
	if err := d.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if d.Exists("a") {
		t.Error("layer still there")
	}
}

func BenchmarkMount(b *testing.B) { storagetest.Benchmark(b, loopBtrfs(b), newDriver) }
