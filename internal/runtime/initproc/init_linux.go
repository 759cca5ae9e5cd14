package initproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/berth-dev/berth/internal/linux/mount"
	"github.com/berth-dev/berth/internal/linux/seccomp"
)

var initName = []byte("berth-init\x00")

// Main is the entry point of the init (or exec) process. It never returns:
// it execs the user's program or exits non-zero after reporting why.
func Main() {
	// Namespaces and credentials are per thread: everything below runs on
	// this one, which is never handed back to the Go scheduler.
	runtime.LockOSThread()
	// Started through /proc/self/fd/N, the kernel names us "N" in ps.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&initName[0])), 0, 0, 0)

	fd, err := strconv.Atoi(os.Getenv(EnvSync))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: must be started by the berth runtime")
		os.Exit(1)
	}
	sync := os.NewFile(uintptr(fd), "sync")
	ch := NewChannel(sync)
	var cfg Config
	if err := ch.Recv(&cfg); err != nil {
		os.Exit(1)
	}
	os.Clearenv()
	if err := run(&cfg, ch, fd); err != nil {
		if ch.Send(Message{Type: MsgError, Error: err.Error()}) != nil {
			// The runtime stopped listening after "ready": the
			// container's stderr is all that is left.
			fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
		}
		os.Exit(1)
	}
}

func run(cfg *Config, ch *Channel, syncFD int) error {
	spec := cfg.Spec
	if spec == nil || spec.Process == nil {
		return errors.New("process: missing")
	}
	if cfg.UnshareCgroupns && !cfg.AwaitCgroup {
		if err := unshareCgroupns(); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeInit && !cfg.SkipRootfs {
		if err := prepareRootfs(cfg, ch); err != nil {
			return err
		}
	} else if cfg.Mode == ModeInit {
		if err := hooksFromInit(cfg, ch); err != nil {
			return err
		}
	}
	if cfg.AwaitCgroup {
		// Only cgroup v1 gets here; its cgroup mounts are binds of host
		// directories, so the rootfs could be built before the move.
		if err := ch.waitCgroup(); err != nil {
			return err
		}
		if cfg.UnshareCgroupns {
			if err := unshareCgroupns(); err != nil {
				return err
			}
		}
	}
	proc := spec.Process
	if proc.Terminal {
		if err := setupConsole(cfg); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeInit && spec.Linux != nil {
		if err := setKernelIdentity(spec); err != nil {
			return err
		}
	}
	if cfg.Mode == ModeInit && !cfg.SkipRootfs {
		if err := finalizeRootfs(spec); err != nil {
			return err
		}
	}
	if proc.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("process.oomScoreAdj: set %d: %w", *proc.OOMScoreAdj, err)
		}
	}
	if err := mount.SetRlimits(proc.Rlimits); err != nil {
		return err
	}
	if cfg.Mode == ModeInit && !cfg.SkipRootfs {
		// The only cwd the path lookup below can trust is inside the new root.
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}

	// The program's path is resolved now, so that a missing binary fails
	// `create`, not `start`.
	env := withHome(dedupEnv(proc.Env), int(proc.User.UID))
	argv0, err := lookPath(proc.Args, env, proc.Cwd)
	if err != nil {
		return err
	}

	var filter *seccomp.Program
	if len(cfg.Seccomp) > 0 {
		filter = new(seccomp.Program)
		if err := filter.UnmarshalBinary(cfg.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	// Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it
	// while we still have it.
	if filter != nil && !proc.NoNewPrivileges {
		if err := filter.Install(); err != nil {
			return fmt.Errorf("linux.seccomp: install filter: %w", err)
		}
	}
	if err := setUserAndCaps(proc); err != nil {
		return err
	}
	unix.Umask(umask(proc))
	if proc.Cwd != "" {
		if err := unix.Chdir(proc.Cwd); err != nil {
			return fmt.Errorf("process.cwd: chdir %s: %w", proc.Cwd, err)
		}
	}

	if cfg.Mode == ModeInit {
		if err := ch.Send(Message{Type: MsgReady, Pid: os.Getpid()}); err != nil {
			return err
		}
		// Wait for `start`: opening the fifo for writing blocks until
		// `start` opens it for reading.
		if err := waitStart(cfg.FifoFD); err != nil {
			return err
		}
		if spec.Hooks != nil {
			if err := RunHooks("startContainer", spec.Hooks.StartContainer, stateForHooks(cfg, specs.StateRunning)); err != nil {
				return err
			}
		}
	} else {
		if err := ch.Send(Message{Type: MsgReady, Pid: os.Getpid()}); err != nil {
			return err
		}
	}
	unix.Close(syncFD)
	closeInternalFds(cfg)
	if filter != nil && proc.NoNewPrivileges {
		// As close to execve as possible, so few syscalls run under it.
		if err := filter.Install(); err != nil {
			return fmt.Errorf("linux.seccomp: install filter: %w", err)
		}
	}
	// Only errors reach here; after the socket is closed the parent learns
	// of them from our exit status and stderr.
	err = unix.Exec(argv0, proc.Args, env)
	fmt.Fprintf(os.Stderr, "berth: exec %s: %v\n", proc.Args[0], err)
	os.Exit(127)
	return nil
}

func unshareCgroupns() error {
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare cgroup namespace: %w", err)
	}
	return nil
}

func umask(proc *specs.Process) int {
	if proc.User.Umask != nil {
		return int(*proc.User.Umask)
	}
	return 0o022
}

// setUserAndCaps drops the bounding set while privileged, switches ids
// keeping the permitted set, then sets the final capability sets.
func setUserAndCaps(proc *specs.Process) error {
	c, _ := caps.FromSpec(proc.Capabilities, caps.LastCap())
	u := proc.User
	changeUser := func() error {
		groups := make([]int, 0, len(u.AdditionalGids))
		for _, g := range u.AdditionalGids {
			groups = append(groups, int(g))
		}
		// setgroups is denied in a user namespace whose setgroups file says
		// deny; that only matters when groups were asked for.
		if err := unix.Setgroups(groups); err != nil && (len(groups) > 0 || !errors.Is(err, unix.EPERM)) {
			return fmt.Errorf("process.user.additionalGids: setgroups %v: %w", u.AdditionalGids, err)
		}
		if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
			return fmt.Errorf("process.user.gid: setgid %d: %w", u.GID, err)
		}
		if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
			return fmt.Errorf("process.user.uid: setuid %d: %w", u.UID, err)
		}
		return nil
	}
	if err := c.Apply(changeUser); err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	return nil
}

