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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
)

// refresh reconciles a record with the machine: a container recorded as
// running whose process is gone, with no monitor left to say how it
// ended, is recorded as exited (code 255: unknown).
func (e *Engine) refresh(c *store.Container) *store.Container {
	if !c.Running() || c.State.Status == store.StatusRestarting || runtime.ProcessAlive(c.State.Pid, c.State.PidStart) {
		return c
	}
	if conn, err := monitor.Dial(e.monitorSocket()); err == nil {
		// The monitor is up: it records the exit, maybe this instant.
		conn.Close()
		time.Sleep(20 * time.Millisecond)
		if cur, err := e.containers.Get(c.ID); err == nil {
			return cur
		}
		return c
	}
	e.recordExit(c.ID, c.Generation, 255, "container's process ended while berth's monitor was not running", false)
	if cur, err := e.containers.Get(c.ID); err == nil {
		return cur
	}
	return c
}

// dialMonitor connects to the root's monitor, starting one if none runs.
func (e *Engine) dialMonitor() (*monitor.Conn, error) {
	sock := e.monitorSocket()
	conn, err := monitor.Dial(sock)
	if err == nil {
		return conn, nil
	}
	if !errors.Is(err, monitor.ErrNotRunning) {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(e.opts.RunRoot, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	defer logf.Close()
	args := []string{"--root", e.opts.Root, "--runroot", e.opts.RunRoot}
	if e.opts.StorageDriver != "" {
		args = append(args, "--storage-driver", e.opts.StorageDriver)
	}
	spawn := func() (chan error, error) {
		cmd := exec.Command(e.opts.Binary, append(args, "__monitor")...)
		cmd.Stderr = logf
		cmd.Dir = "/"
		// Its own session: the monitor outlives this CLI and its terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start monitor: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		return exited, nil
	}
	exited, err := spawn()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(delay*2, 20*time.Millisecond) {
		if conn, err = monitor.Dial(sock); err == nil {
			return conn, nil
		}
		select {
		case err := <-exited:
			if conn, derr := monitor.Dial(sock); derr == nil {
				return conn, nil
			}
			if err != nil {
				return nil, fmt.Errorf("start monitor: %v (see %s)", err, logf.Name())
			}
			// It found the root's lock held (a monitor on its way out,
			// or one starting for another CLI): try again shortly.
			time.Sleep(10 * time.Millisecond)
			if conn, derr := monitor.Dial(sock); derr == nil {
				return conn, nil
			}
			if exited, err = spawn(); err != nil {
				return nil, err
			}
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("start monitor: no answer on %s (see %s)", sock, logf.Name())
		}
		time.Sleep(delay)
	}
}

// request sends req to the monitor and reads its reply; a start reaches a
// monitor of this binary's build.
func (e *Engine) request(req monitor.Request) (*monitor.Conn, monitor.Reply, error) {
	if req.Op == "start" {
		req.Build = BuildID()
		for try := 0; ; try++ {
			conn, reply, err := e.request1(req)
			if err == nil || reply.Kind != monitor.KindStale || try == 3 {
				return conn, reply, err
			}
			time.Sleep(20 * time.Millisecond) // the old one lets go of its socket
		}
	}
	return e.request1(req)
}

func (e *Engine) request1(req monitor.Request) (*monitor.Conn, monitor.Reply, error) {
	conn, err := e.dialMonitor()
	if err != nil {
		return nil, monitor.Reply{}, err
	}
	var reply monitor.Reply
	if err := conn.WriteJSON(monitor.FrameRequest, req); err != nil {
		conn.Close()
		return nil, reply, fmt.Errorf("monitor: %w", err)
	}
	if err := conn.ReadJSON(monitor.FrameReply, &reply); err != nil {
		conn.Close()
		return nil, reply, fmt.Errorf("monitor: %w", err)
	}
	if reply.Error != "" {
		conn.Close()
		return nil, reply, errdefs.WithKind(errdefs.Kind(reply.Kind), errors.New(reply.Error))
	}
	return conn, reply, nil
}

// Start starts a created or stopped container, detached.
func (e *Engine) Start(ctx context.Context, ref string) (*store.Container, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	if rec.State.Status == store.StatusPaused {
		return nil, errdefs.Conflict(fmt.Errorf("cannot start a paused container, try unpause instead"))
	}
	conn, _, err := e.request(monitor.Request{Op: "start", ID: rec.ID})
	if err != nil {
		return rec, err
	}
	conn.Close()
	return rec, nil
}

// Streams are an attached client's ends.
type Streams struct {
	Stdin          io.Reader // nil: not attached to stdin
	Stdout, Stderr io.Writer // nil: not attached
	Width, Height  uint16
	// Resize delivers terminal size changes.
	Resize <-chan monitor.Resize
	// DetachKeys, when typed on Stdin, detach the client (docker's
	// ctrl-p,ctrl-q by default); nil disables detaching.
	DetachKeys []byte
}

// ErrDetached is returned when the user typed the detach keys.
var ErrDetached = errors.New("detached")

// StartAttached starts container id (or, when attach is set, attaches to it
// running) and relays its streams until it exits; it returns the exit.
func (e *Engine) StartAttached(ctx context.Context, id string, s Streams, attachOnly bool) (monitor.Exit, error) {
	op := "start"
	if attachOnly {
		op = "attach"
	}
	conn, _, err := e.request(monitor.Request{Op: op, ID: id, Stdin: s.Stdin != nil, Stdout: s.Stdout != nil,
		Stderr: s.Stderr != nil, Width: s.Width, Height: s.Height})
	if err != nil {
		return monitor.Exit{}, err
	}
	defer conn.Close()
	detached := make(chan struct{})
	if s.Stdin != nil {
		go copyStdin(conn, s.Stdin, s.DetachKeys, detached)
	}
	if s.Resize != nil {
		go func() {
			for r := range s.Resize {
				_ = conn.WriteJSON(monitor.FrameResize, r)
			}
		}()
	}
	type frame struct {
		typ     byte
		payload []byte
		err     error
	}
	frames := make(chan frame, 16)
	go func() {
		for {
			typ, payload, err := conn.Read()
			frames <- frame{typ, payload, err}
			if err != nil || typ == monitor.FrameExit {
				return
			}
		}
	}()
	for {
		select {
		case <-detached:
			return monitor.Exit{}, ErrDetached
		case f := <-frames:
			if f.err != nil {
				return monitor.Exit{}, fmt.Errorf("lost the monitor's connection: %w", f.err)
			}
			switch f.typ {
			case monitor.FrameStdout:
				if s.Stdout != nil {
					_, _ = s.Stdout.Write(f.payload)
				}
			case monitor.FrameStderr:
				if s.Stderr != nil {
					_, _ = s.Stderr.Write(f.payload)
				}
			case monitor.FrameExit:
				var exit monitor.Exit
				if err := parseJSON(f.payload, &exit); err != nil {
					return exit, fmt.Errorf("monitor: %w", err)
				}
				return exit, nil
			}
		}
	}
}

// copyStdin sends stdin to the monitor, watching for the detach keys.
func copyStdin(conn *monitor.Conn, r io.Reader, keys []byte, detached chan struct{}) {
	buf := make([]byte, 32*1024)
	matched := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			data := buf[:n]
			if len(keys) > 0 {
				for _, b := range data {
					if b == keys[matched] {
						matched++
						if matched == len(keys) {
							close(detached)
							return
						}
					} else {
						matched = 0
					}
				}
			}
			if werr := conn.Write(monitor.FrameStdin, data); werr != nil {
				return
			}
		}
		if err != nil {
			_ = conn.Write(monitor.FrameStdinEOF, nil)
			return
		}
	}
}

