package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/mount"
)

func TestCompactOverlayData(t *testing.T) {
	tests := []struct {
		data, dir, compact string
	}{
		{
			"lowerdir=/a/b/l/X:/a/b/l/Y,upperdir=/a/b/c1/diff,workdir=/a/b/c1/work,volatile",
			"/a/b", "lowerdir=l/X:l/Y,upperdir=c1/diff,workdir=c1/work,volatile",
		},
		{"index=off,lowerdir=/a/l/X:/a/l/Y,ro", "/a/l", "index=off,lowerdir=X:Y,ro"},
		{"lowerdir=/x/1:/y/2", "", "lowerdir=/x/1:/y/2"},
		{"ro", "", "ro"},
	}
	for _, tt := range tests {
		dir, compact := compactOverlayData(tt.data)
		if dir != tt.dir || compact != tt.compact {
			t.Errorf("compactOverlayData(%q) = %q, %q; want %q, %q", tt.data, dir, compact, tt.dir, tt.compact)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts file systems")
	}
}

// longOverlay makes an overlay of n lower layers whose options are longer
// than a page, and returns its mount.
func longOverlay(t *testing.T, n int) (Mount, string) {
	t.Helper()
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 60))
	var lowers []string
	for i := range n {
		l := filepath.Join(long, fmt.Sprintf("layer%03d", i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, fmt.Sprintf("f%03d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(long, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(dir, "merged")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(target) })
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + filepath.Join(long, "upper"),
		"workdir=" + filepath.Join(long, "work"),
	}}
	if len(mount.ParseOptions(m.Options).Data) < os.Getpagesize() {
		t.Fatal("options fit in a page: the test tests nothing")
	}
	return m, target
}

func checkLongOverlay(t *testing.T, target string, n int) {
	t.Helper()
	ents, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Errorf("merged view holds %d files, want %d", len(ents), n)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := IsMountPoint(target); mounted {
		t.Error("still mounted after Unmount")
	}
}

func TestMountLongOverlay(t *testing.T) {
	requireRoot(t)
	const n = 120
	t.Run("MountAll", func(t *testing.T) {
		m, target := longOverlay(t, n)
		if err := unix.Mount(m.Source, target, m.Type, 0, mount.ParseOptions(m.Options).Data); err == nil {
			_ = Unmount(target)
			t.Log("mount(2) took options longer than a page")
		}
		if err := MountAll([]Mount{m}, target); err != nil {
			t.Fatal(err)
		}
		checkLongOverlay(t, target, n)
	})
	t.Run("fsconfig", func(t *testing.T) {
		m, target := longOverlay(t, n)
		err := fsmountOverlay(m.Source, target, mount.ParseOptions(m.Options))
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			t.Skipf("kernel without lowerdir+ (Linux 6.8): %v", err)
		} else if err != nil {
			t.Fatal(err)
		}
		checkLongOverlay(t, target, n)
	})
	t.Run("relative", func(t *testing.T) {
		m, target := longOverlay(t, n)
		wd, _ := os.Getwd()
		if err := mountRelative(m.Source, target, mount.ParseOptions(m.Options)); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.Getwd(); now != wd {
			t.Errorf("working directory changed to %s", now)
		}
		checkLongOverlay(t, target, n)
	})
}

func TestMountAllBindReadOnly(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	src, target := filepath.Join(dir, "src"), filepath.Join(dir, "target")
	for _, d := range []string{src, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = Unmount(target) })
	if err := MountAll([]Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}, target); err != nil {
		t.Fatal(err)
	}
	if mounted, err := IsMountPoint(target); err != nil || !mounted {
		t.Fatalf("IsMountPoint = %v, %v", mounted, err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write to a read-only bind: %v, want EROFS", err)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Errorf("Unmount of what is not mounted: %v", err)
	}
}
