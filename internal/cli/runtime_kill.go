package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime"
)

func runtimeKillCmd(o *runtimeOptions) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "Send a signal (default SIGTERM) to the container's init",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires a container id and optionally a signal", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = runtime.ParseSignal(args[1]); err != nil {
					return err
				}
			}
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			return c.Kill(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to all processes in the container")
	return cmd
}
