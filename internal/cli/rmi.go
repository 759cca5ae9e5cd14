package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

func rmiCmd(g *globalOptions, use string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] IMAGE [IMAGE...]",
		Aliases: aliases(use, "rm", "remove"),
		Short:   "Remove one or more images",
		Args:    requiresArgs(1, "image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				failed := false
				for _, name := range args {
					res, err := s.Remove(cmd.Context(), name, force)
					for _, u := range res.Untagged {
						fmt.Printf("Untagged: %s\n", u)
					}
					for _, d := range res.Deleted {
						fmt.Printf("Deleted: %s\n", d)
					}
					if err != nil {
						fmt.Fprintf(os.Stderr, "Error: %v\n", err)
						failed = true
					}
				}
				if failed {
					return &exitError{code: 1}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().Bool("no-prune", false, "Do not delete untagged parents")
	return cmd
}
