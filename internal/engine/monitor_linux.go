package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/runtime"
)

// monitorIdle is how long a monitor with no container and no client
// waits before it exits ($BERTH_MONITOR_IDLE overrides it).
const monitorIdle = 30 * time.Second

// task is one running container in the monitor.
type task struct {
	id  string
	gen int

	mu      sync.Mutex
	clients map[*monitor.Conn]clientStreams
	stdin   io.WriteCloser // nil unless the container's stdin is open
	console *os.File       // pty master of a tty container
	pid     int

	copiers sync.WaitGroup
	done    chan struct{} // closed when the container's process has exited and been recorded
	exit    monitor.Exit
}

type clientStreams struct{ stdout, stderr bool }

// monitorState is the monitor process's view: its tasks by container ID.
type monitorState struct {
	e     *Engine
	mu    sync.Mutex
	tasks map[string]*task
	build string
	srv   *monitor.Server

	// The DNS server of user-defined networks, started with the first
	// container on one.
	dnsMu      sync.Mutex
	dns        *dns.Server
	dnsNets    map[string]bool
	dnsClients map[string][]netip.Addr // containers with --dns: their addresses
}

// RunMonitor runs the monitor for the engine's root until it has been
// idle for a while. Only one runs per run root: a second exits at once.
func (e *Engine) RunMonitor() error {
	// The monitor holds every container's output; keep its heap small
	// rather than fast-growing.
	debug.SetGCPercent(25)
	// SIGTERM ends the monitor (the CLI's handler would swallow it); its
	// containers keep running and the next monitor adopts them.
	signal.Reset(unix.SIGTERM, unix.SIGINT)
	lockPath := filepath.Join(e.opts.RunRoot, "monitor.lock")
	fd, err := unix.Open(lockPath, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil // another monitor serves this root
	}
	defer unix.Close(fd)
	if err := monitor.StartReaper(); err != nil {
		return err
	}
	srv, err := monitor.Listen(e.monitorSocket())
	if err != nil {
		return err
	}
	pidFile := filepath.Join(e.opts.RunRoot, "monitor.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	defer os.Remove(pidFile)
	idle := monitorIdle
	if d, err := time.ParseDuration(os.Getenv("BERTH_MONITOR_IDLE")); err == nil && d > 0 {
		idle = d
	}
	m := &monitorState{e: e, tasks: map[string]*task{}, build: BuildID(), srv: srv}
	m.adopt()
	m.reconcileNetworks()
	return srv.Serve(m.handle, idle, m.busy)
}

func (m *monitorState) busy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tasks) > 0
}

func (m *monitorState) handle(conn *monitor.Conn, req monitor.Request) {
	switch req.Op {
	case "ping":
		_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Pid: os.Getpid()})
	case "start":
		if req.Build != "" && req.Build != m.build && !m.busy() {
			// A newer (or older) berth binary asks: step down, it
			// starts a monitor of its own build.
			_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Error: "monitor of another build", Kind: monitor.KindStale})
			m.srv.Stop()
			return
		}
		m.start(conn, req)
	case "attach":
		m.attach(conn, req)
	case "wait":
		m.wait(conn, req)
	case "dns":
		m.refreshDNS(req.ID)
		_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{})
	default:
		_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Error: "unknown request " + req.Op})
	}
}

func replyError(conn *monitor.Conn, err error) {
	_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Error: err.Error(), Kind: int(errdefs.KindOf(err))})
}

// adopt watches containers that a previous monitor started and that still
// run: their exit is recorded, with code 255 when it cannot be known.
func (m *monitorState) adopt() {
	all, err := m.e.containers.List()
	if err != nil {
		return
	}
	for _, c := range all {
		if !c.Running() || c.State.Pid == 0 {
			continue
		}
		if !runtime.ProcessAlive(c.State.Pid, c.State.PidStart) {
			m.e.recordExit(c.ID, c.Generation, 255, "container's process ended while berth's monitor was not running", false)
			continue
		}
		t := &task{id: c.ID, gen: c.Generation, pid: c.State.Pid, clients: map[*monitor.Conn]clientStreams{}, done: make(chan struct{})}
		m.mu.Lock()
		m.tasks[c.ID] = t
		m.mu.Unlock()
		go m.supervise(t)
	}
}

