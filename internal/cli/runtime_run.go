package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/runtime"
)

func runtimeRunCmd(o *runtimeOptions) *cobra.Command {
	var f createFlags
	var detach, keep, noSubreaper bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "Create and start a container, and wait for it unless --detach",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := o.runtime().Run(runtime.RunOptions{
				CreateOptions: f.options(args[0]),
				Detach:        detach,
				Keep:          keep,
				NoSubreaper:   noSubreaper,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	cmd.Flags().BoolVar(&noSubreaper, "no-subreaper", false, "disable the use of the subreaper used to reap reparented processes")
	return cmd
}
