// Package cli is berth's command tree: each command parses its flags, calls
// one function of the engine or the runtime, and prints the result.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "0.1.0-dev"

// Defaults of the engine's global flags.
const (
	defaultRoot    = "/var/lib/berth"
	defaultRunRoot = "/run/berth"
)

// globalOptions are the flags every engine command shares.
type globalOptions struct {
	root          string
	runRoot       string
	storageDriver string
	insecure      []string
}

// Main runs the engine face with args (without the program name) and
// returns the exit code.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "runtime" {
		return RuntimeMain(args[1:])
	}
	var g globalOptions
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A daemonless container engine",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.root, "root", envOr("BERTH_ROOT", defaultRoot), "persistent data directory (env BERTH_ROOT)")
	root.PersistentFlags().StringVar(&g.runRoot, "runroot", envOr("BERTH_RUNROOT", defaultRunRoot), "runtime state directory (env BERTH_RUNROOT)")
	root.PersistentFlags().StringVar(&g.storageDriver, "storage-driver", os.Getenv("BERTH_STORAGE_DRIVER"),
		"storage driver for a new root: overlay, btrfs or vfs (env BERTH_STORAGE_DRIVER)")
	root.PersistentFlags().StringSliceVar(&g.insecure, "insecure-registry", envList("BERTH_INSECURE_REGISTRIES"),
		"registries reached over plain HTTP or unverified TLS (env BERTH_INSECURE_REGISTRIES)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &statusError{code: 125, msg: fmt.Sprintf("%v\nSee '%s --help'.", err, cmd.CommandPath())}
	})
	addImageCommands(root, &g)
	addContainerCommands(root, &g)
	root.AddCommand(volumeCmd(&g))
	root.AddCommand(networkCmd(&g))
	root.AddCommand(&cobra.Command{
		Use:                "runtime",
		Short:              "The OCI runtime, with runc's command line",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Handled above; reached only through "berth --root X runtime".
			os.Exit(RuntimeMain(args))
			return nil
		},
	})
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	return exitCode(root.ExecuteContext(ctx), "berth", true)
}

func envList(key string) []string {
	var out []string
	for _, v := range strings.Split(os.Getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// exitError carries an exit code chosen by a command (a container's own,
// or 1 after a command printed its errors itself).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// statusError is an error printed as msg, exiting with code: docker's 125
// for bad flags (and, later, for run's and create's own failures).
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// exitCode prints err and picks the exit code. The engine prints errors as
// docker's CLI does ("Error: ...") and exits 1, or 125 for bad flags; the
// runtime prints them as runc does and exits 1.
func exitCode(err error, prog string, engine bool) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var se *statusError
	if errors.As(err, &se) {
		fmt.Fprintln(os.Stderr, se.msg)
		return se.code
	}
	if engine {
		if errors.Is(err, context.Canceled) {
			return 130
		}
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	return 1
}
