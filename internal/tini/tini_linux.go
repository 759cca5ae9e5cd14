package tini

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs berth-init with its arguments (argv without argv[0]) and returns
// the code to exit with.
func Main(args []string) int {
	o, err := parseArgs(args, os.Getenv, unix.SignalNum)
	if errors.Is(err, errHelp) {
		usage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		usage(os.Stderr)
		return 1
	}
	return run(&o, os.Stderr)
}

// run starts the child, then forwards signals and reaps until it exits.
func run(o *options, stderr io.Writer) int {
	if o.subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			fmt.Fprintf(stderr, "berth-init: register as child subreaper: %v\n", err)
			return 1
		}
	}
	if o.pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(o.pdeathsig), 0, 0, 0); err != nil {
			fmt.Fprintf(stderr, "berth-init: set parent death signal: %v\n", err)
			return 1
		}
	}

	// Subscribe before the child exists so that no signal, and no exit,
	// is missed. SIGCHLD has a channel of its own: one pending value is
	// enough to trigger a full reap, and a burst of other signals cannot
	// crowd it out.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs) // every signal that can be caught
	defer signal.Stop(sigs)
	defer signal.Stop(chld)

	pid, err := spawn(o.cmd)
	if err != nil {
		fmt.Fprintf(stderr, "berth-init: %v\n", err)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, errNotFound) {
			return 127
		}
		return 126
	}
	ws := supervise(pid, o.group, chld, sigs)
	return o.exitCode(ws.Exited(), ws.ExitStatus(), ws.Signal())
}

// spawn starts argv as a child in a process group of its own, as tini does,
// and makes that group the terminal's foreground group when stdin is our
// controlling terminal, so that Ctrl-C and job control reach the program.
func spawn(argv []string) (int, error) {
	path, err := lookPath(argv[0])
	if err != nil {
		return 0, err
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	// TIOCGPGRP fails unless fd 0 is this process's controlling terminal,
	// the one case where the child can be put in the foreground.
	if _, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		sys.Foreground = true
		sys.Ctty = 0
	}
	// Descriptors beyond 2 that were inherited without close-on-exec pass
	// through as well, as with tini.
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	return pid, nil
}

var errNotFound = errors.New("executable file not found in $PATH")

// lookPath finds file in $PATH the way execvp does: a name with a slash is
// used as is; a file that exists but cannot be run is returned when nothing
// better is found, so that exec reports why (permission denied: 126).
func lookPath(file string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	dirs, ok := os.LookupEnv("PATH")
	if !ok {
		dirs = "/bin:/usr/bin" // execvp's default
	}
	denied := ""
	for dir := range strings.SplitSeq(dirs, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return denied, nil
	}
	return "", fmt.Errorf("exec %s: %w", file, errNotFound)
}

// supervise is the reap loop: it forwards every signal but SIGCHLD to the
// child (or its process group), reaps every child that has exited, orphans
// included, and returns the status of the main child once it has exited.
// The other processes die with the PID namespace when PID 1 exits.
func supervise(child int, group bool, chld, sigs <-chan os.Signal) unix.WaitStatus {
	target := child
	if group {
		target = -child
	}
	for {
		if ws, done := reap(child); done {
			return ws
		}
		select {
		case <-chld:
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok && forwarded(sig) {
				// ESRCH only means the child is already gone; its
				// SIGCHLD is on the way.
				_ = unix.Kill(target, sig)
			}
		}
	}
}

// reap waits for every exited child without blocking and reports whether
// the main child was among them.
func reap(child int) (ws unix.WaitStatus, done bool) {
	for {
		var st unix.WaitStatus
		pid, err := unix.Wait4(-1, &st, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return ws, done
		}
		if pid == child {
			ws, done = st, true
		}
	}
}

// forwarded says whether a signal berth-init receives goes on to the child.
// Like tini it keeps the signals that only make sense for itself: faults,
// terminal stops of the background init (it takes them as ignored), and
// SIGCHLD. SIGURG is also kept: the Go runtime sends it to its own threads
// to preempt goroutines, so one sent by a user cannot be told apart.
func forwarded(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG,
		unix.SIGFPE, unix.SIGILL, unix.SIGSEGV, unix.SIGBUS, unix.SIGABRT, unix.SIGTRAP, unix.SIGSYS,
		unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}
