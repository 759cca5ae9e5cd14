package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/mount"
)

// prepareRootfs builds the container's root filesystem inside the new mount
// namespace and makes it the root: propagation, mounts, /dev, hooks,
// pivot_root, then masked and read-only paths.
func prepareRootfs(cfg *Config, ch *Channel) error {
	spec := cfg.Spec
	rootfs := cfg.Rootfs
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := linuxOf(spec).RootfsPropagation; p != "" {
		f, ok := propagationFlags[p]
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", p)
		}
		prop = f
	}
	// Keep what we mount from reaching the host (and the host's later
	// mounts from reaching us, unless shared was asked for).
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("linux.rootfsPropagation: make / %s: %w", linuxOf(spec).RootfsPropagation, err)
	}
	if prop&unix.MS_SHARED != 0 {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := makeParentPrivate(rootfs); err != nil {
			return err
		}
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("root.path: bind %s: %w", rootfs, err)
	}
	for i := range spec.Mounts {
		if err := mountEntry(cfg, &spec.Mounts[i]); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, spec.Mounts[i].Type, spec.Mounts[i].Destination, err)
		}
	}
	if needsDevSetup(spec) {
		if err := setupDev(cfg); err != nil {
			return err
		}
	}
	if err := hooksFromInit(cfg, ch); err != nil {
		return err
	}
	if cfg.NoPivot {
		if err := moveRoot(rootfs); err != nil {
			return err
		}
	} else if err := pivotRoot(rootfs); err != nil {
		return err
	}
	return nil
}

// finalizeRootfs masks paths and makes paths (and, if asked, the root)
// read-only. It runs after sysctls are written, as runc does: /proc/sys is
// one of the read-only paths.
func finalizeRootfs(spec *specs.Spec) error {
	linux := linuxOf(spec)
	for _, p := range linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("linux.maskedPaths: %s: %w", p, err)
		}
	}
	for _, p := range linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths: %s: %w", p, err)
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := setReadonly("/", false); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

var propagationFlags = map[string]uintptr{
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

func linuxOf(spec *specs.Spec) *specs.Linux {
	if spec.Linux == nil {
		return &specs.Linux{}
	}
	return spec.Linux
}

func makeParentPrivate(rootfs string) error {
	dir := rootfs
	for {
		err := unix.Mount("", dir, "", unix.MS_PRIVATE, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || dir == "/" {
			return fmt.Errorf("make parent mount of %s private: %w", rootfs, err)
		}
		// EINVAL: not a mount point; try the directory above.
		dir = filepath.Dir(dir)
	}
}

func mountEntry(cfg *Config, m *specs.Mount) error {
	rootfs := cfg.Rootfs
	opts := mount.ParseOptions(m.Options)
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("destination %q must be absolute", m.Destination)
	}
	dest, err := mount.SecureJoin(rootfs, m.Destination)
	if err != nil {
		return err
	}
	isBind := m.Type == "bind" || opts.Flags&unix.MS_BIND != 0
	switch {
	case isBind:
		var st unix.Stat_t
		if err := unix.Stat(m.Source, &st); err != nil {
			return fmt.Errorf("source %s: %w", m.Source, err)
		}
		if err := createMountpoint(rootfs, m.Destination, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
		// Re-resolve: the mount point may have just been created.
		if dest, err = mount.SecureJoin(rootfs, m.Destination); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, "", unix.MS_BIND|(opts.Flags&unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s: %w", m.Source, err)
		}
		// A bind ignores other flags: they take a remount.
		if extra := opts.Flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
			if err := remountBind(dest, extra); err != nil {
				return err
			}
		}
	case m.Type == "cgroup" || m.Type == "cgroup2":
		if err := createMountpoint(rootfs, m.Destination, true); err != nil {
			return err
		}
		if err := mountCgroup(cfg, dest, opts.Flags); err != nil {
			return err
		}
	default:
		if err := createMountpoint(rootfs, m.Destination, true); err != nil {
			return err
		}
		err := unix.Mount(m.Source, dest, m.Type, opts.Flags, opts.Data)
		if err != nil && errors.Is(err, unix.EPERM) && (m.Type == "sysfs" || m.Type == "mqueue") {
			// A user namespace that does not own the network (or IPC)
			// namespace may not mount a fresh sysfs (mqueue): bind the
			// host's read-only instead, as runc does.
			hostPath := map[string]string{"sysfs": "/sys", "mqueue": "/dev/mqueue"}[m.Type]
			if err = unix.Mount(hostPath, dest, "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
				err = setReadonly(dest, true)
			}
		}
		if err != nil {
			return err
		}
	}
	if opts.RecAttrSet != 0 || opts.RecAttrClr != 0 {
		attr := unix.MountAttr{Attr_set: opts.RecAttrSet, Attr_clr: opts.RecAttrClr}
		if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, &attr); err != nil {
			return fmt.Errorf("set recursive mount attributes: %w", err)
		}
	}
	for _, p := range opts.Propagation {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// remountBind applies flags to a bind mount, keeping the flags the kernel
// locks on mounts that came from a more privileged namespace.
func remountBind(dest string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY)
	if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dest, err)
	}
	return nil
}

