package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/cgroups"
	"github.com/berth-dev/berth/internal/runtime/initproc"
)

// Start lets a created container's init exec the user's program, then runs
// the poststart hooks.
func (c *Container) Start() error {
	if st := c.Status(); st != StatusCreated {
		return errdefs.Conflict(fmt.Errorf("cannot start container %s: it is %s, not created", c.ID, st))
	}
	fifoPath := filepath.Join(c.rt.dir(c.ID), fifoName)
	// Non-blocking open: if init died meanwhile there is no writer and a
	// blocking open would hang.
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo of %s: %w", c.ID, err)
	}
	defer unix.Close(fd)
	if err := waitExec(fd, c); err != nil {
		return err
	}
	_ = os.Remove(fifoPath)
	if c.Spec.Hooks != nil {
		st := c.OCIState()
		// The program may have exited already: the hooks still learn its pid.
		st.Status, st.Pid = specs.StateRunning, c.Pid
		if err := initproc.RunHooks("poststart", c.Spec.Hooks.Poststart, st); err != nil {
			return err
		}
	}
	return nil
}

// waitExec reads the byte init writes once `start` opened the fifo, then
// waits for end of file: init keeps its end open, close-on-exec, until it
// has run the startContainer hooks and exec'd the program (or exited), so
// the poststart hooks run after the program started, as the spec says.
func waitExec(fd int, c *Container) error {
	buf := make([]byte, 8)
	started := false
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			started = true
			continue
		}
		if n == 0 && err == nil && started {
			return nil
		}
		// Before init opens its end, a read finds no writer and returns 0
		// too: wait for it, unless init is gone.
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if !started && !processAlive(c.Pid, c.PidStart) {
			return fmt.Errorf("container %s: init exited before start", c.ID)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(pfd, 100)
	}
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (c *Container) Kill(sig unix.Signal, all bool) error {
	st := c.Status()
	if all {
		cg, err := c.cgroup()
		if err != nil {
			return err
		}
		return signalCgroup(cg, sig)
	}
	// runc's words, "container not running": containerd's shim and
	// podman match them to tell a finished process from a failure.
	if st == StatusStopped {
		return errdefs.Conflict(fmt.Errorf("cannot signal %s: container not running", c.ID))
	}
	if err := unix.Kill(c.Pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.Conflict(fmt.Errorf("cannot signal %s: container not running", c.ID))
		}
		return fmt.Errorf("kill %s: %w", c.ID, err)
	}
	return nil
}

func signalCgroup(cg cgroups.Manager, sig unix.Signal) error {
	// A frozen process queues SIGKILL but cannot act on it: thaw after.
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	for _, p := range pids {
		_ = unix.Kill(p, sig)
	}
	if sig == unix.SIGKILL {
		if frozen, _ := cg.Frozen(); frozen {
			_ = cg.Thaw()
		}
	}
	return nil
}

// Delete removes a stopped (or, with force, any) container: it kills what
// is left, runs the poststop hooks, and removes the cgroup and the state.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	switch st {
	case StatusStopped, StatusCreated:
	default:
		if !force {
			return errdefs.Conflict(fmt.Errorf("cannot delete container %s that is %s: stop it first or use --force", c.ID, st))
		}
	}
	cg, err := c.cgroup()
	if err == nil {
		_ = signalCgroup(cg, unix.SIGKILL)
	}
	if c.Pid > 0 && processAlive(c.Pid, c.PidStart) {
		_ = unix.Kill(c.Pid, unix.SIGKILL)
		waitGone(c.Pid, c.PidStart, 5*time.Second)
	}
	if err == nil {
		if err := destroyCgroup(cg); err != nil {
			return fmt.Errorf("remove cgroup of %s: %w", c.ID, err)
		}
	}
	var hookErr error
	if c.Spec != nil && c.Spec.Hooks != nil && st != StatusCreating {
		state := c.OCIState()
		state.Status = specs.StateStopped
		hookErr = initproc.RunHooks("poststop", c.Spec.Hooks.Poststop, state)
	}
	if err := os.RemoveAll(c.rt.dir(c.ID)); err != nil {
		return fmt.Errorf("remove state of %s: %w", c.ID, err)
	}
	// Like runc: a failing poststop hook is reported, but the container is gone.
	return hookErr
}

// destroyCgroup waits briefly for the cgroup's processes to exit, then
// removes it.
func destroyCgroup(cg cgroups.Manager) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := cg.Pids()
		if err != nil || len(pids) == 0 || time.Now().After(deadline) {
			break
		}
		for _, p := range pids {
			_ = unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cg.Destroy()
}

func waitGone(pid int, start uint64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for processAlive(pid, start) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != StatusRunning && st != StatusCreated {
		return errdefs.Conflict(fmt.Errorf("cannot pause container %s: it is %s", c.ID, st))
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != StatusPaused {
		return errdefs.Conflict(fmt.Errorf("cannot resume container %s: it is %s, not paused", c.ID, st))
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Update changes the resource limits of a live container.
func (c *Container) Update(res *specs.LinuxResources) error {
	if c.Status() == StatusStopped {
		return errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Update(res); err != nil {
		return errdefs.InvalidArgument(err)
	}
	if c.Spec.Linux.Resources == nil {
		c.Spec.Linux.Resources = &specs.LinuxResources{}
	}
	mergeResources(c.Spec.Linux.Resources, res)
	return c.save()
}

func mergeResources(dst, src *specs.LinuxResources) {
	if src.Memory != nil {
		dst.Memory = src.Memory
	}
	if src.CPU != nil {
		dst.CPU = src.CPU
	}
	if src.Pids != nil {
		dst.Pids = src.Pids
	}
	if src.BlockIO != nil {
		dst.BlockIO = src.BlockIO
	}
}

// Processes lists the pids in the container's cgroup.
func (c *Container) Processes() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the container's current resource usage.
func (c *Container) Stats() (*cgroups.Stats, error) {
	if c.Status() == StatusStopped {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", c.ID))
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}
