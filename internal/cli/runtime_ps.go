package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func runtimePsCmd(o *runtimeOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] CONTAINER_ID [ps options]",
		Short: "Show the processes running in a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			pids, err := c.Processes()
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			}
			if format != "table" {
				return fmt.Errorf("invalid --format %q: table or json", format)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("run ps: %w", err)
			}
			return printPsRows(out, pids)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// printPsRows prints ps's header and the rows whose PID column is one of pids.
func printPsRows(out []byte, pids []int) error {
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return nil
	}
	header := sc.Text()
	col := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	fmt.Println(header)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= col {
			continue
		}
		if p, err := strconv.Atoi(fields[col]); err == nil && in[p] {
			fmt.Println(sc.Text())
		}
	}
	return nil
}
