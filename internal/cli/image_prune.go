package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

func imagePruneCmd(g *globalOptions) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParseImageFilters(filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !confirm(warning) {
				return nil
			}
			return g.withImages(func(s *engine.Images) error {
				res, err := s.Prune(cmd.Context(), engine.PruneOptions{All: all, Filters: f})
				if len(res.Untagged) > 0 || len(res.Deleted) > 0 {
					fmt.Println("Deleted Images:")
					for _, u := range res.Untagged {
						fmt.Printf("untagged: %s\n", u)
					}
					for _, d := range res.Deleted {
						fmt.Printf("deleted: %s\n", d)
					}
					fmt.Println()
				}
				fmt.Printf("Total reclaimed space: %s\n", humanSize(res.SpaceReclaimed))
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<key>=<value>\")")
	return cmd
}

// confirm asks docker's question on stdin; anything but y or yes is no.
func confirm(warning string) bool {
	fmt.Printf("%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}
