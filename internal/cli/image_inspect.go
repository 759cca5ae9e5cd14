package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
)

func imageInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  requiresArgs(1, "image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.inspectImages(cmd, args, format, "image")
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

// inspectCmd is `berth inspect`: images for now; containers come with the
// engine's containers.
func inspectCmd(g *globalOptions) *cobra.Command {
	var format, typ string
	var size, isolation bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  requiresArgs(1, "object"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if isolation {
				if typ != "" && typ != "container" {
					return errdefs.InvalidArgument(fmt.Errorf("--isolation applies to containers, not to --type %s", typ))
				}
				return g.withEngine(func(e *engine.Engine) error {
					return inspectIsolation(e, cmd, args, format)
				})
			}
			switch typ {
			case "image":
				return g.inspectImages(cmd, args, format, "image")
			case "container":
				return g.withEngine(func(e *engine.Engine) error {
					return inspectObjects(e, cmd, args, format, size, "container", false)
				})
			case "":
				return g.withEngine(func(e *engine.Engine) error {
					return inspectObjects(e, cmd, args, format, size, "object", true)
				})
			default:
				return errdefs.InvalidArgument(fmt.Errorf("%q is not a valid value for --type", typ))
			}
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	isolationFlag(cmd, &isolation)
	return cmd
}

// inspectImages prints docker's inspect JSON array (or a template per
// image), then an error line per name not found.
func (g *globalOptions) inspectImages(cmd *cobra.Command, names []string, format, noun string) error {
	return g.withImages(func(s *engine.Images) error {
		var found []*engine.ImageInspect
		var errs []string
		for _, n := range names {
			v, err := s.Inspect(cmd.Context(), n)
			if errdefs.Is(err, errdefs.KindNotFound) {
				errs = append(errs, fmt.Sprintf("No such %s: %s", noun, n))
				continue
			}
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			found = append(found, v)
		}
		if format != "" {
			for _, v := range found {
				if err := executeTemplate(os.Stdout, format, v); err != nil {
					return err
				}
			}
		} else {
			if found == nil {
				found = []*engine.ImageInspect{}
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "    ")
			if err := enc.Encode(found); err != nil {
				return err
			}
			os.Stdout.Write(buf.Bytes())
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
		return nil
	})
}
