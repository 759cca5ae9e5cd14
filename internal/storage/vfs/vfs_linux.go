// Package vfs keeps each layer as a full copy of everything below it. It
// needs nothing from the kernel or the file system and so works anywhere,
// at the cost of the disk space and the time of a copy per layer (reflinks
// make both small where the file system has them: btrfs, xfs).
//
// Layout of the home directory:
//
//	<id>/root      the layer's complete tree
//	<id>/writable  present for a container's writable layer
package vfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/storage"
)

// Name is the driver's name.
const Name = "vfs"

// Driver is the vfs storage driver.
type Driver struct {
	home string
}

// New returns the vfs driver keeping its layers in home.
func New(home string) (*Driver, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("vfs: %w", err)
	}
	return &Driver{home: home}, nil
}

// Name returns "vfs".
func (d *Driver) Name() string { return Name }

// Whiteouts returns archive.WhiteoutDelete: a layer starts as a copy of
// its parent.
func (d *Driver) Whiteouts() archive.WhiteoutMode { return archive.WhiteoutDelete }

// Dir returns the layer's tree.
func (d *Driver) Dir(id string) string { return filepath.Join(d.home, id, "root") }

// Create makes layer id as a copy of parent, or empty.
func (d *Driver) Create(id, parent string, writable bool) error {
	if err := validID(id); err != nil {
		return err
	}
	if parent != "" {
		if err := validID(parent); err != nil {
			return err
		}
	}
	dir := filepath.Join(d.home, id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("vfs: create layer %s: %w", id, err)
	}
	if writable {
		if err := os.WriteFile(filepath.Join(dir, "writable"), nil, 0o600); err != nil {
			return fmt.Errorf("vfs: create layer %s: %w", id, err)
		}
	}
	if parent == "" {
		if err := os.Mkdir(d.Dir(id), 0o755); err != nil {
			return fmt.Errorf("vfs: create layer %s: %w", id, err)
		}
		return nil
	}
	if err := CopyTree(d.Dir(parent), d.Dir(id)); err != nil {
		return fmt.Errorf("vfs: create layer %s from %s: %w", id, parent, err)
	}
	return nil
}

// Mounts returns a bind mount of the layer's tree, read-only unless the
// layer is writable.
func (d *Driver) Mounts(id string) ([]storage.Mount, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(d.Dir(id)); err != nil {
		return nil, fmt.Errorf("vfs: layer %s: %w", id, err)
	}
	mode := "ro"
	if _, err := os.Lstat(filepath.Join(d.home, id, "writable")); err == nil {
		mode = "rw"
	}
	return []storage.Mount{{Type: "bind", Source: d.Dir(id), Options: []string{"rbind", mode}}}, nil
}

// Remove deletes layer id.
func (d *Driver) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(d.home, id)); err != nil {
		return fmt.Errorf("vfs: remove layer %s: %w", id, err)
	}
	return nil
}

// Exists reports whether layer id is there.
func (d *Driver) Exists(id string) bool {
	if validID(id) != nil {
		return false
	}
	_, err := os.Lstat(d.Dir(id))
	return err == nil
}

// Status describes the driver.
func (d *Driver) Status() storage.Status {
	backing := storage.FSNameOr(d.home)
	return storage.Status{
		Driver:    Name,
		Home:      d.home,
		BackingFS: backing,
		Details:   [][2]string{{"Backing Filesystem", backing}},
	}
}

// Cleanup does nothing: a vfs layer is a directory, and Store removes the
// ones interrupted operations left.
func (d *Driver) Cleanup() error { return nil }

func validID(id string) error { return storage.ValidLayerID("vfs", id) }
