package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// minMemory is the smallest memory limit docker accepts.
const minMemory = 6 << 20

// cpuPeriod is the CFS period that --cpus is expressed in (100 ms).
const cpuPeriod = 100000

// resources turns docker's resource options into linux.resources (without
// the device rules), refusing what docker refuses, with docker's words.
// numCPU is how many CPUs the host gives us.
func resources(r *container.Resources, numCPU int) (*specs.LinuxResources, error) {
	if err := checkResources(r, numCPU); err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	out := &specs.LinuxResources{}

	var mem specs.LinuxMemory
	memSet := false
	if r.Memory != 0 {
		v := r.Memory
		mem.Limit, memSet = &v, true
	}
	if r.MemoryReservation != 0 {
		v := r.MemoryReservation
		mem.Reservation, memSet = &v, true
	}
	swap := r.MemorySwap
	if r.Memory > 0 && swap == 0 {
		// Docker's default: as much swap as memory.
		swap = 2 * r.Memory
	}
	if swap != 0 {
		mem.Swap, memSet = &swap, true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		v := uint64(*r.MemorySwappiness)
		mem.Swappiness, memSet = &v, true
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		mem.DisableOOMKiller, memSet = &v, true
	}
	if memSet {
		out.Memory = &mem
	}

	var cpu specs.LinuxCPU
	cpuSet := false
	if r.CPUShares > 0 {
		v := uint64(r.CPUShares)
		cpu.Shares, cpuSet = &v, true
	}
	if r.NanoCPUs > 0 {
		period := uint64(cpuPeriod)
		quota := r.NanoCPUs * cpuPeriod / 1e9
		cpu.Period, cpu.Quota, cpuSet = &period, &quota, true
	}
	if r.CPUPeriod != 0 {
		v := uint64(r.CPUPeriod)
		cpu.Period, cpuSet = &v, true
	}
	if r.CPUQuota != 0 {
		v := r.CPUQuota
		cpu.Quota, cpuSet = &v, true
	}
	if r.CPURealtimePeriod != 0 {
		v := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod, cpuSet = &v, true
	}
	if r.CPURealtimeRuntime != 0 {
		v := r.CPURealtimeRuntime
		cpu.RealtimeRuntime, cpuSet = &v, true
	}
	if r.CpusetCpus != "" {
		cpu.Cpus, cpuSet = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		cpu.Mems, cpuSet = r.CpusetMems, true
	}
	if cpuSet {
		out.CPU = &cpu
	}

	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		// 0 and negative mean unlimited in docker's API: a new cgroup's
		// default. (crun writes a -1 limit to v1's pids.max, which refuses it.)
		v := *r.PidsLimit
		out.Pids = &specs.LinuxPids{Limit: &v}
	}
	if r.BlkioWeight != 0 {
		v := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &v}
	}
	return out, nil
}

// checkResources applies docker's checks, in docker's order.
func checkResources(r *container.Resources, numCPU int) error {
	if r.Memory != 0 && r.Memory < minMemory {
		return errors.New("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory == 0 && r.MemorySwap > 0 {
		return errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	if r.MemoryReservation != 0 && r.MemoryReservation < minMemory {
		return errors.New("Minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation {
		return errors.New("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.NanoCPUs < 0 || r.NanoCPUs > int64(numCPU)*1e9 {
		return fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU, numCPU)
	}
	if r.CPUShares < 0 {
		return fmt.Errorf("invalid CPU shares %d: must not be negative", r.CPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return errors.New("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return errors.New("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if err := checkCPUList(r.CpusetCpus, "cpus"); err != nil {
		return err
	}
	if err := checkCPUList(r.CpusetMems, "mems"); err != nil {
		return err
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return errors.New("Range of blkio weight is from 10 to 1000")
	}
	return nil
}

// checkCPUList checks a cpuset list ("0-2,4") for syntax; the kernel says
// whether the CPUs exist.
func checkCPUList(list, what string) error {
	if list == "" {
		return nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return fmt.Errorf("Invalid value %s for cpuset %s", list, what)
		}
	}
	return nil
}

// rlimits turns --ulimit values into process.rlimits.
func rlimits(ulimits []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		if u == nil {
			continue
		}
		name := strings.ToLower(u.Name)
		if !knownRlimit(name) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid ulimit type: %s", u.Name))
		}
		// -1 is "unlimited": as uint64 it is RLIM_INFINITY, above any limit.
		soft, hard := uint64(u.Soft), uint64(u.Hard)
		if soft > hard {
			return nil, errdefs.InvalidArgument(fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard))
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Hard: hard, Soft: soft})
	}
	return out, nil
}

func knownRlimit(name string) bool {
	switch name {
	case "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
		"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack":
		return true
	}
	return false
}
