// Package drivers picks the storage driver for a storage root: what the
// kernel supports, unless the user asks for one, and always the one the
// root was created with. It sits apart from storage because the drivers
// themselves depend on storage.
package drivers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/btrfs"
	"github.com/berth-dev/berth/internal/storage/overlay"
	"github.com/berth-dev/berth/internal/storage/vfs"
)

// Names lists the drivers berth implements, in the order Pick prefers them.
var Names = []string{overlay.Name, btrfs.Name, vfs.Name}

// Pick returns the driver for the storage root, and why it is that one.
// A root keeps the driver it was created with: asking for another is
// refused. For a new root, requested ("" for none) is used if the host can
// hold it; otherwise the first that works of overlay, btrfs (only where
// the root is on btrfs) and vfs. The choice is recorded in the root.
// Nothing is left behind when Pick fails.
func Pick(root, requested string) (storage.Driver, string, error) {
	name, reason, err := storage.ReadDriverChoice(root)
	if err != nil {
		return nil, "", err
	}
	if name != "" {
		if requested != "" && requested != name {
			return nil, "", errdefs.Conflict(fmt.Errorf("storage root %s was created with driver %q; refusing %q — remove the root or use --storage-driver %s", root, name, requested, name))
		}
		d, err := New(root, name)
		if err != nil {
			return nil, "", err
		}
		return d, reason, nil
	}

	created := !exists(root)
	d, reason, err := pickNew(root, requested)
	if err == nil {
		var got string
		got, reason, err = storage.RecordDriverChoice(root, d.Name(), reason)
		if err == nil && got != d.Name() {
			// Another process created the root first, with another driver.
			if requested != "" {
				err = errdefs.Conflict(fmt.Errorf("storage root %s was created with driver %q; refusing %q — remove the root or use --storage-driver %s", root, got, requested, got))
			} else {
				d, err = New(root, got)
			}
		}
	}
	if err != nil {
		if created {
			_ = os.RemoveAll(root)
		}
		return nil, "", err
	}
	return d, reason, nil
}

func pickNew(root, requested string) (storage.Driver, string, error) {
	if requested != "" {
		d, err := New(root, requested)
		if err != nil {
			return nil, "", err
		}
		return d, "requested (--storage-driver " + requested + ")", nil
	}
	d, err := New(root, overlay.Name)
	if err == nil {
		return d, "the kernel supports overlayfs; the default", nil
	}
	why := err.Error()
	if btrfs.Supported(root) == nil {
		d, err := New(root, btrfs.Name)
		if err != nil {
			return nil, "", err
		}
		return d, "overlay does not work here (" + why + "); the storage root is on btrfs", nil
	}
	d, err = New(root, vfs.Name)
	if err != nil {
		return nil, "", err
	}
	return d, "overlay does not work here (" + why + "); vfs works anywhere", nil
}

// New opens driver name with its home in the storage root, checking that
// the host can hold it; it does not consult or record the root's choice
// (Pick does).
func New(root, name string) (storage.Driver, error) {
	home := filepath.Join(root, name)
	fresh := !exists(home)
	var d storage.Driver
	var err error
	switch name {
	case overlay.Name:
		d, err = overlay.New(home)
	case btrfs.Name:
		d, err = btrfs.New(home)
	case vfs.Name:
		d, err = vfs.New(home)
	case "overlay2":
		return nil, errdefs.InvalidArgument(fmt.Errorf("storage driver %q is called %q in berth", name, overlay.Name))
	case "aufs", "devicemapper":
		return nil, detectOnly(root, name)
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("unknown storage driver %q: berth has %s", name, strings.Join(Names, ", ")))
	}
	if err != nil {
		if fresh {
			_ = os.RemoveAll(home)
		}
		if errors.Is(err, storage.ErrUnsupported) {
			return nil, errdefs.Unavailable(fmt.Errorf("storage driver %q does not work here: %w; drivers that work here: %s", name, err, strings.Join(Working(root), ", ")))
		}
		return nil, fmt.Errorf("storage driver %q: %w", name, err)
	}
	return d, nil
}

// detectOnly explains why aufs or devicemapper cannot be used: the kernel
// lacks it (as most do now), or berth does not implement it.
func detectOnly(root, name string) error {
	var have bool
	var lacks string
	switch name {
	case "aufs":
		have = inProcFilesystems("aufs")
		lacks = "the kernel has no aufs (not in /proc/filesystems; aufs was never merged into Linux)"
	case "devicemapper":
		_, err := os.Stat("/dev/mapper/control")
		have = err == nil
		lacks = "the kernel has no device-mapper (no /dev/mapper/control)"
	}
	works := strings.Join(Working(root), ", ")
	if !have {
		return errdefs.Unavailable(fmt.Errorf("storage driver %q does not work here: %s; drivers that work here: %s", name, lacks, works))
	}
	return errdefs.NotImplemented(fmt.Errorf("storage driver %q: the kernel has it, but berth does not implement it (docker deprecated it); drivers that work here: %s", name, works))
}

// Working lists the drivers that can work for the storage root, from what
// the kernel and the file system say, without mounting or creating anything.
func Working(root string) []string {
	var names []string
	if overlay.Supported() == nil {
		names = append(names, overlay.Name)
	}
	if btrfs.Supported(root) == nil {
		names = append(names, btrfs.Name)
	}
	return append(names, vfs.Name)
}

func inProcFilesystems(fsName string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == fsName {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