// Wait waits for container ref to stop and returns its exit.
func (e *Engine) Wait(ctx context.Context, ref string) (monitor.Exit, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return monitor.Exit{}, err
	}
	return e.waitID(ctx, rec)
}

func (e *Engine) waitID(ctx context.Context, rec *store.Container) (monitor.Exit, error) {
	if !rec.Running() {
		return monitor.Exit{Code: rec.State.ExitCode, Error: rec.State.Error}, nil
	}
	conn, _, err := e.request(monitor.Request{Op: "wait", ID: rec.ID})
	if err != nil {
		return monitor.Exit{}, err
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	var exit monitor.Exit
	if err := conn.ReadJSON(monitor.FrameExit, &exit); err != nil {
		if ctx.Err() != nil {
			return exit, ctx.Err()
		}
		return exit, fmt.Errorf("wait for %s: %w", rec.Name, err)
	}
	return exit, nil
}

// notRunning is docker's error for signalling a stopped container.
func notRunning(rec *store.Container) error {
	return errdefs.Conflict(fmt.Errorf("cannot kill container: %s: container %s is not running", rec.Name, rec.ID))
}

// Kill sends sig (a name like "KILL" or "SIGHUP", or a number; "" is
// SIGKILL) to the container's init.
func (e *Engine) Kill(ctx context.Context, ref, sig string) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	s := unix.SIGKILL
	if sig != "" {
		if s, err = runtime.ParseSignal(sig); err != nil {
			return err
		}
	}
	if !rec.Running() || rec.State.Status == store.StatusRestarting {
		return notRunning(rec)
	}
	if s == unix.SIGKILL || s == e.stopSignal(rec) {
		if _, err := e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
			c.ManuallyStopped = true
			return nil
		}); err != nil {
			return err
		}
	}
	if err := e.signal(rec, s); err != nil {
		return err
	}
	if s == unix.SIGKILL {
		// As docker's: a kill -9 returns once the container is down.
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, _ = e.waitID(wctx, rec)
	}
	return nil
}