func waitStart(fifoFD int) error {
	if fifoFD < 0 {
		return nil
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fifoFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	if _, err := unix.Write(fd, []byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	// fd stays open until execve closes it: `start` waits for that.
	unix.Close(fifoFD)
	return nil
}

// closeInternalFds marks every fd above the preserved ones close-on-exec, so
// nothing of the runtime leaks into the container.
func closeInternalFds(cfg *Config) {
	first := 3 + cfg.PreserveFDs
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd)
	}
}

// lookPath resolves args[0] against PATH from the container's environment.
func lookPath(args, env []string, cwd string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("process.args: empty")
	}
	name := args[0]
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) && cwd != "" {
			p = filepath.Join(cwd, p)
		}
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("process.args[0]: %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("process.args[0]: %q: %w", name, exec.ErrNotFound)
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

// dedupEnv keeps one entry per variable, the last one given, at the place
// of its first: `exec --env` appends to the container's environment, and
// getenv(3) would find the older value first. runc does the same.
func dedupEnv(env []string) []string {
	last := make(map[string]int, len(env))
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		last[name] = i
	}
	if len(last) == len(env) {
		return env
	}
	out := make([]string, 0, len(last))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if j, ok := last[name]; ok {
			out = append(out, env[j])
			delete(last, name)
		}
	}
	return out
}

// withHome adds HOME from the container's /etc/passwd when the spec has none,
// as runc does.
func withHome(env []string, uid int) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			return env
		}
	}
	home := "/"
	if data, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == strconv.Itoa(uid) {
				home = f[5]
				break
			}
		}
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}

func setKernelIdentity(spec *specs.Spec) error {
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("hostname: set %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("domainname: set %q: %w", spec.Domainname, err)
		}
	}
	for key, value := range spec.Linux.Sysctl {
		if err := mount.WriteSysctl(key, value); err != nil {
			return err
		}
	}
	return nil
}
