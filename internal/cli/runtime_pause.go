package cli

import "github.com/spf13/cobra"

func runtimePauseCmd(o *runtimeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER_ID",
		Short: "Freeze every process of a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func runtimeResumeCmd(o *runtimeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "resume CONTAINER_ID",
		Short: "Thaw a paused container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}