// signal delivers s to rec's init, thawing a paused container so that the
// signal takes effect.
func (e *Engine) signal(rec *store.Container, s unix.Signal) error {
	if !runtime.ProcessAlive(rec.State.Pid, rec.State.PidStart) {
		return notRunning(rec)
	}
	if err := unix.Kill(rec.State.Pid, s); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %s: %w", rec.Name, err)
	}
	e.emit("kill", rec, map[string]string{"signal": strconv.Itoa(int(s))})
	if rec.State.Status == store.StatusPaused && (s == unix.SIGKILL || s == unix.SIGTERM) {
		_ = e.resume(rec)
	}
	return nil
}

// stopSignal is the container's --stop-signal, else the image's, else
// SIGTERM.
func (e *Engine) stopSignal(rec *store.Container) unix.Signal {
	name := rec.Config.StopSignal
	if name == "" && rec.ImageConfig != nil {
		name = rec.ImageConfig.StopSignal
	}
	if s, err := runtime.ParseSignal(name); err == nil && name != "" {
		return s
	}
	return unix.SIGTERM
}

// Stop stops the container: its stop signal, then SIGKILL after timeout
// (nil: the container's --stop-timeout, else 10 s; negative: forever).
func (e *Engine) Stop(ctx context.Context, ref string, timeout *int) (retErr error) {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	rec, err = e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
		c.ManuallyStopped = true
		if c.State.Status == store.StatusRestarting {
			c.State.Status = store.StatusExited
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !rec.Running() {
		return nil
	}
	defer func() { e.emitIf(retErr == nil, "stop", rec, nil) }()
	secs := 10
	if rec.Config.StopTimeout != nil {
		secs = *rec.Config.StopTimeout
	}
	if timeout != nil {
		secs = *timeout
	}
	if err := e.signal(rec, e.stopSignal(rec)); err != nil {
		if !runtime.ProcessAlive(rec.State.Pid, rec.State.PidStart) {
			_, err = e.waitID(ctx, rec)
			return err
		}
		return err
	}
	wctx := ctx
	if secs >= 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, time.Duration(secs)*time.Second)
		defer cancel()
	}
	if _, err := e.waitID(wctx, rec); err == nil {
		return nil
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := e.signal(rec, unix.SIGKILL); err != nil && runtime.ProcessAlive(rec.State.Pid, rec.State.PidStart) {
		return err
	}
	_, err = e.waitID(ctx, rec)
	return err
}

// Restart stops and starts the container.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *int) error {
	if err := e.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	_, err := e.Start(ctx, ref)
	return err
}

// RemoveOptions are docker rm's flags.
type RemoveOptions struct {
	Force   bool // kill a running container first
	Volumes bool // remove its anonymous volumes
}

// Remove deletes a container: its process (with Force), writable layer,
// anonymous volumes (with Volumes), logs, runtime state and record.
func (e *Engine) Remove(ctx context.Context, ref string, opts RemoveOptions) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	if rec.Running() {
		if !opts.Force {
			what := "running"
			if rec.State.Status == store.StatusPaused {
				what = "paused"
			}
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is %s: stop the container before removing or force remove", rec.Name, what))
		}
		if rec, err = e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
			c.ManuallyStopped = true
			if c.State.Status == store.StatusRestarting {
				c.State.Status = store.StatusExited
			}
			return nil
		}); err != nil {
			return err
		}
		if rec.Running() {
			_ = e.signal(rec, unix.SIGKILL)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, _ = e.waitID(wctx, rec)
			cancel()
		}
		if rec, err = e.containers.Get(rec.ID); err != nil {
			if errdefs.Is(err, errdefs.KindNotFound) {
				return nil // removed by --rm meanwhile
			}
			return err
		}
	}
	return e.removeStopped(ctx, rec, opts.Volumes)
}

