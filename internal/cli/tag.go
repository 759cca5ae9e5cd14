package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

func tagCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactlyArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				return s.Tag(cmd.Context(), args[0], args[1])
			})
		},
	}
}
