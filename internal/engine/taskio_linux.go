package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime"
)

// taskIO is a container's stdio as the monitor holds it: pipes (or a pty
// when the container has a tty) whose far ends the container gets.
type taskIO struct {
	child [3]*os.File // the container's ends; nil is /dev/null
	stdin *os.File    // our end of stdin, when open
	outR  *os.File    // our ends of stdout and stderr
	errR  *os.File
	log   *logs.Writer

	// tty: berth's runtime sends the pty master over consoleSock; other
	// runtimes connect to consoleListener.
	consoleSock     *os.File
	consoleParent   *os.File
	consoleListener *net.UnixListener
	consoleCh       chan consoleResult
	console         *os.File
}

type consoleResult struct {
	f   *os.File
	err error
}

// newTaskIO makes the pipes, or for a tty the console socket: a socket
// pair for berth's runtime, a listening socket in dir for another.
func newTaskIO(cfg *container.Config, log *logs.Writer, external bool, dir string) (*taskIO, error) {
	tio := &taskIO{log: log}
	ok := false
	defer func() {
		if !ok {
			tio.closeChildEnds()
			tio.closeAll()
		}
	}()
	if cfg.OpenStdin && !cfg.Tty {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		tio.child[0], tio.stdin = r, w
	}
	if cfg.Tty && external {
		if err := tio.listenConsole(dir); err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		ok = true
		return tio, nil
	}
	if cfg.Tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("console socket: %w", err)
		}
		tio.consoleParent = os.NewFile(uintptr(fds[0]), "console-parent")
		tio.consoleSock = os.NewFile(uintptr(fds[1]), "console-child")
		ok = true
		return tio, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	tio.outR, tio.child[1] = r, w
	r, w, err = os.Pipe()
	if err != nil {
		return nil, err
	}
	tio.errR, tio.child[2] = r, w
	ok = true
	return tio, nil
}

// listenConsole makes a console socket path for an external runtime.
func (tio *taskIO) listenConsole(dir string) error {
	path := filepath.Join(dir, "console.sock")
	_ = os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	tio.consoleListener = l
	tio.consoleCh = make(chan consoleResult, 1)
	return nil
}

func (tio *taskIO) acceptConsole() {
	_ = tio.consoleListener.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := tio.consoleListener.AcceptUnix()
	if err != nil {
		tio.consoleCh <- consoleResult{err: err}
		return
	}
	f, err := c.File()
	c.Close()
	if err != nil {
		tio.consoleCh <- consoleResult{err: err}
		return
	}
	master, err := runtime.RecvFd(f)
	f.Close()
	tio.consoleCh <- consoleResult{f: master, err: err}
}

func (tio *taskIO) waitConsole() error {
	r := <-tio.consoleCh
	tio.consoleListener.Close()
	if r.err != nil {
		return fmt.Errorf("receive the container's console: %w", r.err)
	}
	tio.console = r.f
	return nil
}

// closeChildEnds closes our copies of the container's ends, once it has
// them (so that EOF arrives when the container's side closes).
func (tio *taskIO) closeChildEnds() {
	for i, f := range tio.child {
		if f != nil {
			f.Close()
			tio.child[i] = nil
		}
	}
	if tio.consoleSock != nil {
		tio.consoleSock.Close()
		tio.consoleSock = nil
	}
	if tio.consoleParent != nil && tio.console == nil {
		master, err := runtime.RecvFd(tio.consoleParent)
		if err == nil {
			tio.console = master
		}
	}
	if tio.consoleParent != nil {
		tio.consoleParent.Close()
		tio.consoleParent = nil
	}
}

func (tio *taskIO) closeAll() {
	for _, f := range []*os.File{tio.stdin, tio.outR, tio.errR, tio.console} {
		if f != nil {
			f.Close()
		}
	}
	if tio.log != nil {
		tio.log.Close()
	}
}

// startCopy copies the container's output into its log and to t's
// attached clients until the container's side closes.
func (tio *taskIO) startCopy(t *task) {
	type stream struct {
		r    *os.File
		name string
		typ  byte
	}
	streams := []stream{{tio.outR, "stdout", monitor.FrameStdout}, {tio.errR, "stderr", monitor.FrameStderr}}
	if tio.console != nil {
		streams = []stream{{tio.console, "stdout", monitor.FrameStdout}}
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		var w io.Writer
		if tio.log != nil {
			w = tio.log.Stream(s.name)
		}
		t.copiers.Add(1)
		wg.Add(1)
		go func() {
			defer t.copiers.Done()
			defer wg.Done()
			// Small buffers: an idle container's copier holds one.
			buf := make([]byte, 4096)
			for {
				n, err := s.r.Read(buf)
				if n > 0 {
					if w != nil {
						_, _ = w.Write(buf[:n])
					}
					t.broadcast(s.typ, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		if tio.outR != nil {
			tio.outR.Close()
			tio.errR.Close()
		}
		if tio.log != nil {
			tio.log.Close()
		}
	}()
}

func setWinsize(f *os.File, w, h uint16) error {
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: w, Row: h})
}

func parseJSON(data []byte, v any) error { return json.Unmarshal(data, v) }
