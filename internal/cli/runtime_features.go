package cli

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/runtime"
)

func runtimeFeaturesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "Print what this runtime supports, as JSON (runtime-spec features.md)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(runtime.Features())
		},
	}
}
