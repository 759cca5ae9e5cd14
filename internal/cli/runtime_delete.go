package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/errdefs"
)

func runtimeDeleteCmd(o *runtimeOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] CONTAINER_ID",
		Short: "Delete a container and what it holds",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				// runc: deleting a missing container with --force succeeds.
				if force && errdefs.Is(err, errdefs.KindNotFound) {
					return nil
				}
				return err
			}
			return c.Delete(force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container if it is still running")
	return cmd
}
