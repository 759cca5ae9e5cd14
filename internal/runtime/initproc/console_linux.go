package initproc

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// setupConsole makes a pty in the container's devpts, hands the master to
// whoever listens on the console socket, and makes the slave our stdio and
// controlling terminal.
func setupConsole(cfg *Config) error {
	if cfg.ConsoleFD < 0 {
		return errors.New("process.terminal: true, but no console socket was given (--console-socket)")
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open /dev/ptmx: %w", err)
	}
	defer unix.Close(master)
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("process.terminal: unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("process.terminal: pty number: %w", err)
	}
	slavePath := fmt.Sprintf("/dev/pts/%d", n)
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("process.terminal: open %s: %w", slavePath, err)
	}
	defer unix.Close(slave)
	if sz := cfg.Spec.Process.ConsoleSize; sz != nil {
		ws := &unix.Winsize{Row: uint16(sz.Height), Col: uint16(sz.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("process.consoleSize: %w", err)
		}
	}
	if err := unix.Sendmsg(cfg.ConsoleFD, []byte("/dev/ptmx"), unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("send pty to console socket: %w", err)
	}
	unix.Close(cfg.ConsoleFD)
	if cfg.Mode == ModeInit {
		// /dev/console is the container's terminal too.
		if err := createMountpoint("/", "/dev/console", false); err == nil {
			if err := unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s to /dev/console: %w", slavePath, err)
			}
		}
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return err
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("process.terminal: make %s the controlling terminal: %w", slavePath, err)
	}
	return nil
}
