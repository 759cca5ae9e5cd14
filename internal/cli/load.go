package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
)

func loadCmd(g *globalOptions) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				ctx := cmd.Context()
				var loaded []engine.Loaded
				var err error
				if input == "" {
					if registry.IsTerminal(os.Stdin) {
						return errdefs.InvalidArgument(errors.New("requested load from stdin, but stdin is empty"))
					}
					loaded, err = s.Load(ctx, os.Stdin)
				} else if fi, serr := os.Stat(input); serr == nil && fi.IsDir() {
					loaded, err = s.LoadDir(ctx, input)
				} else {
					var f *os.File
					if f, err = os.Open(input); err != nil {
						return err
					}
					defer f.Close()
					loaded, err = s.Load(ctx, io.Reader(f))
				}
				for _, l := range loaded {
					if l.Replaced != "" {
						fmt.Printf("The image %s already exists, renaming the old one with ID %s to empty string\n", l.Name, l.Replaced)
					}
					if l.Name != "" {
						fmt.Printf("Loaded image: %s\n", l.Name)
					} else {
						fmt.Printf("Loaded image ID: %s\n", l.ID)
					}
				}
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file (or OCI layout directory), instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}