// start starts container req.ID, attaching conn to it first if asked, so
// that no output is missed.
func (m *monitorState) start(conn *monitor.Conn, req monitor.Request) {
	m.mu.Lock()
	if t := m.tasks[req.ID]; t != nil {
		m.mu.Unlock()
		// docker start of a running container is a no-op.
		if req.Stdout || req.Stderr || req.Stdin {
			m.attachTask(conn, t, req)
			return
		}
		_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Pid: t.pid})
		return
	}
	t := &task{id: req.ID, clients: map[*monitor.Conn]clientStreams{}, done: make(chan struct{})}
	m.tasks[req.ID] = t
	m.mu.Unlock()
	attached := req.Stdout || req.Stderr || req.Stdin
	if attached {
		t.clients[conn] = clientStreams{stdout: req.Stdout, stderr: req.Stderr}
	}
	tio, err := m.launch(t, req.Width, req.Height)
	if err != nil {
		m.mu.Lock()
		delete(m.tasks, req.ID)
		m.mu.Unlock()
		replyError(conn, err)
		return
	}
	// The reply goes first; output waits in the pipes meanwhile.
	_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Pid: t.pid})
	tio.startCopy(t)
	go m.supervise(t)
	if attached {
		m.relayInput(conn, t, req)
		<-t.done
		t.mu.Lock()
		delete(t.clients, conn)
		exit := t.exit
		t.mu.Unlock()
		_ = conn.WriteJSON(monitor.FrameExit, exit)
	}
}

// launch prepares and starts t's container: record, rootfs, spec,
// stdio, runtime.
func (m *monitorState) launch(t *task, width, height uint16) (_ *taskIO, retErr error) {
	e := m.e
	ctx := context.Background()
	pt := NewPhaseTimer()
	defer pt.Done("start")
	rec, err := e.containers.Get(t.id)
	if err != nil {
		return nil, err
	}
	if rec.State.Status == store.StatusRemoving {
		return nil, errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be started", rec.Name))
	}
	pt.Mark("record")
	bundle, err := e.prepare(ctx, rec)
	pt.Mark("prepare")
	if err != nil {
		e.cleanupAfterRun(rec)
		return nil, err
	}
	defer func() {
		if retErr != nil {
			e.cleanupAfterRun(rec)
		}
	}()
	var logw *logs.Writer
	if rec.LogPath != "" {
		opts, err := logs.ParseOptions(rec.HostConfig.LogConfig.Config)
		if err != nil {
			return nil, errdefs.InvalidArgument(err)
		}
		if logw, err = logs.Open(rec.LogPath, opts); err != nil {
			return nil, fmt.Errorf("open log of %s: %w", rec.Name, err)
		}
	}
	io, err := newTaskIO(rec.Config, logw, rec.Runtime != "berth", bundle)
	if err != nil {
		if logw != nil {
			logw.Close()
		}
		return nil, err
	}
	pt.Mark("stdio")
	pid, pidStart, err := e.runContainer(rec, bundle, io, func(pid int) error {
		// The network namespace exists and nothing runs in it yet.
		err := m.connect(ctx, rec, bundle, pid)
		pt.Mark("network")
		return err
	})
	pt.Mark("runtime")
	io.closeChildEnds()
	if err != nil {
		io.closeAll()
		return nil, err
	}
	t.pid = pid
	if io.stdin != nil { // a nil *os.File would make a non-nil interface
		t.stdin = io.stdin
	}
	if io.console != nil {
		t.console = io.console
		if width > 0 && height > 0 {
			_ = setWinsize(io.console, width, height)
		}
	}
	updated, err := e.containers.Update(ctx, t.id, func(c *store.Container) error {
		c.Generation++
		c.State = store.State{Status: store.StatusRunning, Pid: pid, PidStart: pidStart, StartedAt: time.Now().UTC()}
		c.ManuallyStopped = false
		return nil
	})
	if err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return nil, err
	}
	t.gen = updated.Generation
	e.emit("start", updated, nil)
	pt.Mark("record")
	return io, nil
}

