package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/cgroups"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/runtime/nsenter"
)

// nsJoin is one existing namespace to enter.
type nsJoin struct {
	typ  string // name as under /proc/PID/ns
	path string
}

// launch describes how to start an init or exec process.
type launch struct {
	cfg      *initproc.Config
	joins    []nsJoin
	newFlags uintptr // CLONE_NEW* to create (the cgroup one is left to init)
	uidMaps  []specs.LinuxIDMapping
	gidMaps  []specs.LinuxIDMapping
	cgroup   cgroups.Manager
	stdio    [3]*os.File
	preserve []*os.File // land at fd 3, 4, ...
	fifo     *os.File
	console  *os.File
	// onHooks runs when init asks for prestart/createRuntime hooks.
	onHooks func(pid int) error
}

// forkMu serializes the spawn of init and exec processes in one process.
var forkMu sync.Mutex

// started is a process that reached "ready".
type started struct {
	pid int
	// direct is set when pid is our own child (no intermediate process).
	direct *os.Process
}

// start clones the init/exec process into its namespaces and cgroup,
// feeds it its config and waits until it is ready (or failed).
func start(l *launch) (_ *started, retErr error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sync socket: %w", err)
	}
	parentSock := os.NewFile(uintptr(pair[0]), "sync-parent")
	childSock := os.NewFile(uintptr(pair[1]), "sync-child")
	defer parentSock.Close()

	extra := append([]*os.File{}, l.preserve...)
	syncFD := 3 + len(extra)
	extra = append(extra, childSock)
	l.cfg.FifoFD, l.cfg.ConsoleFD = -1, -1
	if l.fifo != nil {
		l.cfg.FifoFD = 3 + len(extra)
		extra = append(extra, l.fifo)
	}
	if l.console != nil {
		l.cfg.ConsoleFD = 3 + len(extra)
		extra = append(extra, l.console)
	}
	l.cfg.PreserveFDs = len(l.preserve)
	// Above every slot the child's fork code may use: it first moves each
	// fd that sits below its target to len(fds), len(fds)+1, ... (one more
	// for its own pipe), which would clobber an fd placed just above.
	// One start at a time per process from here to the fork: concurrent
	// starts in one process (the engine's monitor) otherwise fail now and
	// then to exec the sealed binary (EACCES), seen 1 in ~100 starts.
	forkMu.Lock()
	forkLocked := true
	defer func() {
		if forkLocked {
			forkMu.Unlock()
		}
	}()
	exe, err := sealedExecutable(2*(3+len(extra)) + 2)
	if err != nil {
		return nil, err
	}
	defer func() { exe.Close() }()

	cmd := &exec.Cmd{
		Path: fmt.Sprintf("/proc/self/fd/%d", exe.Fd()),
		Args: []string{"berth", initproc.Arg},
		// The Go runtime of init need not size itself to the cgroup.
		Env:        []string{initproc.EnvSync + "=" + strconv.Itoa(syncFD), "GODEBUG=cgroupgomaxprocs=0,updatemaxprocs=0"},
		Stdin:      l.stdio[0],
		Stdout:     l.stdio[1],
		Stderr:     l.stdio[2],
		ExtraFiles: extra,
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	viaC := len(l.joins) > 0
	if viaC {
		var joins []string
		for _, j := range l.joins {
			joins = append(joins, j.typ+":"+j.path)
		}
		cmd.Env = append(cmd.Env,
			nsenter.EnvJoin+"="+strings.Join(joins, ","),
			nsenter.EnvUnshare+"="+strconv.FormatUint(uint64(l.newFlags), 10),
			nsenter.EnvSync+"="+strconv.Itoa(syncFD))
	} else {
		attr.Cloneflags = l.newFlags
		if l.newFlags&unix.CLONE_NEWUSER != 0 {
			attr.UidMappings = toSysMaps(l.uidMaps)
			attr.GidMappings = toSysMaps(l.gidMaps)
			attr.GidMappingsEnableSetgroups = true
			// Host root is not mapped inside: become the namespace's root,
			// or execve would leave init without capabilities.
			attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
		}
	}
	if l.cgroup != nil {
		fd, ok, err := l.cgroup.IntoFD()
		if err != nil {
			return nil, err
		}
		if ok {
			// Born in its cgroup: no migration, no RCU wait.
			defer unix.Close(fd)
			attr.UseCgroupFD = true
			attr.CgroupFD = fd
		}
	}
	cmd.SysProcAttr = attr
	err = cmd.Start()
	for try := 0; errors.Is(err, os.ErrPermission) && try < 3; try++ {
		// Now and then (about 1 in 100 concurrent starts in one
		// process) execve of the sealed binary fails with EACCES; a
		// fresh one works. Not yet understood: see the notes.
		exe.Close()
		if exe, err = sealedExecutable(2*(3+len(extra)) + 2); err != nil {
			break
		}
		cmd = &exec.Cmd{Path: fmt.Sprintf("/proc/self/fd/%d", exe.Fd()), Args: cmd.Args, Env: cmd.Env,
			Stdin: cmd.Stdin, Stdout: cmd.Stdout, Stderr: cmd.Stderr, ExtraFiles: cmd.ExtraFiles, SysProcAttr: attr}
		err = cmd.Start()
	}
	forkMu.Unlock()
	forkLocked = false
	if err != nil {
		childSock.Close()
		return nil, fmt.Errorf("start init process: %w", err)
	}
	childSock.Close()
	killOnError := func(pid int) {
		if retErr != nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			if pid != cmd.Process.Pid {
				// Reap it when it is ours (we are a subreaper): a zombie
				// left in the container's PID namespace holds up its
				// teardown until whoever adopts it reaps it.
				_, _ = unix.Wait4(pid, nil, 0, nil)
			}
		}
	}
	defer func() {
		if retErr != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}()

	pid := cmd.Process.Pid
	res := &started{pid: pid, direct: cmd.Process}
	if viaC {
		pid, err = nsenterHandshake(parentSock, cmd.Process.Pid, l)
		if err != nil {
			return nil, err
		}
		// The intermediate exits at once when it forked into a PID
		// namespace; reap it either way.
		if pid != cmd.Process.Pid {
			_, _ = cmd.Process.Wait()
			res = &started{pid: pid}
		}
	}
	defer killOnError(pid)
	l.cfg.Pid = pid
	l.cfg.AwaitCgroup = l.cgroup != nil && attr.CgroupFD == 0 && !attr.UseCgroupFD
	ch := initproc.NewChannel(parentSock)
	if err := ch.Send(l.cfg); err != nil {
		return nil, fmt.Errorf("send config to init: %w", err)
	}
	if l.cfg.AwaitCgroup {
		// Moving a process between v1 cgroups waits for an RCU grace
		// period; init builds the rootfs meanwhile.
		// If init already failed, the move (or the write) fails too: its
		// own reason is waiting to be read below.
		if err := l.cgroup.Apply(pid); err != nil && processAlive(pid, 0) {
			return nil, err
		}
		_ = ch.Send(initproc.Message{Type: initproc.MsgCgroup})
	}
	for {
		var msg initproc.Message
		if err := ch.Recv(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("container init exited before it was ready")
			}
			return nil, fmt.Errorf("read from init: %w", err)
		}
		switch msg.Type {
		case initproc.MsgHooks:
			ack := initproc.Message{Type: initproc.MsgAck}
			if l.onHooks != nil {
				if err := l.onHooks(pid); err != nil {
					ack = initproc.Message{Type: initproc.MsgError, Error: err.Error()}
					_ = ch.Send(ack)
					return nil, err
				}
			}
			if err := ch.Send(ack); err != nil {
				return nil, err
			}
		case initproc.MsgReady:
			return res, nil
		case initproc.MsgError:
			return nil, &initproc.ErrorFromInit{Msg: msg.Error}
		default:
			return nil, fmt.Errorf("unexpected message %q from init", msg.Type)
		}
	}
}

