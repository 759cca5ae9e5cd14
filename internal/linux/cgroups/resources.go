package cgroups

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Spec field names, as errors name them.
const (
	fieldMemLimit       = "linux.resources.memory.limit"
	fieldMemReservation = "linux.resources.memory.reservation"
	fieldMemSwap        = "linux.resources.memory.swap"
	fieldMemSwappiness  = "linux.resources.memory.swappiness"
	fieldMemOOMKiller   = "linux.resources.memory.disableOOMKiller"
	fieldCPUShares      = "linux.resources.cpu.shares"
	fieldCPUQuota       = "linux.resources.cpu.quota"
	fieldCPUPeriod      = "linux.resources.cpu.period"
	fieldCPUBurst       = "linux.resources.cpu.burst"
	fieldCPURtRuntime   = "linux.resources.cpu.realtimeRuntime"
	fieldCPURtPeriod    = "linux.resources.cpu.realtimePeriod"
	fieldCPUIdle        = "linux.resources.cpu.idle"
	fieldCPUs           = "linux.resources.cpu.cpus"
	fieldMems           = "linux.resources.cpu.mems"
	fieldPids           = "linux.resources.pids.limit"
	fieldBlkWeight      = "linux.resources.blockIO.weight"
	fieldBlkLeafWeight  = "linux.resources.blockIO.leafWeight"
	fieldBlkWeightDev   = "linux.resources.blockIO.weightDevice"
	fieldBlkThrottle    = "linux.resources.blockIO.throttle"
	fieldHugepages      = "linux.resources.hugepageLimits"
	fieldDevices        = "linux.resources.devices"
	fieldNetwork        = "linux.resources.network"
	fieldRdma           = "linux.resources.rdma"
	fieldUnified        = "linux.resources.unified"
)

// Kernel bounds (kernel/sched/core.c, block/blk-cgroup.h).
const (
	pageSize     = 4096
	minShares    = 2
	maxShares    = 262144
	minCFSPeriod = 1000    // µs
	maxCFSPeriod = 1000000 // µs
	minCFSQuota  = 1000    // µs
	minBlkWeight = 10
	maxBlkWeight = 1000
)

// fieldErr is the one-line error for a spec field: "field: msg: errno".
// It wraps cause (usually an errno) and classifies it.
func fieldErr(field, msg string, cause error) error {
	return classify(fmt.Errorf("%s: %s: %w", field, msg, cause), cause)
}

func classify(err, cause error) error {
	switch {
	case errors.Is(cause, syscall.ENOENT):
		return errdefs.Unavailable(err)
	case errors.Is(cause, syscall.EPERM), errors.Is(cause, syscall.EACCES):
		return errdefs.Permission(err)
	case errors.Is(cause, syscall.EINVAL), errors.Is(cause, syscall.EBUSY),
		errors.Is(cause, syscall.ERANGE), errors.Is(cause, syscall.ENOSPC):
		return errdefs.InvalidArgument(err)
	}
	return err
}

func invalid(field, format string, args ...any) error {
	return fieldErr(field, fmt.Sprintf(format, args...), syscall.EINVAL)
}