// supervise waits for t's process, records its end, and applies --rm and
// the restart policy.
func (m *monitorState) supervise(t *task) {
	e := m.e
	ws, err := monitor.WaitProcess(t.pid)
	pt := NewPhaseTimer()
	defer pt.Done("exit")
	code, msg := monitor.ExitCode(ws), ""
	if err != nil {
		code, msg = 255, err.Error()
	}
	// The output may still be in the pipes: let the copiers drain them,
	// but do not wait for processes that escaped with a copy of them.
	drained := make(chan struct{})
	go func() { t.copiers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	t.mu.Lock()
	if t.stdin != nil {
		t.stdin.Close()
	}
	if t.console != nil {
		t.console.Close()
	}
	t.mu.Unlock()

	pt.Mark("drain")
	rec, _ := e.containers.Get(t.id)
	oom := false
	if rec != nil {
		m.forgetDNS(rec)
		e.disconnect(rec)
		pt.Mark("network")
		oom = e.deleteRuntimeState(rec)
		pt.Mark("runtime-delete")
		e.cleanupAfterRun(rec)
		pt.Mark("unmount")
	}
	rec = e.recordExit(t.id, t.gen, code, msg, oom)
	e.emit("die", rec, map[string]string{"exitCode": strconv.Itoa(code)})
	pt.Mark("record")
	exit := monitor.Exit{Code: code, Error: msg}
	restart := false
	if rec != nil {
		if rec.HostConfig.AutoRemove {
			if err := e.remove(context.Background(), rec, true, true); err == nil {
				exit.Removed = true
			}
			pt.Mark("remove")
		} else {
			restart = shouldRestart(rec, code)
		}
	}
	t.mu.Lock()
	t.exit = exit
	t.mu.Unlock()
	m.mu.Lock()
	if m.tasks[t.id] == t {
		delete(m.tasks, t.id)
	}
	m.mu.Unlock()
	close(t.done)
	if restart {
		m.restartLater(rec)
	}
}

// shouldRestart applies docker's restart policies to an exit.
func shouldRestart(rec *store.Container, code int) bool {
	if rec.ManuallyStopped {
		return false
	}
	p := rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return code != 0 && (p.MaximumRetryCount == 0 || rec.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartLater restarts rec after docker's back-off: 100 ms doubling per
// consecutive restart, up to a minute.
func (m *monitorState) restartLater(rec *store.Container) {
	e := m.e
	delay := 100 * time.Millisecond << min(rec.RestartCount, 10)
	delay = min(delay, time.Minute)
	t := &task{id: rec.ID, clients: map[*monitor.Conn]clientStreams{}, done: make(chan struct{})}
	m.mu.Lock()
	if m.tasks[rec.ID] != nil {
		m.mu.Unlock()
		return
	}
	m.tasks[rec.ID] = t
	m.mu.Unlock()
	_, _ = e.containers.Update(context.Background(), rec.ID, func(c *store.Container) error {
		c.State.Status = store.StatusRestarting
		return nil
	})
	go func() {
		time.Sleep(delay)
		cur, err := e.containers.Get(rec.ID)
		ok := err == nil && cur.State.Status == store.StatusRestarting && !cur.ManuallyStopped
		if ok {
			_, _ = e.containers.Update(context.Background(), rec.ID, func(c *store.Container) error {
				c.RestartCount++
				return nil
			})
			var tio *taskIO
			if tio, err = m.launch(t, 0, 0); err == nil {
				tio.startCopy(t)
			}
		}
		if !ok || err != nil {
			if err != nil {
				e.recordExit(rec.ID, cur.Generation, 128, "restart: "+err.Error(), false)
			}
			m.mu.Lock()
			delete(m.tasks, rec.ID)
			m.mu.Unlock()
			close(t.done)
			return
		}
		m.supervise(t)
	}()
}

// attach joins conn to a running container's streams.
func (m *monitorState) attach(conn *monitor.Conn, req monitor.Request) {
	m.mu.Lock()
	t := m.tasks[req.ID]
	m.mu.Unlock()
	if t == nil || t.pid == 0 {
		replyError(conn, errdefs.Conflict(fmt.Errorf("You cannot attach to a stopped container, start it first")))
		return
	}
	m.attachTask(conn, t, req)
}

func (m *monitorState) attachTask(conn *monitor.Conn, t *task, req monitor.Request) {
	t.mu.Lock()
	t.clients[conn] = clientStreams{stdout: req.Stdout, stderr: req.Stderr}
	t.mu.Unlock()
	_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Pid: t.pid})
	m.relayInput(conn, t, req)
	select {
	case <-t.done:
	case <-t.clientGone(conn):
	}
	t.mu.Lock()
	delete(t.clients, conn)
	exit := t.exit
	t.mu.Unlock()
	select {
	case <-t.done:
		_ = conn.WriteJSON(monitor.FrameExit, exit)
	default:
	}
}

// clientGone is closed when the client's connection ends.
func (t *task) clientGone(conn *monitor.Conn) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return conn.Done()
}

