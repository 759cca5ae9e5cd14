package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/errdefs"
)

func runtimeUpdateCmd(o *runtimeOptions) *cobra.Command {
	var resources string
	var memory, memoryReservation, memorySwap, cpuQuota, pidsLimit int64
	var cpuPeriod, cpuShares uint64
	var blkioWeight uint16
	var cpusetCpus, cpusetMems string
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "Change the resource limits of a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			res := &specs.LinuxResources{}
			if resources != "" {
				var r io.Reader = os.Stdin
				if resources != "-" {
					f, err := os.Open(resources)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				if err := json.NewDecoder(r).Decode(res); err != nil {
					return errdefs.InvalidArgument(fmt.Errorf("--resources: %w", err))
				}
			}
			fl := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if res.Memory == nil {
					res.Memory = &specs.LinuxMemory{}
				}
				return res.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if res.CPU == nil {
					res.CPU = &specs.LinuxCPU{}
				}
				return res.CPU
			}
			if fl.Changed("memory") {
				mem().Limit = &memory
			}
			if fl.Changed("memory-reservation") {
				mem().Reservation = &memoryReservation
			}
			if fl.Changed("memory-swap") {
				mem().Swap = &memorySwap
			}
			if fl.Changed("cpu-quota") {
				cpu().Quota = &cpuQuota
			}
			if fl.Changed("cpu-period") {
				cpu().Period = &cpuPeriod
			}
			if fl.Changed("cpu-share") {
				cpu().Shares = &cpuShares
			}
			if fl.Changed("cpuset-cpus") {
				cpu().Cpus = cpusetCpus
			}
			if fl.Changed("cpuset-mems") {
				cpu().Mems = cpusetMems
			}
			if fl.Changed("pids-limit") {
				res.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if fl.Changed("blkio-weight") {
				res.BlockIO = &specs.LinuxBlockIO{Weight: &blkioWeight}
			}
			return c.Update(res)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&resources, "resources", "r", "", "path to a JSON file of linux.resources to apply, - for stdin")
	fl.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	fl.Int64Var(&memoryReservation, "memory-reservation", 0, "memory reservation (soft limit) in bytes")
	fl.Int64Var(&memorySwap, "memory-swap", 0, "memory plus swap limit in bytes, -1 for unlimited")
	fl.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	fl.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	fl.Uint64Var(&cpuShares, "cpu-share", 0, "CPU shares (relative weight)")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes in which to allow execution")
	fl.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of pids, -1 for unlimited")
	fl.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO weight, 10 to 1000")
	fl.Int64("kernel-memory", 0, "ignored (no kernel memory accounting)")
	return cmd
}