// removeStopped deletes a stopped container and everything it owns.
func (e *Engine) removeStopped(ctx context.Context, rec *store.Container, volumes bool) error {
	return e.remove(ctx, rec, volumes, false)
}

// remove deletes a stopped container; afterRun says the monitor has just
// released its network, runtime state and mounts (--rm), which a crash may
// otherwise have left and remove then cleans up.
func (e *Engine) remove(ctx context.Context, rec *store.Container, volumes, afterRun bool) error {
	if _, err := e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
		if c.Running() && runtime.ProcessAlive(c.State.Pid, c.State.PidStart) {
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is running", c.Name))
		}
		c.State.Status = store.StatusRemoving
		return nil
	}); err != nil {
		return err
	}
	if !afterRun {
		// What a crash may have left: the runtime's state, mounts.
		e.disconnect(rec)
		e.deleteRuntimeState(rec)
		e.unmountShm(rec)
		e.unmountRootfs(rec)
	}
	if st, err := e.images.Layers(); err == nil {
		if err := st.RemoveContainerLayer(rec.ID); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			return fmt.Errorf("remove container %s: %w", rec.Name, err)
		}
	}
	e.releaseVolumes(rec, volumes)
	_ = os.RemoveAll(e.bundleDir(rec.ID))
	unlock, err := e.containers.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.containers.Delete(rec.ID); err != nil {
		return err
	}
	e.emit("destroy", rec, nil)
	return nil
}

// Pause freezes the container's processes.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	switch rec.State.Status {
	case store.StatusPaused:
		return errdefs.Conflict(fmt.Errorf("container %s is already paused", rec.ID))
	case store.StatusRunning:
	default:
		return errdefs.Conflict(fmt.Errorf("container %s is not running", rec.ID))
	}
	if err := e.runtimeOp(rec, "pause"); err != nil {
		return err
	}
	_, err = e.containers.Update(ctx, rec.ID, func(c *store.Container) error {
		if c.State.Status == store.StatusRunning {
			c.State.Status = store.StatusPaused
		}
		return nil
	})
	e.emitIf(err == nil, "pause", rec, nil)
	return err
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	if rec.State.Status != store.StatusPaused {
		return errdefs.Conflict(fmt.Errorf("container %s is not paused", rec.ID))
	}
	return e.resume(rec)
}

func (e *Engine) resume(rec *store.Container) error {
	if err := e.runtimeOp(rec, "resume"); err != nil {
		return err
	}
	_, err := e.containers.Update(context.Background(), rec.ID, func(c *store.Container) error {
		if c.State.Status == store.StatusPaused {
			c.State.Status = store.StatusRunning
		}
		return nil
	})
	e.emitIf(err == nil, "unpause", rec, nil)
	return err
}

// runtimeOp runs pause or resume with the container's runtime.
func (e *Engine) runtimeOp(rec *store.Container, op string) error {
	if rec.Runtime == "berth" {
		c, err := e.runtime().Load(rec.ID)
		if err != nil {
			return err
		}
		if op == "pause" {
			return c.Pause()
		}
		return c.Resume()
	}
	bin, err := runtimeBinary(rec.Runtime)
	if err != nil {
		return err
	}
	root := filepath.Join(e.opts.RunRoot, "runtime-"+filepath.Base(bin))
	if out, err := exec.Command(bin, "--root", root, op, rec.ID).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %s", filepath.Base(bin), op, lastLine(string(out), err))
	}
	return nil
}

// Rename gives a container a new name.
func (e *Engine) Rename(ctx context.Context, ref, name string) error {
	name = strings.TrimPrefix(name, "/")
	if !validName.MatchString(name) {
		return errdefs.InvalidArgument(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	unlock, err := e.containers.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := e.containers.Find(ref)
	if err != nil {
		return err
	}
	if rec.Name == name {
		return errdefs.InvalidArgument(fmt.Errorf("Renaming a container with the same name as its current name"))
	}
	if other, err := e.containers.ByName(name); err != nil {
		return err
	} else if other != nil {
		return errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other.ID))
	}
	old := rec.Name
	rec.Name = name
	if err := e.containers.Put(rec); err != nil {
		return err
	}
	e.containers.ForgetName(old, rec.ID)
	e.emit("rename", rec, map[string]string{"oldName": "/" + old})
	return nil
}