// relayInput reads the client's frames (stdin, resize) in the background.
func (m *monitorState) relayInput(conn *monitor.Conn, t *task, req monitor.Request) {
	go func() {
		defer conn.MarkDone()
		for {
			typ, payload, err := conn.Read()
			if err != nil {
				return
			}
			switch typ {
			case monitor.FrameStdin:
				if !req.Stdin {
					continue
				}
				t.mu.Lock()
				w := t.stdin
				if w == nil && t.console != nil {
					w = t.console
				}
				t.mu.Unlock()
				if w != nil {
					_, _ = w.Write(payload)
				}
			case monitor.FrameStdinEOF:
				t.mu.Lock()
				if req.Stdin && t.stdin != nil {
					t.stdin.Close()
					t.stdin = nil
				}
				t.mu.Unlock()
			case monitor.FrameResize:
				var r monitor.Resize
				if parseJSON(payload, &r) == nil && t.console != nil {
					_ = setWinsize(t.console, r.Width, r.Height)
				}
			}
		}
	}()
}

// wait answers when container req.ID's current run ends.
func (m *monitorState) wait(conn *monitor.Conn, req monitor.Request) {
	m.mu.Lock()
	t := m.tasks[req.ID]
	m.mu.Unlock()
	if t == nil {
		_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{})
		rec, err := m.e.containers.Get(req.ID)
		if err != nil {
			_ = conn.WriteJSON(monitor.FrameExit, monitor.Exit{Code: -1, Removed: true})
			return
		}
		_ = conn.WriteJSON(monitor.FrameExit, monitor.Exit{Code: rec.State.ExitCode, Error: rec.State.Error})
		return
	}
	_ = conn.WriteJSON(monitor.FrameReply, monitor.Reply{Pid: t.pid})
	<-t.done
	t.mu.Lock()
	exit := t.exit
	t.mu.Unlock()
	_ = conn.WriteJSON(monitor.FrameExit, exit)
}

// broadcast sends output to the attached clients that want it.
func (t *task) broadcast(typ byte, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c, s := range t.clients {
		if (typ == monitor.FrameStdout && s.stdout) || (typ == monitor.FrameStderr && s.stderr) {
			if err := c.Write(typ, data); err != nil {
				delete(t.clients, c)
			}
		}
	}
}

