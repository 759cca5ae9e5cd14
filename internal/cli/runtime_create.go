package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/runtime"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle        string
	consoleSocket string
	pidFile       string
	noPivot       bool
	preserveFDs   int
}

func (f *createFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", "", "path to the root of the bundle directory, defaults to the current directory")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	fl.StringVar(&f.pidFile, "pid-file", "", "file to write the process id to")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "do not use pivot_root to jail the process (for ramfs roots)")
	fl.Bool("no-new-keyring", false, "do not create a new session keyring (berth never does)")
	fl.IntVar(&f.preserveFDs, "preserve-fds", 0, "pass N additional file descriptors (from 3) to the container")
}

func (f *createFlags) options(id string) runtime.CreateOptions {
	bundle := f.bundle
	if bundle == "" {
		bundle = bundleDefault()
	}
	return runtime.CreateOptions{
		ID: id, Bundle: bundle, ConsoleSocket: absOrEmpty(f.consoleSocket), PidFile: f.pidFile,
		NoPivot: f.noPivot, PreserveFDs: f.preserveFDs, Stdio: stdio(),
	}
}

func runtimeCreateCmd(o *runtimeOptions) *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "Create a container, ready for start",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := o.runtime().Create(f.options(args[0]))
			return err
		},
	}
	f.register(cmd)
	return cmd
}
