package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/mount"
)

// validateOpts checks the local driver's options as docker does: only
// type, device, o and size; device, type and o go together.
func validateOpts(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o", "size":
		default:
			return errdefs.InvalidArgument(fmt.Errorf("invalid option: %q", k))
		}
	}
	if v, ok := opts["size"]; ok {
		size, err := units.RAMInBytes(v)
		if err != nil {
			return errdefs.InvalidArgument(err)
		}
		if size > 0 {
			// Docker needs XFS project quotas for this; berth has none.
			return errdefs.NotImplemented(errors.New("quota size requested but no quota support"))
		}
	}
	for _, need := range [][2]string{{"device", "type"}, {"type", "device"}, {"o", "device"}} {
		if _, ok := opts[need[0]]; ok {
			if _, ok := opts[need[1]]; !ok {
				return errdefs.InvalidArgument(fmt.Errorf("missing required option: %q", need[1]))
			}
		}
	}
	return nil
}

// needsMount reports whether the volume is a file system mounted at use
// time (type/device options) rather than a plain directory.
func needsMount(opts map[string]string) bool {
	return opts["type"] != "" || opts["device"] != ""
}

// Mount makes volume name ready for a container and returns the host path
// to bind into it. A volume with driver options (a tmpfs, an NFS export, a
// host directory with o=bind) is mounted on its first user; a count in the
// volume's directory keeps it mounted until the last user calls Unmount.
// A plain volume is its directory: Mount returns it and counts nothing.
func (s *Store) Mount(name string) (string, error) {
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer unlock()
	rec, err := s.read(name)
	if err != nil {
		return "", err
	}
	data := filepath.Join(s.path(name), dataDir)
	if !needsMount(rec.Options) {
		return data, nil
	}
	count, err := s.mountCount(name)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	mounted, err := isMountPoint(data)
	if err != nil {
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	fresh := false
	switch {
	case mounted && count > 0:
		count++
	case mounted:
		// Mounted but not counted: a Mount that died before counting.
		count = 1
	default:
		// Not mounted, whatever the count says (a reboot unmounts all).
		if err := mountVolume(rec.Options, data); err != nil {
			return "", fmt.Errorf("mount volume %s: %w", name, err)
		}
		count, fresh = 1, true
	}
	if err := writeFileAtomic(filepath.Join(s.path(name), mountsFile), []byte(strconv.Itoa(count))); err != nil {
		if fresh {
			_ = unmountAll(data)
		}
		return "", fmt.Errorf("mount volume %s: %w", name, err)
	}
	return data, nil
}

// Unmount releases one Mount of volume name; the last one unmounts a
// driver-mounted volume. Releasing a volume not mounted is no error.
func (s *Store) Unmount(name string) error {
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := s.read(name)
	if err != nil {
		return err
	}
	if !needsMount(rec.Options) {
		return nil
	}
	count, err := s.mountCount(name)
	if err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	countFile := filepath.Join(s.path(name), mountsFile)
	if count > 1 {
		if err := writeFileAtomic(countFile, []byte(strconv.Itoa(count-1))); err != nil {
			return fmt.Errorf("unmount volume %s: %w", name, err)
		}
		return nil
	}
	if err := unmountAll(filepath.Join(s.path(name), dataDir)); err != nil {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	if err := os.Remove(countFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unmount volume %s: %w", name, err)
	}
	return nil
}

// mountCount reads how many users hold volume name mounted (0 if none).
func (s *Store) mountCount(name string) (int, error) {
	data, err := os.ReadFile(filepath.Join(s.path(name), mountsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 {
		return 0, nil // a torn or foreign file: recount from the mount itself
	}
	return n, nil
}

// mountVolume mounts device on target as docker's local driver does with
// type, device and o ("size=64m,uid=1000", "bind,ro", "addr=...,nfsvers=4").
// Options are not echoed in errors: a cifs password may be among them.
func mountVolume(opts map[string]string, target string) error {
	typ, dev := opts["type"], opts["device"]
	var list []string
	if o := opts["o"]; o != "" {
		list = strings.Split(o, ",")
	}
	o := mount.ParseOptions(list)
	flags := o.Flags &^ unix.MS_REMOUNT
	if err := unix.Mount(dev, target, typ, flags, o.Data); err != nil {
		return fmt.Errorf("failed to mount local volume: mount %s on %s (type %s): %w", dev, target, typ, err)
	}
	// A bind mount takes its flags (ro, nosuid...) only on a remount.
	if flags&unix.MS_BIND != 0 && flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
			_ = unmountAll(target)
			return fmt.Errorf("failed to mount local volume: remount %s: %w", target, err)
		}
	}
	for _, p := range o.Propagation {
		if err := unix.Mount("", target, "", p, ""); err != nil {
			_ = unmountAll(target)
			return fmt.Errorf("failed to mount local volume: set propagation of %s: %w", target, err)
		}
	}
	return nil
}

// unmountAll unmounts everything stacked on target; not being mounted (or
// not existing) is no error. It asks first: umount(2) needs privilege even
// to say that nothing is mounted.
func unmountAll(target string) error {
	for {
		mounted, err := isMountPoint(target)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || err == nil && !mounted {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
		if err != nil {
			return nil // raced with another unmount
		}
	}
}

// isMountPoint reports whether path is the root of a mount.
func isMountPoint(path string) (bool, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &st); err != nil {
		return false, err
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	// Kernels before 5.8 do not say; a device comparison misses a bind
	// from the same file system, so read the mount table.
	return inMountinfo(path)
}

// inMountinfo reports whether path is a mount point in /proc/self/mountinfo.
func inMountinfo(path string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved // the table holds real paths
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == path {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMountinfo undoes the kernel's octal escapes ("\040" is a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
