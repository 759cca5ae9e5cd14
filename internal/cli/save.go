package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
)

func saveCmd(g *globalOptions) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  requiresArgs(1, "image"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				ctx := cmd.Context()
				if output == "" {
					if registry.IsTerminal(os.Stdout) {
						return errdefs.InvalidArgument(errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect"))
					}
					return s.Save(ctx, args, os.Stdout, format)
				}
				if fi, err := os.Stat(output); (err == nil && fi.IsDir()) || strings.HasSuffix(output, "/") || format == "oci-dir" {
					return s.SaveDir(ctx, args, output, format)
				}
				// Written beside, then renamed: no half archive under the name.
				tmp, err := os.CreateTemp(filepath.Dir(output), ".berth-save-")
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				if err := s.Save(ctx, args, tmp, format); err != nil {
					tmp.Close()
					return err
				}
				if err := tmp.Close(); err != nil {
					return err
				}
				if err := os.Chmod(tmp.Name(), 0o644); err != nil {
					return err
				}
				return os.Rename(tmp.Name(), output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file (or, for --format oci, a directory), instead of STDOUT")
	cmd.Flags().StringVar(&format, "format", engine.FormatDocker, "Archive format: docker (docker-archive, for docker load) or oci (OCI image layout)")
	return cmd
}