// validate refuses values no kernel takes, before anything is written.
// Checks that need the host (usage, available CPUs) happen while writing.
func validate(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			if v := *m.Limit; v < -1 {
				return invalid(fieldMemLimit, "%d is negative (use -1 for unlimited)", v)
			} else if v > 0 && v < pageSize {
				return invalid(fieldMemLimit, "%d is below the kernel minimum of %d bytes", v, pageSize)
			}
		}
		if m.Reservation != nil && *m.Reservation < -1 {
			return invalid(fieldMemReservation, "%d is negative (use -1 for unlimited)", *m.Reservation)
		}
		if m.Swap != nil {
			s := *m.Swap
			if s < -1 {
				return invalid(fieldMemSwap, "%d is negative (use -1 for unlimited)", s)
			}
			if m.Limit != nil && *m.Limit > 0 && s > 0 && s < *m.Limit {
				return invalid(fieldMemSwap, "%d is below %s %d (swap counts memory+swap)", s, fieldMemLimit, *m.Limit)
			}
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return invalid(fieldMemSwappiness, "%d is above 100", *m.Swappiness)
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < minShares || *c.Shares > maxShares) {
			return invalid(fieldCPUShares, "%d is outside the kernel range [%d, %d]", int64(*c.Shares), minShares, maxShares)
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < minCFSPeriod || *c.Period > maxCFSPeriod) {
			return invalid(fieldCPUPeriod, "%d is outside the kernel range [%d, %d] µs", *c.Period, minCFSPeriod, maxCFSPeriod)
		}
		if c.Quota != nil {
			if q := *c.Quota; q < -1 {
				return invalid(fieldCPUQuota, "%d is negative (use -1 for unlimited)", q)
			} else if q > 0 && q < minCFSQuota {
				return invalid(fieldCPUQuota, "%d is below the kernel minimum of %d µs", q, minCFSQuota)
			}
		}
		if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
			return invalid(fieldCPUIdle, "%d is neither 0 nor 1", *c.Idle)
		}
		if c.Cpus != "" {
			if _, err := parseList(c.Cpus); err != nil {
				return invalid(fieldCPUs, "%q is not a CPU list like 0-3,5: %v", c.Cpus, err)
			}
		}
		if c.Mems != "" {
			if _, err := parseList(c.Mems); err != nil {
				return invalid(fieldMems, "%q is not a node list like 0-1: %v", c.Mems, err)
			}
		}
	}
	if b := r.BlockIO; b != nil {
		if err := checkWeight(fieldBlkWeight, b.Weight); err != nil {
			return err
		}
		if err := checkWeight(fieldBlkLeafWeight, b.LeafWeight); err != nil {
			return err
		}
		for _, d := range b.WeightDevice {
			if err := checkWeight(fieldBlkWeightDev, d.Weight); err != nil {
				return err
			}
		}
	}
	for _, h := range r.HugepageLimits {
		if _, err := hugepageName(h.Pagesize); err != nil {
			return err
		}
	}
	if _, err := deviceRules(r.Devices); err != nil {
		return err
	}
	for k := range r.Unified {
		if k == "" || strings.ContainsAny(k, "/\x00") || !strings.Contains(k, ".") {
			return invalid(fieldUnified, "%q is not a controller file", k)
		}
	}
	if len(r.Rdma) > 0 {
		return fieldErr(fieldRdma, "not supported by berth", errors.ErrUnsupported)
	}
	return nil
}

func checkWeight(field string, w *uint16) error {
	if w != nil && *w != 0 && (*w < minBlkWeight || *w > maxBlkWeight) {
		return invalid(field, "%d is outside the kernel range [%d, %d]", *w, minBlkWeight, maxBlkWeight)
	}
	return nil
}

// hugepageName checks a spec page size ("2MB", "1GB", "64KB") as used in
// hugetlb.<size>.* file names.
func hugepageName(size string) (string, error) {
	num := strings.TrimRight(size, "KMGB")
	unit := size[len(num):]
	if _, err := strconv.ParseUint(num, 10, 32); err != nil || (unit != "KB" && unit != "MB" && unit != "GB") {
		return "", invalid(fieldHugepages, "page size %q is not like 2MB or 1GB", size)
	}
	return size, nil
}

// sharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000]
// (runc up to 1.2, crun): 2 → 1, 1024 → 39, 262144 → 10000.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight converts v1 blkio.weight [10, 1000] to v2 io.weight [1, 10000].
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// swapToV2 converts the spec's memory+swap total to v2 memory.swap.max,
// which counts swap alone: swap - limit; -1 stays unlimited and 0 unset.
func swapToV2(swap, limit int64) (int64, error) {
	switch {
	case limit == -1 && swap == 0:
		return -1, nil // unlimited memory: unlimited swap too, as v1 does
	case swap == -1, swap == 0, limit == -1:
		return swap, nil
	case limit == 0:
		return 0, invalid(fieldMemSwap, "%d needs %s on cgroup v2", swap, fieldMemLimit)
	case swap < limit:
		return 0, invalid(fieldMemSwap, "%d is below %s %d (swap counts memory+swap)", swap, fieldMemLimit, limit)
	}
	return swap - limit, nil
}

// span is an inclusive range of a CPU or node list.
type span struct{ lo, hi int }

// parseList parses a kernel list ("0-3,5,7-8") into sorted, merged spans.
func parseList(s string) ([]span, error) {
	var out []span
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad entry %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		out = append(out, span{a, b})
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		return nil, fmt.Errorf("empty list")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	merged := out[:0]
	for _, sp := range out {
		if n := len(merged); n > 0 && sp.lo <= merged[n-1].hi+1 {
			merged[n-1].hi = max(merged[n-1].hi, sp.hi)
			continue
		}
		merged = append(merged, sp)
	}
	return merged, nil
}

// subsetOf reports whether every entry of want lies in have (both from parseList).
func subsetOf(want, have []span) bool {
	for _, w := range want {
		ok := false
		for _, h := range have {
			if h.lo <= w.lo && w.hi <= h.hi {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// optInt returns *p, or 0 when p is nil (the spec's "unset").
func optInt[T int64 | uint64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}
