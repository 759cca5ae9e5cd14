package cli

import (
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/runtime"
)

// runcState is the JSON runc prints for state and list --format json.
type runcState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func stateOf(c *runtime.Container) runcState {
	st := c.OCIState()
	return runcState{
		OCIVersion: st.Version, ID: c.ID, Pid: st.Pid, Status: string(st.Status), Bundle: c.Bundle,
		Rootfs: c.Rootfs, Created: c.Created, Owner: c.Owner, Annotations: c.Annotations,
	}
}

func runtimeStateCmd(o *runtimeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER_ID",
		Short: "Print the state of a container as JSON",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			data, err := json.MarshalIndent(stateOf(c), "", "  ")
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(append(data, '\n'))
			return err
		},
	}
}
