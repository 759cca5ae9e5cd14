package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/mount"
)

// MountAll performs mounts on target, in order. Overlay option strings
// longer than a page (many layers) go through the new mount API, one
// lowerdir at a time, or where the kernel lacks that (before 6.8) through
// paths made relative to the layers' common directory.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
	}
	return nil
}

func mountOne(m Mount, target string) error {
	o := mount.ParseOptions(m.Options)
	if m.Type == "bind" || o.Flags&unix.MS_BIND != 0 {
		flags := uintptr(unix.MS_BIND) | o.Flags&unix.MS_REC
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return err
		}
		// A bind mount ignores every flag but MS_REC: apply the rest by
		// remounting it.
		if rest := o.Flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return err
			}
		}
		return nil
	}
	if m.Type == "overlay" && len(o.Data) >= os.Getpagesize() {
		return mountLongOverlay(m.Source, target, o)
	}
	return unix.Mount(m.Source, target, m.Type, o.Flags, o.Data)
}

// mountLongOverlay mounts an overlay whose options do not fit in the page
// mount(2) copies.
func mountLongOverlay(source, target string, o mount.Options) error {
	err := fsmountOverlay(source, target, o)
	if err == nil || !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	return mountRelative(source, target, o)
}

// fsmountOverlay builds the overlay with fsopen(2)/fsconfig(2), passing each
// lower layer on its own ("lowerdir+", Linux 6.8), so no page limit applies.
func fsmountOverlay(source, target string, o mount.Options) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.FsconfigSetString(fd, "source", source); err != nil {
		return err
	}
	for _, opt := range strings.Split(o.Data, ",") {
		k, v, hasValue := strings.Cut(opt, "=")
		switch {
		case k == "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
					return fmt.Errorf("lowerdir+ %s: %w", l, err)
				}
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		case k != "":
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return err
	}
	var attr int
	if o.Flags&unix.MS_RDONLY != 0 {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	if o.Flags&unix.MS_NOSUID != 0 {
		attr |= unix.MOUNT_ATTR_NOSUID
	}
	if o.Flags&unix.MS_NODEV != 0 {
		attr |= unix.MOUNT_ATTR_NODEV
	}
	if o.Flags&unix.MS_NOEXEC != 0 {
		attr |= unix.MOUNT_ATTR_NOEXEC
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	return unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// mountRelative shortens the overlay's paths by making them relative to the
// directory they share, and mounts from there. The working directory
// changes only for a locked thread that first unshares its file-system
// context and is then thrown away, so the rest of the process keeps its own.
func mountRelative(source, target string, o mount.Options) error {
	dir, data := compactOverlayData(o.Data)
	if dir == "" {
		return unix.EINVAL
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: this thread's working directory is not the
		// process's any more, so it must die with this goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare file-system context: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(source, target, "overlay", o.Flags, data)
	}()
	return <-errc
}

// compactOverlayData rewrites the paths in overlay options relative to the
// longest directory they all start with, and returns that directory.
func compactOverlayData(data string) (dir, compact string) {
	opts := strings.Split(data, ",")
	var paths []string
	for _, opt := range opts {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			paths = append(paths, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			paths = append(paths, v)
		}
	}
	if len(paths) == 0 {
		return "", data
	}
	dir = filepath.Dir(paths[0])
	for _, p := range paths[1:] {
		for dir != "/" && !strings.HasPrefix(p, dir+"/") {
			dir = filepath.Dir(dir)
		}
	}
	if dir == "/" || dir == "." {
		return "", data
	}
	rel := func(p string) string { return strings.TrimPrefix(p, dir+"/") }
	for i, opt := range opts {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			parts := strings.Split(v, ":")
			for j := range parts {
				parts[j] = rel(parts[j])
			}
			opts[i] = k + "=" + strings.Join(parts, ":")
		case "upperdir", "workdir":
			opts[i] = k + "=" + rel(v)
		}
	}
	return dir, strings.Join(opts, ",")
}

// Unmount unmounts target and everything mounted under it. Not being
// mounted is not an error.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue // a mount may hide another one under it
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// IsMountPoint reports whether path is the root of a mount.
func IsMountPoint(path string) (bool, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &st); err != nil {
		return false, err
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	// Kernels before 5.8 do not say: compare with the parent's device.
	var parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(path), &parent); err != nil {
		return false, err
	}
	return uint64(parent.Dev) != unix.Mkdev(st.Dev_major, st.Dev_minor), nil
}
