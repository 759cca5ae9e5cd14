// Package cli is berth's command tree: each command parses its flags, calls
// one function of the engine or the runtime, and prints the result.
package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
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
	root    string
	runRoot string
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
	return exitCode(root.Execute(), "berth", true)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// exitError carries an exit code chosen by a command (a container's own).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode prints err and picks the exit code: docker's 125 for the
// engine's own errors, runc's 1 for the runtime's.
func exitCode(err error, prog string, engine bool) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	if engine {
		return 125
	}
	return 1
}
