package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// ContainerSize is the size of the container's writable layer.
func (e *Engine) ContainerSize(ctx context.Context, id string) (int64, error) {
	st, err := e.images.Layers()
	if err != nil {
		return 0, err
	}
	return st.ContainerSize(ctx, id)
}

// Diff lists what the container's writable layer added, changed and
// deleted, as docker diff does.
func (e *Engine) Diff(ctx context.Context, ref string) ([]archive.Change, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	st, err := e.images.Layers()
	if err != nil {
		return nil, err
	}
	return st.Diff(ctx, rec.ID)
}

// Export writes the container's root filesystem as a tar to w.
func (e *Engine) Export(ctx context.Context, ref string, w io.Writer) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	st, err := e.images.Layers()
	if err != nil {
		return err
	}
	mnt, err := st.Mount(rec.ID)
	if err != nil {
		return fmt.Errorf("export %s: %w", rec.Name, err)
	}
	defer func() {
		// Leave a running container's root mounted.
		if cur, err := e.containers.Get(rec.ID); err == nil && !cur.Running() {
			_ = st.Unmount(rec.ID)
		}
	}()
	if err := archive.TarDir(ctx, w, mnt); err != nil {
		return fmt.Errorf("export %s: %w", rec.Name, err)
	}
	return nil
}

