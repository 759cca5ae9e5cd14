package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/registry"
)

func logoutCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%q requires at most 1 argument.\nSee '%s --help'.", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			server, shown := registry.DockerHubHost, "https://index.docker.io/v1/"
			if len(args) == 1 {
				server, shown = args[0], args[0]
			}
			err := registry.Logout(server, registry.DefaultAuthFile())
			if errors.Is(err, registry.ErrNotLoggedIn) {
				fmt.Printf("Not logged in to %s\n", shown)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Printf("Removing login credentials for %s\n", shown)
			return nil
		},
	}
}
