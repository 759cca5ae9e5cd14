package cli

import (
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/linux/cgroups"
)

// runcEvent is the envelope runc's events prints.
type runcEvent struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Data *cgroups.Stats `json:"data,omitempty"`
}

func runtimeEventsCmd(o *runtimeOptions) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] CONTAINER_ID",
		Short: "Print container usage statistics, once or every --interval",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			var lastOOM uint64
			for {
				st, err := c.Stats()
				if err != nil {
					return err
				}
				if err := enc.Encode(runcEvent{Type: "stats", ID: c.ID, Data: st}); err != nil {
					return err
				}
				if stats {
					return nil
				}
				if st.Memory.OOMKills > lastOOM {
					lastOOM = st.Memory.OOMKills
					_ = enc.Encode(runcEvent{Type: "oom", ID: c.ID})
				}
				time.Sleep(interval)
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "interval between statistics")
	return cmd
}
