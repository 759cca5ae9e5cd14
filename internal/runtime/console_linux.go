package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// ConsoleRelay serves a terminal container started from an interactive
// shell without --console-socket: it receives the pty master itself and
// copies between it and our own stdio, with our terminal in raw mode.
type ConsoleRelay struct {
	parent *os.File
	// Child is the socket end to pass as CreateOptions.Console.
	Child   *os.File
	master  *os.File
	restore func()
	done    chan struct{}
}

// NewConsoleRelay makes the socket pair.
func NewConsoleRelay() (*ConsoleRelay, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &ConsoleRelay{parent: os.NewFile(uintptr(fds[0]), "console-parent"), Child: os.NewFile(uintptr(fds[1]), "console-child"), done: make(chan struct{})}, nil
}

// Start receives the master (sent while the container was created) and
// begins copying. Call it once the process is ready.
func (r *ConsoleRelay) Start() error {
	r.Child.Close()
	master, err := RecvFd(r.parent)
	if err != nil {
		return fmt.Errorf("receive pty master: %w", err)
	}
	r.master = master
	if restore, err := MakeRaw(0); err == nil {
		r.restore = restore
		r.resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				r.resize()
			}
		}()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(r.done)
	}()
	return nil
}

func (r *ConsoleRelay) resize() {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// Close waits briefly for the last output and restores the terminal.
func (r *ConsoleRelay) Close() {
	if r.master != nil {
		<-r.done
		r.master.Close()
	}
	if r.restore != nil {
		r.restore()
	}
	r.parent.Close()
}

// RecvFd reads one fd passed with SCM_RIGHTS over a unix socket.
func RecvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		return nil, errors.New("expected one control message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("expected one fd")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// MakeRaw puts the terminal on fd in raw mode, as cfmakeraw(3) does, and
// returns how to put it back (safe to call more than once).
func MakeRaw(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }) }, nil
}
