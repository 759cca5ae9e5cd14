package cli

import "github.com/spf13/cobra"

func runtimeStartCmd(o *runtimeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "Run the user process of a created container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			return c.Start()
		},
	}
}
