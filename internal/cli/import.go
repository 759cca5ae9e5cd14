package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func importCmd(g *globalOptions) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires at least 1 and at most 2 arguments.\nSee '%s --help'.", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := engine.ImportOptions{Changes: changes, Message: message}
			if len(args) == 2 {
				opts.Reference = args[1]
			}
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			var r io.Reader
			switch src := args[0]; {
			case src == "-":
				r = os.Stdin
			case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
				return errdefs.NotImplemented(errors.New("importing from a URL is not supported: download the file and import it, or pipe it to 'berth import -'"))
			default:
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			return g.withImages(func(s *engine.Images) error {
				img, err := s.Import(cmd.Context(), r, opts)
				if err != nil {
					return err
				}
				fmt.Println(img.ID)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	fl.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}