// Top lists the container's processes as ps -ef (or ps with psArgs) sees
// them, limited to the container's pids.
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) ([]string, [][]string, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	if !rec.Running() {
		return nil, nil, errdefs.Conflict(fmt.Errorf("container %s is not running", rec.ID))
	}
	pids, err := e.containerPids(rec)
	if err != nil {
		return nil, nil, err
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.CommandContext(ctx, "ps", psArgs...).Output()
	if err != nil {
		return nil, nil, fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	pidCol := -1
	for i, t := range titles {
		if t == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return nil, nil, errdefs.InvalidArgument(errors.New("Couldn't find PID field in ps output"))
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	var procs [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !in[pid] {
			continue
		}
		// The last column (CMD) may hold spaces.
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		procs = append(procs, f)
	}
	return titles, procs, nil
}

// containerPids lists the pids in the container's cgroup.
func (e *Engine) containerPids(rec *store.Container) ([]int, error) {
	if rec.Runtime == "berth" {
		c, err := e.runtime().Load(rec.ID)
		if err != nil {
			return nil, err
		}
		return c.Processes()
	}
	return []int{rec.State.Pid}, nil
}

// Logs reads the container's log, following it while the container runs
// when opts.Follow is set.
func (e *Engine) Logs(ctx context.Context, ref string, opts logs.ReadOptions, fn func(logs.Message) error) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	if rec.LogPath == "" {
		return errdefs.InvalidArgument(fmt.Errorf("configured logging driver does not support reading"))
	}
	if opts.Follow {
		done := make(chan struct{})
		opts.Done = done
		go func() {
			defer close(done)
			if rec.Running() {
				_, _ = e.waitID(ctx, rec)
			}
		}()
	}
	return logs.Read(ctx, rec.LogPath, opts, fn)
}

// ExecOptions are docker exec's.
type ExecOptions struct {
	Cmd         []string
	Env         []string
	User        string
	WorkingDir  string
	Tty         bool
	Interactive bool
	Detach      bool
	Privileged  bool
}

// Exec runs a command in the running container, with this process's stdio,
// and returns its exit code (0 at once with Detach).
func (e *Engine) Exec(ctx context.Context, ref string, o ExecOptions) (int, error) {
	pt := NewPhaseTimer()
	defer pt.Done("exec")
	rec, err := e.Get(ref)
	pt.Mark("find")
	if err != nil {
		return 0, err
	}
	if rec.State.Status == store.StatusPaused {
		return 0, errdefs.Conflict(fmt.Errorf("container %s is paused, unpause the container before exec", rec.ID))
	}
	if !rec.Running() || rec.State.Status == store.StatusRestarting {
		return 0, errdefs.Conflict(fmt.Errorf("container %s is not running", rec.ID))
	}
	if rec.Runtime != "berth" {
		return e.execExternal(ctx, rec, o)
	}
	c, err := e.runtime().Load(rec.ID)
	if err != nil {
		return 0, err
	}
	pt.Mark("load")
	proc := c.ProcessFromArgs(o.Cmd, o.Tty)
	proc.Env = append(proc.Env, o.Env...)
	if o.WorkingDir != "" {
		proc.Cwd = o.WorkingDir
	}
	if o.User != "" {
		u, err := spec.ResolveUser(c.Rootfs, o.User)
		if err != nil {
			return 0, errdefs.InvalidArgument(err)
		}
		proc.User.UID, proc.User.GID, proc.User.AdditionalGids = u.UID, u.GID, u.AdditionalGIDs
	}
	if o.Privileged && proc.Capabilities != nil && c.Spec.Process != nil {
		all := spec.PrivilegedCapabilities()
		proc.Capabilities.Bounding, proc.Capabilities.Effective, proc.Capabilities.Permitted = all, all, all
	}
	var stdio [3]*os.File
	if o.Interactive {
		stdio[0] = os.Stdin
	}
	stdio[1], stdio[2] = os.Stdout, os.Stderr
	opts := runtime.ExecOptions{Process: proc, Stdio: stdio}
	var relay *runtime.ConsoleRelay
	if o.Tty {
		if relay, err = runtime.NewConsoleRelay(); err != nil {
			return 0, err
		}
		opts.Console = relay.Child
	}
	if !o.Detach {
		if err := runtime.SetSubreaper(); err != nil {
			return 0, err
		}
	}
	var forward func(int)
	if !o.Detach && !o.Tty {
		forward = runtime.ForwardSignals()
	}
	pid, err := c.Exec(opts)
	pt.Mark("spawn")
	if err != nil {
		if relay != nil {
			relay.Close()
		}
		return 0, err
	}
	if o.Detach {
		return 0, nil
	}
	if relay != nil {
		if err := relay.Start(); err != nil {
			return 0, err
		}
		defer relay.Close()
	}
	if forward != nil {
		forward(pid)
	}
	code, err := runtime.WaitPid(pid)
	pt.Mark("wait")
	return code, err
}

func (e *Engine) execExternal(ctx context.Context, rec *store.Container, o ExecOptions) (int, error) {
	bin, err := runtimeBinary(rec.Runtime)
	if err != nil {
		return 0, err
	}
	root := filepath.Join(e.opts.RunRoot, "runtime-"+filepath.Base(bin))
	args := []string{"--root", root, "exec"}
	if o.Tty {
		args = append(args, "-t")
	}
	if o.Detach {
		args = append(args, "-d")
	}
	if o.WorkingDir != "" {
		args = append(args, "--cwd", o.WorkingDir)
	}
	for _, kv := range o.Env {
		args = append(args, "--env", kv)
	}
	if o.User != "" {
		rootfs := filepath.Join(e.images.storageRoot(), "mnt", rec.ID)
		u, err := spec.ResolveUser(rootfs, o.User)
		if err != nil {
			return 0, errdefs.InvalidArgument(err)
		}
		args = append(args, "--user", fmt.Sprintf("%d:%d", u.UID, u.GID))
	}
	args = append(append(args, rec.ID), o.Cmd...)
	cmd := exec.CommandContext(ctx, bin, args...)
	if o.Interactive {
		cmd.Stdin = os.Stdin
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// PruneContainers removes every stopped container.
func (e *Engine) PruneContainers(ctx context.Context) (removed []string, reclaimed int64, err error) {
	all, err := e.ListContainers(ctx, ContainerListOptions{All: true})
	if err != nil {
		return nil, 0, err
	}
	for _, c := range all {
		if c.Running() {
			continue
		}
		size, _ := e.ContainerSize(ctx, c.ID)
		if err := e.removeStopped(ctx, c, false); err != nil {
			return removed, reclaimed, err
		}
		removed = append(removed, c.ID)
		reclaimed += size
	}
	return removed, reclaimed, nil
}
