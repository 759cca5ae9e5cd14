package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/runtime"
)

// runtimeOptions are runc's global flags.
type runtimeOptions struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
}

func (o *runtimeOptions) runtime() *runtime.Runtime {
	return &runtime.Runtime{Root: o.root, SystemdCgroup: o.systemdCgroup}
}

func (o *runtimeOptions) load(id string) (*runtime.Container, error) {
	return o.runtime().Load(id)
}

// RuntimeMain runs the OCI runtime face (runc's command line) with args and
// returns the exit code.
func RuntimeMain(args []string) int {
	var o runtimeOptions
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "berth's OCI runtime, with runc's command line",
		Version:       Version + "\nspec: 1.3.0",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&o.root, "root", runtime.DefaultRoot, "root directory for storage of container state")
	f.StringVar(&o.log, "log", "", "file to write errors and debug output to")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&o.debug, "debug", false, "enable debug logging")
	f.BoolVar(&o.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is slice:prefix:name, as systemd names it")
	f.String("criu", "criu", "path to criu (accepted for compatibility)")
	f.String("rootless", "auto", "ignore cgroup permission errors (accepted for compatibility)")
	root.AddCommand(
		runtimeSpecCmd(), runtimeCreateCmd(&o), runtimeStartCmd(&o), runtimeRunCmd(&o),
		runtimeStateCmd(&o), runtimeListCmd(&o), runtimeKillCmd(&o), runtimeDeleteCmd(&o),
		runtimeExecCmd(&o), runtimePsCmd(&o), runtimePauseCmd(&o), runtimeResumeCmd(&o),
		runtimeUpdateCmd(&o), runtimeEventsCmd(&o), runtimeFeaturesCmd(),
	)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil && o.log != "" {
		o.logError(err)
	}
	return exitCode(err, "berth-runtime", false)
}

// logError appends err to --log in the format containerd's shim parses.
func (o *runtimeOptions) logError(err error) {
	f, ferr := os.OpenFile(o.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if o.logFormat == "json" {
		line, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(), "time": now})
		fmt.Fprintf(f, "%s\n", line)
		return
	}
	fmt.Fprintf(f, "time=%q level=error msg=%q\n", now, err.Error())
}

// stdio returns the process's own stdin, stdout and stderr, which the
// container inherits as they are.
func stdio() [3]*os.File { return [3]*os.File{os.Stdin, os.Stdout, os.Stderr} }

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s): %s", cmd.CommandPath(), n, names)
		}
		return nil
	}
}

func bundleDefault() string {
	wd, _ := os.Getwd()
	return wd
}

func absOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}
