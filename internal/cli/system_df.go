package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

func systemCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage berth", Args: cobra.ArbitraryArgs, RunE: group}
	cmd.AddCommand(systemDFCmd(g), infoCmd(g, "info"))
	return cmd
}

const dfTable = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

func dfHeader() map[string]string {
	return map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
}

const dfImagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}"

func systemDFCmd(g *globalOptions) *cobra.Command {
	var verbose bool
	var format string
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				du, err := s.SystemDF(cmd.Context())
				if err != nil {
					return err
				}
				if verbose && format == "" {
					return printDFVerbose(du)
				}
				out, err := newRows(os.Stdout, format, dfTable, dfHeader())
				if err != nil {
					return err
				}
				reclaim := humanSize4(du.Reclaimable)
				if du.LayersSize > 0 {
					reclaim = fmt.Sprintf("%s (%d%%)", reclaim, du.Reclaimable*100/du.LayersSize)
				}
				for _, rec := range []map[string]string{
					{"Type": "Images", "TotalCount": strconv.Itoa(len(du.Images)), "Active": strconv.Itoa(du.Active),
						"Size": humanSize4(du.LayersSize), "Reclaimable": reclaim},
					{"Type": "Containers", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
					{"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
					{"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
				} {
					if err := out.add(rec); err != nil {
						return err
					}
				}
				return out.flush()
			})
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return cmd
}

func printDFVerbose(du engine.DiskUsage) error {
	fmt.Print("Images space usage:\n\n")
	out, err := newRows(os.Stdout, dfImagesTable, "", imagesHeader())
	if err != nil {
		return err
	}
	for _, u := range du.Images {
		for _, rec := range imageRows(u.ImageSummary, false, true) {
			rec["SharedSize"] = humanSize4(u.SharedSize)
			rec["UniqueSize"] = humanSize4(u.UniqueSize)
			rec["Containers"] = strconv.Itoa(u.Containers)
			if err := out.add(rec); err != nil {
				return err
			}
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	fmt.Print("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n")
	fmt.Print("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n")
	fmt.Print("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n")
	return nil
}