// nsenterHandshake answers the C constructor: it writes the uid/gid maps
// when asked and returns the pid of the process that goes on into Go.
func nsenterHandshake(sock *os.File, childPid int, l *launch) (int, error) {
	var b [1]byte
	for {
		if _, err := io.ReadFull(sock, b[:]); err != nil {
			return 0, errors.New("joining namespaces failed: the process exited")
		}
		switch b[0] {
		case nsenter.MsgMapRequest:
			if err := writeIDMaps(childPid, l.uidMaps, l.gidMaps); err != nil {
				return 0, err
			}
			if _, err := sock.Write([]byte{nsenter.MsgMapDone}); err != nil {
				return 0, err
			}
		case nsenter.MsgPid:
			var p [4]byte
			if _, err := io.ReadFull(sock, p[:]); err != nil {
				return 0, err
			}
			return int(int32(binary.NativeEndian.Uint32(p[:]))), nil
		case nsenter.MsgError:
			msg, _ := readCString(sock)
			return 0, errors.New(msg)
		default:
			return 0, fmt.Errorf("unexpected byte %q from nsenter", b[0])
		}
	}
}

func readCString(r io.Reader) (string, error) {
	var sb strings.Builder
	var b [1]byte
	for {
		if _, err := r.Read(b[:]); err != nil {
			return sb.String(), err
		}
		if b[0] == 0 {
			return sb.String(), nil
		}
		sb.WriteByte(b[0])
	}
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	format := func(maps []specs.LinuxIDMapping) []byte {
		var sb strings.Builder
		for _, m := range maps {
			fmt.Fprintf(&sb, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return []byte(sb.String())
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), format(uids), 0); err != nil {
		return fmt.Errorf("linux.uidMappings: %w", err)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), format(gids), 0); err != nil {
		return fmt.Errorf("linux.gidMappings: %w", err)
	}
	return nil
}

func toSysMaps(maps []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(maps))
	for i, m := range maps {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// sealedExecutable opens our own binary through a detached, read-only bind
// mount. The init and exec processes run from it, so /proc/PID/exe inside a
// container leads to a file that cannot be opened for writing
// (CVE-2019-5736), without copying the binary on every start.
//
// The fd must lie above those the child receives (minFD), or exec.Cmd would
// overwrite it before execve; it should stay low, because growing a
// multi-threaded process's fd table waits for an RCU grace period (12 ms
// here for fd 256).
func sealedExecutable(minFD int) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return sealedCopy(minFD, fmt.Errorf("open_tree: %w", err))
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		unix.Close(fd)
		return sealedCopy(minFD, fmt.Errorf("mount_setattr: %w", err))
	}
	if fd >= minFD {
		return os.NewFile(uintptr(fd), "berth-ro"), nil
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFD)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(high), "berth-ro"), nil
}

// sealedCopy is the fallback for kernels without the new mount API: a
// sealed memfd copy, as runc 1.1 made every time.
func sealedCopy(minFD int, cause error) (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("protect berth binary (%v): memfd: %w", cause, err)
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFD)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(high), "berth-memfd")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
