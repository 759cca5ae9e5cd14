// Package btrfs keeps each layer as a btrfs subvolume: a layer is a
// snapshot of its parent, so it costs only what it changes, and a
// container's root is a bind mount of its snapshot. It talks to btrfs
// through ioctls; btrfs-progs are not needed. It works only where the
// storage root is on btrfs.
//
// Layout of the home directory:
//
//	<id>/root      the layer's subvolume, a snapshot of its parent's
//	<id>/writable  present for a container's writable layer
package btrfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/storage"
)

// Name is the driver's name.
const Name = "btrfs"

// Driver is the btrfs storage driver.
type Driver struct {
	home string
}

// New returns the btrfs driver keeping its layers in home, which must be
// on btrfs; where it is not, the error matches storage.ErrUnsupported.
func New(home string) (*Driver, error) {
	if err := Supported(home); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("btrfs: %w", err)
	}
	return &Driver{home: home}, nil
}

// Supported reports whether path, or the closest directory above it that
// exists, is on btrfs. It creates nothing.
func Supported(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if errors.Is(err, unix.ENOENT) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return fmt.Errorf("btrfs: %w", err)
		}
		if int64(st.Type) != unix.BTRFS_SUPER_MAGIC {
			return storage.Unsupported(fmt.Errorf("%s is on %s, not btrfs", path, storage.FSNameOr(p)))
		}
		return nil
	}
}

// Name returns "btrfs".
func (d *Driver) Name() string { return Name }

// Whiteouts returns archive.WhiteoutDelete: a layer starts as a snapshot
// of its parent.
func (d *Driver) Whiteouts() archive.WhiteoutMode { return archive.WhiteoutDelete }

// Dir returns the layer's subvolume.
func (d *Driver) Dir(id string) string { return filepath.Join(d.home, id, "root") }

// Create makes layer id as a snapshot of parent's subvolume, or as an
// empty subvolume.
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
		return fmt.Errorf("btrfs: create layer %s: %w", id, err)
	}
	if writable {
		if err := os.WriteFile(filepath.Join(dir, "writable"), nil, 0o600); err != nil {
			return fmt.Errorf("btrfs: create layer %s: %w", id, err)
		}
	}
	var err error
	if parent == "" {
		err = subvolCreate(dir, "root")
	} else {
		err = snapshot(d.Dir(parent), dir, "root")
	}
	if err != nil {
		return fmt.Errorf("btrfs: create layer %s: %w", id, err)
	}
	return nil
}

// Mounts returns a bind mount of the layer's subvolume, read-only unless
// the layer is writable.
func (d *Driver) Mounts(id string) ([]storage.Mount, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(d.Dir(id)); err != nil {
		return nil, fmt.Errorf("btrfs: layer %s: %w", id, err)
	}
	mode := "ro"
	if _, err := os.Lstat(filepath.Join(d.home, id, "writable")); err == nil {
		mode = "rw"
	}
	return []storage.Mount{{Type: "bind", Source: d.Dir(id), Options: []string{"rbind", mode}}}, nil
}

// Remove deletes layer id's subvolume, and any a container made inside it.
func (d *Driver) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	dir := filepath.Join(d.home, id)
	if err := destroyTree(d.Dir(id)); err != nil {
		return fmt.Errorf("btrfs: remove layer %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("btrfs: remove layer %s: %w", id, err)
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

// Cleanup does nothing: Store removes the layers interrupted operations left.
func (d *Driver) Cleanup() error { return nil }

// Linux's btrfs ioctls (include/uapi/linux/btrfs.h).
const (
	subvolNameMax = 4039 // BTRFS_SUBVOL_NAME_MAX
	pathNameMax   = 4087 // BTRFS_PATH_NAME_MAX

	iocSubvolCreate  = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy   = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocSnapCreateV2  = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	firstFreeObjecID = 256        // BTRFS_FIRST_FREE_OBJECTID: a subvolume root's inode
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	fd   int64
	name [pathNameMax + 1]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [subvolNameMax + 1]byte
}

func subvolCreate(dir, name string) error {
	var args volArgs
	if len(name) > pathNameMax {
		return fmt.Errorf("subvolume name %q too long", name)
	}
	copy(args.name[:], name)
	return ioctlAt(dir, iocSubvolCreate, unsafe.Pointer(&args), "create subvolume "+filepath.Join(dir, name))
}

func snapshot(src, dir, name string) error {
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer unix.Close(sfd)
	var args volArgsV2
	args.fd = int64(sfd)
	if len(name) > subvolNameMax {
		return fmt.Errorf("subvolume name %q too long", name)
	}
	copy(args.name[:], name)
	return ioctlAt(dir, iocSnapCreateV2, unsafe.Pointer(&args), "snapshot "+src+" to "+filepath.Join(dir, name))
}

func subvolDestroy(dir, name string) error {
	var args volArgs
	copy(args.name[:], name)
	return ioctlAt(dir, iocSnapDestroy, unsafe.Pointer(&args), "delete subvolume "+filepath.Join(dir, name))
}

func ioctlAt(dir string, req uintptr, arg unsafe.Pointer, what string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer unix.Close(fd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return fmt.Errorf("%s: %w", what, errno)
	}
	return nil
}

// destroyTree deletes the subvolume at path after the subvolumes nested in
// it (deepest first); a path that is not a subvolume, or is gone, is left
// for RemoveAll.
func destroyTree(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	if st.Ino != firstFreeObjecID {
		return nil
	}
	err := subvolDestroy(filepath.Dir(path), filepath.Base(path))
	if !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	// Subvolumes nested in it hold it: find them.
	var nested []string
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == path || !e.IsDir() {
			return err
		}
		var cst unix.Stat_t
		if err := unix.Lstat(p, &cst); err != nil {
			return err
		}
		if cst.Ino == firstFreeObjecID {
			nested = append(nested, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(nested) - 1; i >= 0; i-- {
		if err := subvolDestroy(filepath.Dir(nested[i]), filepath.Base(nested[i])); err != nil {
			return err
		}
	}
	return subvolDestroy(filepath.Dir(path), filepath.Base(path))
}

func validID(id string) error { return storage.ValidLayerID("btrfs", id) }
