package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// RunOptions are runc run's flags.
type RunOptions struct {
	CreateOptions
	Detach      bool
	Keep        bool
	NoSubreaper bool
}

// Run creates and starts a container; unless detached it forwards signals,
// waits for the container's init and deletes the container, returning the
// exit code.
func (r *Runtime) Run(opts RunOptions) (int, error) {
	if !opts.Detach && !opts.NoSubreaper {
		if err := SetSubreaper(); err != nil {
			return -1, err
		}
	}
	var forward func(int)
	if !opts.Detach {
		forward = ForwardSignals()
	}
	var relay *ConsoleRelay
	if !opts.Detach && opts.ConsoleSocket == "" && opts.Console == nil {
		// Whether a relay is needed depends on process.terminal: Create
		// asks for one only then.
		opts.newRelay = func() (*os.File, error) {
			var err error
			if relay, err = NewConsoleRelay(); err != nil {
				return nil, err
			}
			return relay.Child, nil
		}
	}
	c, err := r.Create(opts.CreateOptions)
	if relay != nil && err != nil {
		relay.Close()
	}
	if err != nil {
		return -1, err
	}
	if relay != nil {
		if err := relay.Start(); err != nil {
			_ = c.Delete(true)
			return -1, err
		}
		defer relay.Close()
	}
	if forward != nil {
		forward(c.Pid)
	}
	if err := c.Start(); err != nil {
		_ = c.Delete(true)
		return -1, err
	}
	if opts.Detach {
		return 0, nil
	}
	code, err := WaitPid(c.Pid)
	if err != nil {
		return -1, err
	}
	if !opts.Keep {
		if err := c.Delete(true); err != nil {
			return code, fmt.Errorf("delete %s: %w", c.ID, err)
		}
	}
	return code, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