func mountCgroup(cfg *Config, dest string, flags uintptr) error {
	ro := flags&unix.MS_RDONLY != 0
	flags &^= unix.MS_RDONLY
	if cfg.CgroupV2 != "" && len(cfg.CgroupV1) == 0 {
		if cfg.UnshareCgroupns {
			if err := unix.Mount("cgroup2", dest, "cgroup2", flags, ""); err != nil {
				return err
			}
		} else if err := unix.Mount(cfg.CgroupV2, dest, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		if ro {
			return setReadonly(dest, true)
		}
		return nil
	}
	// v1: a tmpfs holding one bind of the container's own directory per
	// controller, which is also what a cgroup namespace would show.
	if err := unix.Mount("tmpfs", dest, "tmpfs", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	for controller, hostDir := range cfg.CgroupV1 {
		target := filepath.Join(dest, controller)
		if err := os.Mkdir(target, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := unix.Mount(hostDir, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind cgroup %s: %w", controller, err)
		}
	}
	if ro {
		return setReadonly(dest, true)
	}
	return nil
}

func setReadonly(path string, recursive bool) error {
	var flags uint
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(-1, path, flags, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	if errors.Is(err, unix.ENOSYS) {
		return remountBind(path, unix.MS_RDONLY)
	}
	return err
}

func needsDevSetup(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if filepath.Clean(m.Destination) == "/dev" {
			return m.Type != "bind"
		}
	}
	return true
}

type devNode struct {
	path         string
	major, minor int64
}

// The devices every container has (runtime spec, "Default Devices").
var defaultDevices = []devNode{
	{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
	{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
}

func setupDev(cfg *Config) error {
	rootfs := cfg.Rootfs
	linux := linuxOf(cfg.Spec)
	for _, d := range defaultDevices {
		dev := specs.LinuxDevice{Path: d.path, Type: "c", Major: d.major, Minor: d.minor}
		if err := createDevice(rootfs, &dev, cfg.NewUserns); err != nil {
			return fmt.Errorf("create default device %s: %w", d.path, err)
		}
	}
	for i := range linux.Devices {
		if err := createDevice(rootfs, &linux.Devices[i], cfg.NewUserns); err != nil {
			return fmt.Errorf("linux.devices[%d] %s: %w", i, linux.Devices[i].Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		dst, err := mount.SecureJoin(rootfs, l[1])
		if err != nil {
			return err
		}
		if l[1] == "/dev/ptmx" {
			// The devpts instance of the container provides ptmx.
			_ = os.Remove(dst)
		}
		if err := os.Symlink(l[0], dst); err != nil && !os.IsExist(err) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

func createDevice(rootfs string, d *specs.LinuxDevice, inUserns bool) error {
	if !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
		return fmt.Errorf("path must be under /dev")
	}
	dest, err := mount.SecureJoin(rootfs, d.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if inUserns {
		// mknod is not allowed in a user namespace: bind the host's node.
		if err := createMountpoint(rootfs, d.Path, false); err != nil {
			return err
		}
		return unix.Mount(d.Path, dest, "", unix.MS_BIND, "")
	}
	var kind uint32
	switch d.Type {
	case "c", "u":
		kind = unix.S_IFCHR
	case "b":
		kind = unix.S_IFBLK
	case "p":
		kind = unix.S_IFIFO
	default:
		return fmt.Errorf("type: unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	_ = os.Remove(dest)
	if err := unix.Mknod(dest, kind|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod is subject to the umask: set the mode asked for.
	if err := unix.Chmod(dest, perm); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Chown(dest, uid, gid)
}

func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; it is
	// then unmounted from under us without a temporary directory.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w (a ramfs root needs --no-pivot)", rootfs, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir("/")
}

func maskPath(p string) error {
	err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EINVAL) {
		// A directory: cover it with an empty read-only tmpfs.
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0k")
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return setReadonly(p, true)
}

// createMountpoint makes dest inside rootfs without following symlinks out.
func createMountpoint(rootfs, dest string, isDir bool) error {
	f, err := mount.CreateMountpoint(rootfs, dest, isDir)
	if err != nil {
		return err
	}
	return f.Close()
}
