package cli

import (
	"fmt"
	"io"
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

func pullCmd(g *globalOptions) *cobra.Command {
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := image.ParseReference(args[0])
			if err != nil {
				return err
			}
			var p *ocispec.Platform
			if platform != "" {
				pl, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				p = &pl
			}
			var w io.Writer = os.Stdout
			if quiet {
				w = io.Discard
			}
			pr := registry.NewPrinter(w, !quiet && registry.IsTerminal(os.Stdout))
			defer pr.Close()
			return g.withImages(func(s *engine.Images) error {
				pr.Pulling(ref)
				res, err := s.Pull(cmd.Context(), args[0], engine.PullOptions{Platform: p, Progress: pr})
				if err != nil {
					pr.Close()
					return err
				}
				pr.PullDone(res.PullResult, res.Newer)
				if quiet {
					fmt.Println(res.Reference.String())
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolP("all-tags", "a", false, "Download all tagged images in the repository (not supported)")
	_ = cmd.Flags().MarkHidden("all-tags")
	return cmd
}
