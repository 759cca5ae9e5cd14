package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

func pushCmd(g *globalOptions) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := image.ParseReference(args[0])
			if err != nil {
				return err
			}
			var w io.Writer = os.Stdout
			if quiet {
				w = io.Discard
			}
			pr := registry.NewPrinter(w, !quiet && registry.IsTerminal(os.Stdout))
			defer pr.Close()
			return g.withImages(func(s *engine.Images) error {
				pr.Pushing(ref)
				res, err := s.Push(cmd.Context(), args[0], pr)
				if err != nil {
					pr.Close()
					return err
				}
				pr.PushDone(res)
				if quiet {
					fmt.Println(res.Reference.String())
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}