// runContainer creates and starts the container with its runtime and
// returns its init's pid and start time. The monitor tracks the pid
// before any reaper could see it exit.
func (e *Engine) runContainer(rec *store.Container, bundle string, tio *taskIO, beforeStart func(pid int) error) (int, uint64, error) {
	monitor.ExecLock.RLock()
	defer monitor.ExecLock.RUnlock()
	if rec.Runtime == "berth" {
		rt := e.runtime()
		c, err := rt.Create(runtime.CreateOptions{ID: rec.ID, Bundle: bundle, Stdio: tio.child, Console: tio.consoleSock})
		if err != nil {
			return 0, 0, err
		}
		monitor.Track(c.Pid)
		if err := beforeStart(c.Pid); err != nil {
			_ = c.Delete(true)
			return 0, 0, err
		}
		if err := c.Start(); err != nil {
			_ = c.Delete(true)
			return 0, 0, err
		}
		return c.Pid, c.PidStart, nil
	}
	bin, err := runtimeBinary(rec.Runtime)
	if err != nil {
		return 0, 0, err
	}
	root := filepath.Join(e.opts.RunRoot, "runtime-"+filepath.Base(bin))
	pidFile := filepath.Join(bundle, "init.pid")
	logFile := filepath.Join(bundle, "runtime.log")
	_ = os.Remove(logFile)
	args := []string{"--root", root, "--log", logFile, "--log-format", "json", "create", "--bundle", bundle, "--pid-file", pidFile}
	if tio.consoleListener != nil {
		args = append(args, "--console-socket", tio.consoleListener.Addr().String())
	}
	args = append(args, rec.ID)
	cmd := exec.Command(bin, args...)
	// Files, not writers: the runtime's init inherits them, and os/exec
	// would wait for the init to close a pipe of its own.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tio.child[0], tio.child[1], tio.child[2]
	if tio.consoleListener != nil {
		go tio.acceptConsole()
	}
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s create: %s", filepath.Base(bin), runtimeLogError(logFile, err))
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, 0, fmt.Errorf("%s create: pid file: %w", filepath.Base(bin), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, 0, fmt.Errorf("%s create: pid file: %w", filepath.Base(bin), err)
	}
	monitor.Track(pid)
	if tio.consoleListener != nil {
		if err := tio.waitConsole(); err != nil {
			return 0, 0, err
		}
	}
	if err := beforeStart(pid); err != nil {
		_ = exec.Command(bin, "--root", root, "delete", "-f", rec.ID).Run()
		return 0, 0, err
	}
	if out, err := exec.Command(bin, "--root", root, "start", rec.ID).CombinedOutput(); err != nil {
		_ = exec.Command(bin, "--root", root, "delete", "-f", rec.ID).Run()
		return 0, 0, fmt.Errorf("%s start: %s", filepath.Base(bin), strings.TrimSpace(lastLine(string(out), err)))
	}
	start, _ := runtime.ProcessStartTime(pid)
	return pid, start, nil
}

// runtimeLogError is the last error a runc-like runtime logged.
func runtimeLogError(path string, err error) string {
	data, _ := os.ReadFile(path)
	msg := ""
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			msg = entry.Msg
		}
	}
	if msg == "" {
		return err.Error()
	}
	return msg
}

func lastLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return err.Error()
	}
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// runtimeBinary finds --runtime NAME|PATH.
func runtimeBinary(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("unknown or invalid runtime name: %s", name))
	}
	return p, nil
}

// deleteRuntimeState deletes the runtime's state and cgroup of rec after
// its process ended, reporting whether the kernel's OOM killer struck.
func (e *Engine) deleteRuntimeState(rec *store.Container) (oomKilled bool) {
	if rec.Runtime == "berth" {
		c, err := e.runtime().Load(rec.ID)
		if err != nil {
			return false
		}
		if st, err := c.Stats(); err == nil && st != nil {
			oomKilled = st.Memory.OOMKills > 0
		}
		_ = c.Delete(true)
		return oomKilled
	}
	bin, err := runtimeBinary(rec.Runtime)
	if err != nil {
		return false
	}
	root := filepath.Join(e.opts.RunRoot, "runtime-"+filepath.Base(bin))
	monitor.ExecLock.RLock()
	_ = exec.Command(bin, "--root", root, "delete", "-f", rec.ID).Run()
	monitor.ExecLock.RUnlock()
	return false
}

// cleanupAfterRun unmounts what prepare mounted.
func (e *Engine) cleanupAfterRun(rec *store.Container) {
	e.unmountVolumes(rec)
	e.unmountShm(rec)
	e.unmountRootfs(rec)
}

// unmountRootfs unmounts the container's root.
func (e *Engine) unmountRootfs(rec *store.Container) {
	if st, err := e.images.Layers(); err == nil {
		_ = st.Unmount(rec.ID)
	}
}

// recordExit records the end of generation gen of container id.
func (e *Engine) recordExit(id string, gen, code int, msg string, oom bool) *store.Container {
	rec, err := e.containers.Update(context.Background(), id, func(c *store.Container) error {
		if c.Generation != gen {
			return errStale
		}
		c.State.Status = store.StatusExited
		c.State.ExitCode = code
		c.State.Error = msg
		c.State.OOMKilled = oom
		c.State.Pid = 0
		c.State.PidStart = 0
		c.State.FinishedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		return nil
	}
	return rec
}

var errStale = errors.New("stale generation")

// BuildID identifies this berth binary (size and modification time of the
// executable it was started from): monitors compare it with their clients'.
func BuildID() string {
	st, err := os.Stat("/proc/self/exe")
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d-%d", st.Size(), st.ModTime().UnixNano())
}
