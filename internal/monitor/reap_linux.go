package monitor

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Children: the monitor is a child subreaper, so containers whose runtime
// process exits (runc, crun: their init is reparented to us) and orphans
// of containers that share the host's PID namespace become its children.
// Container inits are waited for one by one through pidfds (WaitProcess);
// everything else is reaped by the SIGCHLD loop. Code that starts a child
// and waits for it itself (os/exec) holds ExecLock shared from start to
// wait, so that the loop never steals its exit status.
var (
	// ExecLock is held shared around every start-and-wait of a child in
	// the monitor; the reaper takes it exclusively.
	ExecLock sync.RWMutex

	trackedMu sync.Mutex
	tracked   = map[int]bool{}
)

// Track marks pid as waited for by WaitProcess; the reaper leaves it.
func Track(pid int) {
	trackedMu.Lock()
	tracked[pid] = true
	trackedMu.Unlock()
}

func untrack(pid int) {
	trackedMu.Lock()
	delete(tracked, pid)
	trackedMu.Unlock()
}

func isTracked(pid int) bool {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	return tracked[pid]
}

// StartReaper makes this process a child subreaper and reaps orphans on
// SIGCHLD.
func StartReaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			reapOrphans()
		}
	}()
	return nil
}

func reapOrphans() {
	ExecLock.Lock()
	defer ExecLock.Unlock()
	for _, pid := range children() {
		if isTracked(pid) {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// children lists this process's children from /proc (every thread's).
func children() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// WaitProcess waits, without holding a thread, for pid (a tracked child)
// to exit and reaps it. The goroutine parks in the poller on a pidfd.
func WaitProcess(pid int) (unix.WaitStatus, error) {
	defer untrack(pid)
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return reap(pid)
		}
		return 0, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ws unix.WaitStatus
	var werr error
	err = rc.Read(func(pfd uintptr) bool {
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) && !pidfdReadable(pfd) {
			// Not our child and still running: Read calls this once
			// before waiting, so wait for the pidfd to say it exited.
			return false
		}
		if err != nil {
			werr = err
			return true
		}
		return got == pid
	})
	if err != nil {
		return 0, err
	}
	if werr != nil {
		if errors.Is(werr, unix.ECHILD) {
			// Not our child (a container adopted after a restart of
			// the monitor): it is gone, its status is not ours to know.
			return 0, errNotChild
		}
		return 0, werr
	}
	return ws, nil
}

// pidfdReadable reports whether pidfd's process has exited.
func pidfdReadable(pidfd uintptr) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

var errNotChild = errors.New("process is not the monitor's child: exit status unknown")

func IsNotChild(err error) bool { return errors.Is(err, errNotChild) }

func reap(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		if errors.Is(err, unix.ECHILD) {
			return 0, errNotChild
		}
		return 0, err
	}
	return ws, nil
}

// ExitCode turns a wait status into docker's exit code: the program's
// own, or 128+signal.
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
