// Package tini is berth-init, the minimal init that `berth run --init` puts
// at PID 1 of a container (docker's --init runs tini as docker-init): it
// starts the command as its child, forwards signals to it, reaps every
// zombie in the PID namespace, and exits with the command's exit code.
//
// The berth binary acts as berth-init when started under that name (the
// engine bind-mounts it at /sbin/berth-init). It stays resident in every
// such container, so the package does no work at init and keeps its
// dependencies to the standard library and golang.org/x/sys.
package tini

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
)

// options are berth-init's command line, tini's flags.
type options struct {
	group     bool           // -g: signal the child's process group, not just the child
	subreaper bool           // -s: become a child subreaper (for use when not PID 1)
	pdeathsig syscall.Signal // -p: signal to receive when the parent dies; 0 for none
	remap     []int          // -e: child exit codes that count as success
	cmd       []string       // the program and its arguments
}

// errHelp asks for the usage on stdout and a zero exit.
var errHelp = errors.New("help requested")

// parseArgs reads tini's options up to "--" or the first argument that is
// not an option, the way POSIX getopt does, so `berth-init -- cmd -x` and
// `berth-init cmd -x` both run `cmd -x`. Environment variables tini reads
// (TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP) turn on the matching flags.
// sigNum resolves -p's signal name; it is passed in so this stays portable.
func parseArgs(args []string, getenv func(string) string, sigNum func(string) syscall.Signal) (options, error) {
	var o options
	o.subreaper = getenv("TINI_SUBREAPER") != ""
	o.group = getenv("TINI_KILL_PROCESS_GROUP") != ""
	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			break
		}
		// Flags may be grouped (-gv); a flag with a value takes the
		// rest of the word (-e3) or the next argument (-e 3).
		for j := 1; j < len(arg); j++ {
			switch c := arg[j]; c {
			case 'g':
				o.group = true
			case 's':
				o.subreaper = true
			case 'v', 'w':
				// Verbosity and zombie warnings: accepted, nothing to show.
			case 'h':
				return o, errHelp
			case 'e', 'p':
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return o, fmt.Errorf("option -%c needs a value", c)
					}
					i++
					val = args[i]
				}
				if err := o.set(c, val, sigNum); err != nil {
					return o, err
				}
				j = len(arg)
			default:
				return o, fmt.Errorf("unknown option -%c", c)
			}
		}
	}
	o.cmd = args[i:]
	if len(o.cmd) == 0 {
		return o, errors.New("no program to run")
	}
	return o, nil
}

func (o *options) set(flag byte, val string, sigNum func(string) syscall.Signal) error {
	if flag == 'e' {
		code, err := strconv.Atoi(val)
		if err != nil || code < 0 || code > 255 {
			return fmt.Errorf("invalid exit code %q for -e: want a number from 0 to 255", val)
		}
		o.remap = append(o.remap, code)
		return nil
	}
	if n, err := strconv.Atoi(val); err == nil && n > 0 && n < 65 {
		o.pdeathsig = syscall.Signal(n)
		return nil
	}
	name := strings.ToUpper(val)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if s := sigNum(name); s != 0 {
		o.pdeathsig = s
		return nil
	}
	return fmt.Errorf("invalid signal %q for -p", val)
}

// exitCode is what berth-init exits with once the child has ended: its exit
// status, 128+N when signal N killed it, and 0 for codes given with -e.
func (o *options) exitCode(exited bool, status int, signal syscall.Signal) int {
	code := status
	if !exited {
		code = 128 + int(signal)
	}
	for _, c := range o.remap {
		if c == code {
			return 0
		}
	}
	return code
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: berth-init [OPTIONS] [--] PROGRAM [ARGS...]

Runs PROGRAM as its child, forwards the signals it receives to PROGRAM,
reaps orphaned processes, and exits with PROGRAM's exit code.

Options:
  -g            Send signals to PROGRAM's process group, not only to PROGRAM
  -s            Register as a child subreaper (needed only when not PID 1)
  -p SIGNAL     Receive SIGNAL when the parent process dies
  -e EXIT_CODE  Exit with 0 when PROGRAM exits with EXIT_CODE (repeatable)
  -v, -w        Accepted for compatibility with tini; no effect
  -h            Show this help
`)
}
