package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/cgroups"
	"github.com/berth-dev/berth/internal/linux/seccomp"
	"github.com/berth-dev/berth/internal/runtime/initproc"
)

// CreateOptions are runc create's flags.
type CreateOptions struct {
	ID     string
	Bundle string
	// ConsoleSocket is the path of a unix socket that receives the pty master.
	ConsoleSocket string
	// Console, when set, is an already connected socket used instead.
	Console     *os.File
	PidFile     string
	NoPivot     bool
	PreserveFDs int
	// Stdio of the container's process; nil entries mean /dev/null.
	Stdio [3]*os.File

	// newRelay, set by Run, makes a console relay when the spec asks for
	// a terminal and no socket was given.
	newRelay func() (*os.File, error)
}

// Create sets up the container and leaves its init waiting, just before
// exec, for Start. On error nothing is left behind.
func (r *Runtime) Create(opts CreateOptions) (_ *Container, retErr error) {
	if err := ValidateID(opts.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(opts.Bundle)
	if err != nil {
		return nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return nil, errdefs.InvalidArgument(fmt.Errorf("root.path: %s is not a directory", rootfs))
	}

	if err := os.MkdirAll(r.Root, 0o711); err != nil {
		return nil, fmt.Errorf("create state root %s: %w", r.Root, err)
	}
	dir := r.dir(opts.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errdefs.Conflict(fmt.Errorf("container with id %q already exists", opts.ID))
		}
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	c := &Container{
		ID:          opts.ID,
		Bundle:      bundle,
		Rootfs:      rootfs,
		Created:     time.Now().UTC(),
		Annotations: spec.Annotations,
		Systemd:     r.SystemdCgroup,
		Spec:        spec,
		rt:          r,
	}
	var cg cgroups.Manager
	defer func() {
		if retErr == nil {
			return
		}
		if cg != nil {
			if pids, err := cg.Pids(); err == nil {
				for _, p := range pids {
					_ = unix.Kill(p, unix.SIGKILL)
				}
			}
			_ = destroyCgroup(cg)
		}
		_ = os.RemoveAll(dir)
	}()

	fifoPath := filepath.Join(dir, fifoName)
	// init opens it for writing as the container's root (or its user), so
	// it is writable by others and owned by whoever root maps to.
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, fmt.Errorf("create exec fifo: %w", err)
	}
	if err := unix.Chmod(fifoPath, 0o622); err != nil {
		return nil, err
	}
	if uid, gid := hostRoot(spec.Linux); uid != 0 || gid != 0 {
		if err := unix.Chown(fifoPath, uid, gid); err != nil {
			return nil, fmt.Errorf("chown exec fifo: %w", err)
		}
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer fifo.Close()

	c.CgroupPath = spec.Linux.CgroupsPath
	if c.CgroupPath == "" {
		c.CgroupPath = "/berth-" + opts.ID
		if r.SystemdCgroup {
			c.CgroupPath = "system.slice:berth:" + opts.ID
		}
	}
	cg, err = cgroups.New(c.CgroupPath, r.cgroupOptions())
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("linux.cgroupsPath: %w", err))
	}
	if err := cg.Create(withDefaultDevices(spec.Linux)); err != nil {
		cg = nil // Create cleans up after itself
		return nil, errdefs.InvalidArgument(err)
	}

	cfg := &initproc.Config{
		Mode:    initproc.ModeInit,
		ID:      opts.ID,
		Spec:    spec,
		Rootfs:  rootfs,
		Bundle:  bundle,
		NoPivot: opts.NoPivot,
	}
	l := &launch{cfg: cfg, cgroup: cg, stdio: opts.Stdio, fifo: fifo, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings}
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			l.joins = append(l.joins, nsJoin{typ: procNSName[ns.Type], path: ns.Path})
			if ns.Type == specs.MountNamespace {
				cfg.SkipRootfs = true
			}
		case ns.Type == specs.CgroupNamespace:
			cfg.UnshareCgroupns = true
		default:
			l.newFlags |= nsFlags[ns.Type]
		}
		if ns.Type == specs.UserNamespace && ns.Path == "" {
			cfg.NewUserns = true
		}
	}
	if paths, err := cgroupMountPaths(cg); err == nil {
		cfg.CgroupV1, cfg.CgroupV2 = paths.v1, paths.v2
	}
	if spec.Linux.Seccomp != nil {
		// Compiling Docker's profile takes tens of milliseconds; the cache
		// makes every later start with the same profile pay microseconds.
		prog, err := seccomp.CompileCached(spec.Linux.Seccomp, filepath.Join(r.Root, seccompCacheDir))
		if err != nil {
			return nil, errdefs.InvalidArgument(err)
		}
		if cfg.Seccomp, err = prog.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	for i := 0; i < opts.PreserveFDs; i++ {
		l.preserve = append(l.preserve, os.NewFile(uintptr(3+i), "preserved"))
	}
	if spec.Process.Terminal {
		console, err := consoleSocket(opts)
		if err != nil {
			return nil, err
		}
		defer console.Close()
		l.console = console
	}
	l.onHooks = func(pid int) error {
		st := c.OCIState()
		st.Pid, st.Status = pid, specs.StateCreating
		if spec.Hooks == nil {
			return nil
		}
		//nolint:staticcheck // prestart is deprecated but still part of the spec
		if err := initproc.RunHooks("prestart", spec.Hooks.Prestart, st); err != nil {
			return err
		}
		return initproc.RunHooks("createRuntime", spec.Hooks.CreateRuntime, st)
	}
	proc, err := start(l)
	if err != nil {
		return nil, err
	}
	c.Pid = proc.pid
	c.Seccomp = cfg.Seccomp
	if c.PidStart, _, err = procStat(proc.pid); err != nil {
		return nil, fmt.Errorf("read init's start time: %w", err)
	}
	if err := c.save(); err != nil {
		return nil, fmt.Errorf("save state: %w", err)
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, c.Pid); err != nil {
			return nil, err
		}
	}
	if proc.direct != nil {
		// Our child, but it outlives this call: whoever reaps orphans
		// (the caller's subreaper or init) reaps it.
		_ = proc.direct.Release()
	}
	return c, nil
}

