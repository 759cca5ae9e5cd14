package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// v2 manages one directory in the unified hierarchy.
type v2 struct {
	root, path, dir string
	ops             dirOps
	// devices installs the device filter: an eBPF program on the kernel,
	// recorded in tests on fake trees.
	devices func(dir string, rules []deviceRule) error
}

func newV2(root, path string) *v2 {
	return &v2{root: root, path: path, dir: filepath.Join(root, path), ops: kernelDirs, devices: setDeviceFilter}
}

func (m *v2) Path() string { return m.path }

func (m *v2) Paths() map[string]string { return map[string]string{"": m.dir} }

func (m *v2) Create(res *specs.LinuxResources) (err error) {
	if err := validate(res); err != nil {
		return err
	}
	// Each level above the leaf hands its controllers down, before the
	// level below it is made.
	enableControllers(m.root)
	made, err := m.ops.mkdirAll(m.root, m.path, func(dir string, _ bool) error {
		if dir != m.dir {
			enableControllers(dir)
		}
		return nil
	})
	defer func() {
		if err != nil {
			m.ops.undo(made)
		}
	}()
	if err != nil {
		return err
	}
	return m.set(res, false)
}

// enableControllers turns on, in dir's cgroup.subtree_control, every
// controller dir has. It is best effort: a controller that cannot be enabled
// (a process in dir, an RT task for cpu) shows as a missing file when a
// limit needs it.
func enableControllers(dir string) {
	avail, err := readString(dir, "cgroup.controllers")
	if err != nil || avail == "" {
		return
	}
	on, _ := readString(dir, "cgroup.subtree_control")
	enabled := strings.Fields(on)
	var want []string
	for _, c := range strings.Fields(avail) {
		if !contains(enabled, c) {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 || writeFile(dir, "cgroup.subtree_control", strings.Join(want, " ")) == nil {
		return
	}
	for _, w := range want {
		_ = writeFile(dir, "cgroup.subtree_control", w)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *v2) Update(res *specs.LinuxResources) error {
	if err := validate(res); err != nil {
		return err
	}
	if !isDir(m.dir) {
		return notFound(m.path)
	}
	return m.set(res, true)
}

// v2Num formats a limit for *.max and *.low files: -1 is "max".
func v2Num(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// set writes r. memory.swappiness and memory.disableOOMKiller are v1 knobs
// that v2 lacks; they are ignored, as runc ignores them.
func (m *v2) set(r *specs.LinuxResources, update bool) error {
	if r == nil {
		return nil
	}
	if r.Memory != nil {
		if err := m.setMemory(r.Memory, update); err != nil {
			return err
		}
	}
	if r.CPU != nil {
		if err := m.setCPU(r.CPU); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		if err := setField(fieldPids, m.dir, "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := m.setIO(r.BlockIO); err != nil {
			return err
		}
	}
	for _, h := range r.HugepageLimits {
		val := strconv.FormatUint(h.Limit, 10)
		if err := setField(fieldHugepages, m.dir, "hugetlb."+h.Pagesize+".max", val); err != nil {
			return err
		}
		if rsvd := "hugetlb." + h.Pagesize + ".rsvd.max"; exists(filepath.Join(m.dir, rsvd)) {
			if err := setField(fieldHugepages, m.dir, rsvd, val); err != nil {
				return err
			}
		}
	}
	if len(r.Devices) > 0 {
		rules, _ := deviceRules(r.Devices) // validated already
		if err := m.devices(m.dir, rules); err != nil {
			return fieldErr(fieldDevices, "install the eBPF device filter on "+m.dir, err)
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return fieldErr(fieldNetwork, "net_cls and net_prio exist only on cgroup v1", errors.ErrUnsupported)
	}
	for k, v := range r.Unified {
		if err := setField(fmt.Sprintf("%s[%q]", fieldUnified, k), m.dir, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setMemory(mem *specs.LinuxMemory, update bool) error {
	limit, swap := optInt(mem.Limit), optInt(mem.Swap)
	if swap != 0 || limit == -1 {
		if swap > 0 && limit == 0 { // an update of swap alone: against the limit in place
			if cur, err := readUint(m.dir, "memory.max"); err == nil && cur != 0 {
				limit = int64(cur)
			}
		}
		v, err := swapToV2(swap, limit)
		if err != nil {
			return err
		}
		val := v2Num(v)
		err = writeFile(m.dir, "memory.swap.max", val)
		if errors.Is(err, fs.ErrNotExist) && (val == "max" || val == "0") {
			err = nil // no swap accounting: nothing to limit
		}
		if err := writeErr(fieldMemSwap, m.dir, "memory.swap.max", val, err); err != nil {
			return err
		}
	}
	if limit != 0 && mem.Limit != nil {
		if update && limit > 0 && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate {
			if usage, err := readUint(m.dir, "memory.current"); err == nil && uint64(limit) < usage {
				return fieldErr(fieldMemLimit, fmt.Sprintf("%d is below the current usage of %d bytes", limit, usage), unix.EBUSY)
			}
		}
		if err := setField(fieldMemLimit, m.dir, "memory.max", v2Num(limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := setField(fieldMemReservation, m.dir, "memory.low", v2Num(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v2) setCPU(c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 {
		if err := setField(fieldCPUShares, m.dir, "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	if period, quota := optInt(c.Period), optInt(c.Quota); period != 0 || quota != 0 {
		// cpu.max is "quota period"; writing the quota alone keeps the period.
		val := v2Num(quota)
		if quota == 0 { // the period alone: keep the quota in place
			cur, _ := readString(m.dir, "cpu.max")
			val, _, _ = strings.Cut(cur, " ")
			if val == "" {
				val = "max"
			}
		}
		if period != 0 {
			val += " " + strconv.FormatUint(period, 10)
		}
		field := fieldCPUQuota
		if quota == 0 {
			field = fieldCPUPeriod
		}
		if err := setField(field, m.dir, "cpu.max", val); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := setField(fieldCPUBurst, m.dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := setField(fieldCPUIdle, m.dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if optInt(c.RealtimeRuntime) != 0 {
		return fieldErr(fieldCPURtRuntime, "realtime CPU limits exist only on cgroup v1", errors.ErrUnsupported)
	}
	if optInt(c.RealtimePeriod) != 0 {
		return fieldErr(fieldCPURtPeriod, "realtime CPU limits exist only on cgroup v1", errors.ErrUnsupported)
	}
	if err := setCpuset(m.dir, "cpuset.cpus.effective", "cpuset.cpus", fieldCPUs, c.Cpus, "CPUs"); err != nil {
		return err
	}
	return setCpuset(m.dir, "cpuset.mems.effective", "cpuset.mems", fieldMems, c.Mems, "memory nodes")
}

// setIO uses BFQ's io.bfq.weight (the v1 scale) where the kernel has it,
// else io.weight with the v1 → v2 conversion, as runc does.
func (m *v2) setIO(b *specs.LinuxBlockIO) error {
	bfq := exists(filepath.Join(m.dir, "io.bfq.weight"))
	if b.Weight != nil && *b.Weight != 0 {
		name, val := "io.weight", strconv.FormatUint(blkioToIOWeight(*b.Weight), 10)
		if bfq {
			name, val = "io.bfq.weight", strconv.FormatUint(uint64(*b.Weight), 10)
		}
		if err := setField(fieldBlkWeight, m.dir, name, val); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil || *d.Weight == 0 {
			continue
		}
		name, val := "io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, blkioToIOWeight(*d.Weight))
		if bfq {
			name, val = "io.bfq.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)
		}
		if err := setField(fieldBlkWeightDev, m.dir, name, val); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice},
		{"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice},
		{"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := setField(fieldBlkThrottle, m.dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2) IntoFD() (int, bool, error) {
	fd, err := unix.Open(m.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, classify(fmt.Errorf("open cgroup %s: %w", m.dir, err), err)
	}
	return fd, true, nil
}

func (m *v2) Apply(pid int) error { return addProc(m.dir, pid) }

func (m *v2) Pids() ([]int, error) { return readProcs(m.dir, nil) }

func (m *v2) Freeze() error { return m.setFrozen(true) }
func (m *v2) Thaw() error   { return m.setFrozen(false) }

// setFrozen writes cgroup.freeze and waits until cgroup.events says so.
func (m *v2) setFrozen(on bool) error {
	val, verb := "0", "thaw"
	if on {
		val, verb = "1", "freeze"
	}
	if err := writeFile(m.dir, "cgroup.freeze", val); err != nil {
		cause := errnoOf(err)
		if errors.Is(cause, fs.ErrNotExist) && isDir(m.dir) {
			return errdefs.Unavailable(fmt.Errorf("%s cgroup %s: this kernel has no cgroup.freeze (needs Linux 5.2): %w", verb, m.path, cause))
		}
		return classify(fmt.Errorf("%s cgroup %s: %w", verb, m.path, cause), cause)
	}
	want := uint64(0)
	if on {
		want = 1
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		ev, err := readKV(m.dir, "cgroup.events")
		if err != nil {
			return fmt.Errorf("%s cgroup %s: %w", verb, m.path, err)
		}
		if ev["frozen"] == want {
			return nil
		}
		if time.Now().After(deadline) {
			if on {
				_ = writeFile(m.dir, "cgroup.freeze", "0")
			}
			return fmt.Errorf("%s cgroup %s: not done after %s", verb, m.path, freezeTimeout)
		}
		backoff(i)
	}
}

func (m *v2) Frozen() (bool, error) {
	s, err := readString(m.dir, "cgroup.freeze")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && isDir(m.dir) {
			return false, nil // no freezer in this kernel
		}
		return false, fmt.Errorf("read freezer state of cgroup %s: %w", m.path, err)
	}
	return s == "1", nil
}

func (m *v2) Stats() (*Stats, error) {
	var st Stats
	var errs []error
	opt := func(err error) { // a missing file is a controller not enabled here
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	var err error
	st.Memory.Usage, err = readUint(m.dir, "memory.current")
	opt(err)
	st.Memory.MaxUsage, err = readUint(m.dir, "memory.peak") // Linux 5.19
	opt(err)
	st.Memory.Limit, err = readUint(m.dir, "memory.max")
	opt(err)
	st.Memory.SwapUsage, err = readUint(m.dir, "memory.swap.current")
	opt(err)
	ev, err := readKV(m.dir, "memory.events")
	opt(err)
	st.Memory.Failcnt, st.Memory.OOMKills = ev["max"], ev["oom_kill"]
	ms, err := readKV(m.dir, "memory.stat")
	opt(err)
	st.Memory.Cache = ms["file"]

	cs, err := readKV(m.dir, "cpu.stat") // always there: core cgroup file
	opt(err)
	st.CPU.UsageTotal, st.CPU.UsageUser, st.CPU.UsageKernel = cs["usage_usec"]*1000, cs["user_usec"]*1000, cs["system_usec"]*1000
	st.CPU.Periods, st.CPU.Throttled, st.CPU.ThrottledNS = cs["nr_periods"], cs["nr_throttled"], cs["throttled_usec"]*1000

	st.Pids.Current, err = readUint(m.dir, "pids.current")
	opt(err)
	st.Pids.Limit, err = readUint(m.dir, "pids.max")
	opt(err)

	io, err := readString(m.dir, "io.stat")
	opt(err)
	for _, line := range strings.Split(io, "\n") { // "8:0 rbytes=1 wbytes=2 rios=3 ..."
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				st.BlkIO.ReadBytes += n
			case "wbytes":
				st.BlkIO.WriteBytes += n
			}
		}
	}
	if !isDir(m.dir) {
		return nil, notFound(m.path)
	}
	if err := errors.Join(errs...); err != nil {
		return &st, fmt.Errorf("read stats of cgroup %s: %w", m.path, err)
	}
	return &st, nil
}

func (m *v2) Destroy() error { return m.ops.removeTree(m.dir) }
