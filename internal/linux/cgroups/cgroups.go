// Package cgroups places container processes in cgroups and applies, updates
// and reads their resource limits, on cgroup v1, v2 and hybrid hosts.
//
// It writes cgroupfs files itself (no systemd, no dbus): with Options.Systemd
// the directories are named as systemd would name them ("slice:prefix:name" →
// /slice/prefix-name.scope), but berth creates, limits and removes them, and
// systemd is not told about them.
//
// The layout is detected from the files under Options.Root, so a plain
// directory laid out like cgroupfs works too (tests use that for v2):
//
//	v2      Root has cgroup.controllers (one unified hierarchy)
//	v1      Root holds one directory per controller (cpu, memory, pids, ...)
//	hybrid  v1, plus a cgroup2 mount at Root/unified; controllers are used
//	        through v1, the process is also placed in unified/<path>
//
// Resource values follow the OCI runtime spec (specs.LinuxResources) and are
// converted for v2 as runc and crun convert them. Values the kernel cannot
// take are refused with one line naming the spec field, e.g.
//
//	linux.resources.memory.limit: 1024 is below the kernel minimum of 4096 bytes: invalid argument
//
// wrapping the errno (errors.Is(err, unix.EINVAL)) and classified with errdefs.
package cgroups

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultRoot is where cgroupfs is mounted unless Options.Root says otherwise.
const DefaultRoot = "/sys/fs/cgroup"

// Modes that Mode reports.
const (
	ModeV1     = "v1"
	ModeV2     = "v2"
	ModeHybrid = "hybrid"
)

// Manager controls one container's cgroup (one directory per v1 controller,
// or one directory on v2).
type Manager interface {
	// Path is the cgroup path relative to the hierarchy root, e.g. "/berth/abc".
	Path() string
	// Paths are the cgroup's directories on the host: one per v1
	// controller, keyed by its name, or the v2 directory under "".
	Paths() map[string]string
	// Create makes the cgroup directories and applies res (nil: no limits).
	// On error nothing it made is left behind.
	Create(res *specs.LinuxResources) error
	// IntoFD returns an open directory fd of the v2 leaf for clone3(CLONE_INTO_CGROUP)
	// (Go: SysProcAttr.UseCgroupFD/CgroupFD); ok is false on v1 and hybrid, where
	// Apply must be used instead. The caller closes it.
	IntoFD() (fd int, ok bool, err error)
	// Apply moves pid into the cgroup (every controller on v1, and unified/ on hybrid).
	Apply(pid int) error
	// Update changes the limits of an existing cgroup; nil fields are left as they are.
	Update(res *specs.LinuxResources) error
	// Pids lists the processes in the cgroup (recursively).
	Pids() ([]int, error)
	// Freeze and Thaw pause and resume every process in the cgroup, waiting until done.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Stats reads current usage.
	Stats() (*Stats, error)
	// Destroy removes the cgroup's leaf directories and any children (processes
	// must be gone); a missing cgroup is fine. Parent directories are kept: other
	// containers may share them.
	Destroy() error
}

// Options locate the cgroup filesystem; tests point Root at a fake tree.
type Options struct {
	// Root is where cgroupfs is mounted, default /sys/fs/cgroup.
	Root string
	// Systemd asks for the "slice:prefix:name" path form (runc --systemd-cgroup).
	// The cgroup is still managed through cgroupfs by berth, not by systemd.
	Systemd bool
}

// Stats mirror what runc's `events --stats` reports.
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	BlkIO  BlkIOStats  `json:"blkio"`
}

type CPUStats struct {
	UsageTotal  uint64 `json:"total"`  // ns
	UsageUser   uint64 `json:"user"`   // ns
	UsageKernel uint64 `json:"kernel"` // ns
	Periods     uint64 `json:"periods"`
	Throttled   uint64 `json:"throttledPeriods"`
	ThrottledNS uint64 `json:"throttledTime"`
}

type MemoryStats struct {
	Usage     uint64 `json:"usage"`              // bytes
	MaxUsage  uint64 `json:"maxUsage,omitempty"` // peak, where the kernel keeps it
	Limit     uint64 `json:"limit"`              // 0 = unlimited
	Failcnt   uint64 `json:"failcnt,omitempty"`  // times the limit was hit
	OOMKills  uint64 `json:"oomKills"`
	SwapUsage uint64 `json:"swapUsage,omitempty"`
	Cache     uint64 `json:"cache,omitempty"` // page cache
}

type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit,omitempty"` // 0 = max
}

type BlkIOStats struct {
	ReadBytes  uint64 `json:"readBytes"`
	WriteBytes uint64 `json:"writeBytes"`
}