// hostRoot is the host uid and gid that the container's root maps to.
func hostRoot(linux *specs.Linux) (uid, gid int) {
	for _, m := range linux.UIDMappings {
		if m.ContainerID == 0 {
			uid = int(m.HostID)
		}
	}
	for _, m := range linux.GIDMappings {
		if m.ContainerID == 0 {
			gid = int(m.HostID)
		}
	}
	return uid, gid
}

func consoleSocket(opts CreateOptions) (*os.File, error) {
	if opts.Console != nil {
		return opts.Console, nil
	}
	if opts.ConsoleSocket == "" && opts.newRelay != nil {
		return opts.newRelay()
	}
	if opts.ConsoleSocket == "" {
		return nil, errdefs.InvalidArgument(errors.New("process.terminal: true needs --console-socket"))
	}
	conn, err := net.Dial("unix", opts.ConsoleSocket)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket %s: %w", opts.ConsoleSocket, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, err
	}
	return f, nil
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// withDefaultDevices adds cgroup rules that let the container use the
// default devices and those it lists, as runc does.
func withDefaultDevices(linux *specs.Linux) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if linux.Resources != nil {
		copied := *linux.Resources
		res = &copied
	}
	allow := func(typ string, major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"}
	}
	res.Devices = append([]specs.LinuxDeviceCgroup{}, res.Devices...)
	for _, d := range defaultDeviceRules {
		res.Devices = append(res.Devices, allow("c", d[0], d[1]))
	}
	// /dev/pts/*: a nil minor is the wildcard.
	res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"})
	// linux.devices only makes nodes; access to them is what the spec's
	// resources.devices rules grant (docker adds one per --device, with
	// its permissions), as runc does.
	return res
}

var defaultDeviceRules = [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}}

func ptr[T any](v T) *T { return &v }

type cgroupPaths struct {
	v1 map[string]string
	v2 string
}

// cgroupMountPaths tells init which host directories to show at a cgroup
// mount: one per v1 controller, or the v2 directory.
func cgroupMountPaths(cg cgroups.Manager) (cgroupPaths, error) {
	paths := cg.Paths()
	if v2, ok := paths[""]; ok && len(paths) == 1 {
		return cgroupPaths{v2: v2}, nil
	}
	v1 := map[string]string{}
	for controller, dir := range paths {
		if controller != "" && controller != "unified" {
			v1[controller] = dir
		}
	}
	return cgroupPaths{v1: v1}, nil
}
