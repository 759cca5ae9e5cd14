package drivers_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/storage/drivers"
	"github.com/berth-dev/berth/internal/storage/overlay"
	"github.com/berth-dev/berth/internal/storage/storagetest"
)

func TestPickDefault(t *testing.T) {
	storagetest.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "storage")
	d, reason, err := drivers.Pick(root, "")
	if err != nil {
		t.Fatal(err)
	}
	want := "vfs"
	if overlay.Supported() == nil {
		want = "overlay"
	}
	if d.Name() != want || reason == "" {
		t.Errorf("Pick = %s (%q), want %s", d.Name(), reason, want)
	}
	// The choice sticks, with its reason.
	d2, reason2, err := drivers.Pick(root, "")
	if err != nil || d2.Name() != d.Name() || reason2 != reason {
		t.Errorf("second Pick = %v (%q), %v; want %s (%q)", d2, reason2, err, d.Name(), reason)
	}
	if _, _, err := drivers.Pick(root, d.Name()); err != nil {
		t.Errorf("Pick of the root's own driver: %v", err)
	}
}

func TestPickRefusesSwitch(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	if _, _, err := drivers.Pick(root, "vfs"); err != nil {
		t.Fatal(err)
	}
	_, _, err := drivers.Pick(root, "overlay")
	want := `storage root ` + root + ` was created with driver "vfs"; refusing "overlay" — remove the root or use --storage-driver vfs`
	if err == nil || err.Error() != want {
		t.Errorf("Pick of another driver: %v\nwant: %s", err, want)
	}
	if !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("kind = %v, want conflict", errdefs.KindOf(err))
	}
}

func TestPickRequested(t *testing.T) {
	root := filepath.Join(t.TempDir(), "storage")
	d, reason, err := drivers.Pick(root, "vfs")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "vfs" || !strings.Contains(reason, "requested") {
		t.Errorf("Pick(vfs) = %s (%q)", d.Name(), reason)
	}
}

// TestPickUnavailable asks for drivers this host lacks: the error says
// why and names the drivers that work, and nothing is left behind.
func TestPickUnavailable(t *testing.T) {
	tests := []struct {
		name string
		kind errdefs.Kind
		says string
	}{
		{"aufs", errdefs.KindUnavailable, "no aufs"},
		{"devicemapper", errdefs.KindUnavailable, "no device-mapper"},
		{"btrfs", errdefs.KindUnavailable, "not btrfs"},
		{"zfs", errdefs.KindInvalidArgument, "unknown storage driver"},
		{"overlay2", errdefs.KindInvalidArgument, `called "overlay"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "aufs" && inProcFilesystems("aufs") ||
				tt.name == "devicemapper" && exists("/dev/mapper/control") {
				t.Skipf("this kernel has %s", tt.name)
			}
			root := filepath.Join(t.TempDir(), "storage")
			if tt.name == "btrfs" && storageFS(t, filepath.Dir(root)) == "btrfs" {
				t.Skip("the temporary directory is on btrfs")
			}
			_, _, err := drivers.Pick(root, tt.name)
			if err == nil {
				t.Fatal("Pick succeeded")
			}
			if errdefs.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q (kind %v), want kind %v saying %q", err, errdefs.KindOf(err), tt.kind, tt.says)
			}
			if tt.kind == errdefs.KindUnavailable && !strings.Contains(err.Error(), "drivers that work here: ") {
				t.Errorf("error does not name the drivers that work: %v", err)
			}
			if _, err := os.Lstat(root); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed Pick left %s behind", root)
			}
		})
	}
}

func TestWorking(t *testing.T) {
	names := drivers.Working(t.TempDir())
	if len(names) == 0 || names[len(names)-1] != "vfs" {
		t.Errorf("Working = %v, want vfs last", names)
	}
}

func inProcFilesystems(name string) bool {
	data, _ := os.ReadFile("/proc/filesystems")
	return strings.Contains(string(data), "\t"+name+"\n")
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func storageFS(t *testing.T, dir string) string {
	t.Helper()
	d, err := drivers.New(dir, "vfs")
	if err != nil {
		t.Fatal(err)
	}
	return d.Status().BackingFS
}
