package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine"
)

// TestPullDrivers pulls a two-layer image (the second whites out a file of
// the first) with each storage driver, and checks through a container root
// mounted by the layer store that the layers stack as they should.
func TestPullDrivers(t *testing.T) {
	reg := startRegistry(t)
	ref := reg + "/drivers/busybox:v1"
	pushed(t, ref, ociLayout(t, ref, []string{"sh"}, fileLayer(t, busyboxTar(t)), whiteoutLayer(t)))

	for _, driver := range []string{"overlay", "vfs", "btrfs"} {
		t.Run(driver, func(t *testing.T) {
			dir := t.TempDir()
			if driver == "btrfs" {
				dir = loopBtrfs(t)
			}
			e := newImageEnvAt(t, filepath.Join(dir, "root"), "--storage-driver", driver)
			e.must("pull", ref)
			info := e.must("info")
			for _, want := range []string{"Storage Driver: " + driver, "Picked because: requested (--storage-driver " + driver + ")",
				"Root Dir: " + filepath.Join(e.root, "storage", driver)} {
				if !strings.Contains(info, want) {
					t.Errorf("info lacks %q:\n%s", want, info)
				}
			}
			other := "vfs"
			if driver == "vfs" {
				other = "overlay"
			}
			res := e.berth("--storage-driver", other, "pull", ref)
			if res.code != 1 || !strings.Contains(res.stderr, `was created with driver "`+driver+`"; refusing "`+other+`"`) {
				t.Errorf("switching drivers: %+v", res)
			}
			if recs, dirs := e.storageLayers(driver); recs != 2 || dirs != 2 {
				t.Errorf("%d layer records and %d dirs, want 2", recs, dirs)
			}
			checkRootfs(t, e.root, ref)
			e.must("rmi", ref)
			if recs, dirs := e.storageLayers(driver); recs != 0 || dirs != 0 {
				t.Errorf("after rmi: %d layer records and %d dirs", recs, dirs)
			}
		})
	}
}

// checkRootfs mounts a container root over ref through the layer store and
// looks at what the layers made.
func checkRootfs(t *testing.T, root, ref string) {
	t.Helper()
	s, err := engine.OpenImages(engine.ImagesOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := "rootfs-check"
	mnt, cfg, err := s.CreateRootfs(context.Background(), id, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.RemoveRootfs(id); err != nil {
			t.Errorf("remove rootfs: %v", err)
		}
	}()
	if strings.Join(cfg.Config.Cmd, " ") != "sh" {
		t.Errorf("config Cmd %v", cfg.Config.Cmd)
	}
	for path, want := range map[string]bool{"bin/busybox": true, "etc/passwd": true, "etc/added": true, "etc/hosts": false, "etc/.wh.hosts": false} {
		if _, err := os.Lstat(filepath.Join(mnt, path)); (err == nil) != want {
			t.Errorf("/%s in the mounted root: exists %v, want %v", path, err == nil, want)
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "etc", "passwd"), []byte("changed\n"), 0o644); err != nil {
		t.Errorf("write in the container root: %v", err)
	}
}

// fileLayer makes a layer of the tar at path.
func fileLayer(t *testing.T, path string) testLayer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return gzipLayer(t, data)
}

func gzipLayer(t *testing.T, tarData []byte) testLayer {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(tarData); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return testLayer{blob: gz.Bytes(), diffID: digest.FromBytes(tarData)}
}

// whiteoutLayer deletes /etc/hosts and adds /etc/added.
func whiteoutLayer(t *testing.T) testLayer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "etc/.wh.hosts", Mode: 0o644},
		{Typeflag: tar.TypeReg, Name: "etc/added", Mode: 0o644, Size: 6},
	} {
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("added\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return gzipLayer(t, buf.Bytes())
}

// loopBtrfs makes a btrfs file system in a file, mounts it through a loop
// device, and returns where; the test's end unmounts it and detaches the
// device. It skips where mkfs.btrfs, losetup or the kernel's btrfs is
// missing.
func loopBtrfs(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"mkfs.btrfs", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install btrfs-progs util-linux) to make the test file system", tool)
		}
	}
	if fsList, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(fsList), "\tbtrfs\n") {
		t.Skip("the kernel has no btrfs")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	err = f.Truncate(512 << 20)
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
		unmountUnder(filepath.Join(mnt, "root"))
		if err := unix.Unmount(mnt, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", mnt, err)
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}
