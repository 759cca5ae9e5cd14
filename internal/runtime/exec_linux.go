package runtime

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/initproc"
)

// ExecOptions are runc exec's flags, with the process already built.
type ExecOptions struct {
	Process       *specs.Process
	ConsoleSocket string
	Console       *os.File
	PidFile       string
	PreserveFDs   int
	IgnorePaused  bool
	Stdio         [3]*os.File
}

// Exec starts another process inside the running container and returns its
// pid. The caller waits for it with WaitPid; it should be a child
// subreaper (SetSubreaper) because the process is our grandchild when the
// container has its own PID namespace.
func (c *Container) Exec(opts ExecOptions) (int, error) {
	st := c.Status()
	if st == StatusPaused && !opts.IgnorePaused {
		return 0, errdefs.Conflict(fmt.Errorf("cannot exec in container %s: it is paused", c.ID))
	}
	if st != StatusRunning && st != StatusCreated && st != StatusPaused {
		return 0, errdefs.Conflict(fmt.Errorf("cannot exec in container %s: it is %s", c.ID, st))
	}
	if opts.Process == nil || len(opts.Process.Args) == 0 {
		return 0, errdefs.InvalidArgument(fmt.Errorf("process.args: empty"))
	}
	spec := *c.Spec
	spec.Process = opts.Process
	cfg := &initproc.Config{Mode: initproc.ModeExec, ID: c.ID, Spec: &spec, Bundle: c.Bundle, Seccomp: c.Seccomp}
	l := &launch{cfg: cfg, stdio: opts.Stdio}
	for _, name := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		path := fmt.Sprintf("/proc/%d/ns/%s", c.Pid, name)
		if sameNamespace(path, "/proc/self/ns/"+name) {
			continue
		}
		l.joins = append(l.joins, nsJoin{typ: name, path: path})
	}
	if len(l.joins) == 0 {
		return 0, fmt.Errorf("container %s shares every namespace with the host: nothing to join", c.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	l.cgroup = cg
	for i := 0; i < opts.PreserveFDs; i++ {
		l.preserve = append(l.preserve, os.NewFile(uintptr(3+i), "preserved"))
	}
	if opts.Process.Terminal {
		console, err := consoleSocket(CreateOptions{Console: opts.Console, ConsoleSocket: opts.ConsoleSocket})
		if err != nil {
			return 0, err
		}
		defer console.Close()
		l.console = console
	}
	if !processAlive(c.Pid, c.PidStart) {
		return 0, errdefs.Conflict(fmt.Errorf("cannot exec in container %s: it is stopped", c.ID))
	}
	proc, err := start(l)
	if err != nil {
		return 0, err
	}
	if opts.PidFile != "" {
		if err := writePidFile(opts.PidFile, proc.pid); err != nil {
			return 0, err
		}
	}
	return proc.pid, nil
}

func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// SetSubreaper makes the calling process adopt its orphaned descendants, so
// it can wait for a container process that is its grandchild.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// WaitPid waits for pid to exit and returns its exit code as a shell would
// (128+signal for a killed process). Other children that exit meanwhile
// are reaped too.
func WaitPid(pid int) (int, error) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for %d: %w", pid, err)
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// ForwardSignals starts relaying the signals this process receives to the
// pid later passed to the returned function, as runc run and exec do.
// Signals that arrive before then are held and sent once it is known.
// Setting up signal handling takes milliseconds here, so it happens on a
// goroutine, off the path to the container's start, and is never undone:
// the caller exits when the container does.
func ForwardSignals() (target func(pid int)) {
	pids := make(chan int, 1)
	go func() {
		ch := make(chan os.Signal, 32)
		signal.Notify(ch)
		pid := <-pids
		for s := range ch {
			sig, ok := s.(unix.Signal)
			if !ok || sig == unix.SIGCHLD || sig == unix.SIGWINCH || sig == unix.SIGURG || sig == unix.SIGPIPE {
				continue
			}
			_ = unix.Kill(pid, sig)
		}
	}()
	return func(pid int) { pids <- pid }
}

// ProcessFromArgs builds an exec process from a command line and the
// container's own process settings (user, env, caps, as runc exec does).
func (c *Container) ProcessFromArgs(args []string, tty bool) *specs.Process {
	base := specs.Process{}
	if c.Spec.Process != nil {
		base = *c.Spec.Process
	}
	base.Args = args
	base.Terminal = tty
	base.Env = append([]string(nil), base.Env...)
	base.ConsoleSize = nil
	return &base
}

// ParseUser reads "uid[:gid]" as runc exec --user does.
func ParseUser(s string) (uid, gid uint32, err error) {
	u, g, hasG := strings.Cut(s, ":")
	var x, y uint64
	if _, err := fmt.Sscanf(u, "%d", &x); err != nil {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("--user %q: uid must be a number", s))
	}
	if hasG {
		if _, err := fmt.Sscanf(g, "%d", &y); err != nil {
			return 0, 0, errdefs.InvalidArgument(fmt.Errorf("--user %q: gid must be a number", s))
		}
	}
	return uint32(x), uint32(y), nil
}

// ParseSignal reads a signal as runc and docker take it: "KILL",
// "SIGKILL", "sigkill" or "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidArgument(fmt.Errorf("invalid signal: %s", s))
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidArgument(fmt.Errorf("invalid signal: %s", s))
}
