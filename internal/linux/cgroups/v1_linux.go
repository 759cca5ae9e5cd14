package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// v1 manages one directory per v1 hierarchy (and, on hybrid hosts, one in
// the controller-less cgroup2 at unified/).
type v1 struct {
	path    string
	hier    []hierarchy       // mounted hierarchies, one per mount (co-mounts deduplicated)
	dirs    map[string]string // controller name → this cgroup's directory
	unified string            // hybrid: unified/<path>; "" on v1
	uroot   string            // hybrid: root/unified
	ops     dirOps
}

type hierarchy struct {
	name  string // first controller name seen for this mount
	mount string // root/<name>
	dir   string // mount/<path>
}

func newV1(root, path string, hybrid bool) (*v1, error) {
	m := &v1{path: path, dirs: make(map[string]string), ops: kernelDirs}
	seen := make(map[string]string) // resolved mount → dir
	for _, name := range v1Names {
		mount := filepath.Join(root, name)
		fi, err := os.Lstat(mount)
		if err != nil {
			continue
		}
		real := mount
		if fi.Mode()&os.ModeSymlink != 0 { // cpu → cpu,cpuacct
			if real, err = filepath.EvalSymlinks(mount); err != nil || !isDir(real) {
				continue
			}
		} else if !fi.IsDir() {
			continue
		}
		if dir, ok := seen[real]; ok { // cpu and cpuacct linked to cpu,cpuacct
			m.dirs[name] = dir
			continue
		}
		dir := filepath.Join(mount, path)
		seen[real] = dir
		m.dirs[name] = dir
		m.hier = append(m.hier, hierarchy{name: name, mount: mount, dir: dir})
	}
	if len(m.hier) == 0 {
		return nil, errdefs.Unavailable(fmt.Errorf("no cgroup v1 controllers under %s", root))
	}
	if hybrid {
		m.uroot = filepath.Join(root, "unified")
		m.unified = filepath.Join(m.uroot, path)
	}
	return m, nil
}

func (m *v1) Path() string { return m.path }

func (m *v1) Paths() map[string]string {
	out := make(map[string]string, len(m.dirs))
	for name, dir := range m.dirs {
		out[name] = dir
	}
	return out
}

func (m *v1) exists() bool {
	return isDir(m.hier[0].dir)
}

func (m *v1) Create(res *specs.LinuxResources) (err error) {
	if err := validate(res); err != nil {
		return err
	}
	var made []string
	defer func() {
		if err != nil {
			m.ops.undo(made)
		}
	}()
	for _, h := range m.hier {
		var fill func(string, bool) error
		if h.name == "cpuset" {
			fill = fillCpuset
		}
		d, err := m.ops.mkdirAll(h.mount, m.path, fill)
		made = append(made, d...)
		if err != nil {
			return err
		}
	}
	if m.unified != "" {
		d, err := m.ops.mkdirAll(m.uroot, m.path, nil)
		made = append(made, d...)
		if err != nil {
			return err
		}
	}
	return m.set(res)
}

// fillCpuset copies the parent's cpuset.cpus and cpuset.mems into a cpuset
// directory that has none: v1 refuses tasks in a cpuset without them.
func fillCpuset(dir string, _ bool) error {
	for _, name := range [...]string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readString(dir, name)
		if err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if cur != "" {
			continue
		}
		parent, err := readString(filepath.Dir(dir), name)
		if err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if err := writeFile(dir, name, parent); err != nil {
			return classify(fmt.Errorf("create cgroup %s: copy %s %q from parent: %w", dir, name, parent, errnoOf(err)), err)
		}
	}
	return nil
}

func (m *v1) Update(res *specs.LinuxResources) error {
	if err := validate(res); err != nil {
		return err
	}
	if !m.exists() {
		return notFound(m.path)
	}
	return m.set(res)
}

// dir returns this cgroup's directory in the hierarchy of controller, or
// an error naming the field that needs it.
func (m *v1) dir(controller, field string) (string, error) {
	if d, ok := m.dirs[controller]; ok {
		return d, nil
	}
	return "", fieldErr(field, fmt.Sprintf("the %s controller is not mounted", controller), unix.ENOENT)
}

func (m *v1) set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return fieldErr(fieldUnified, "needs cgroup v2, this host has v1", errors.ErrUnsupported)
	}
	if r.Memory != nil {
		if err := m.setMemory(r.Memory); err != nil {
			return err
		}
	}
	if r.CPU != nil {
		if err := m.setCPU(r.CPU); err != nil {
			return err
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		dir, err := m.dir("pids", fieldPids)
		if err != nil {
			return err
		}
		if err := setField(fieldPids, dir, "pids.max", pidsMax(*r.Pids.Limit)); err != nil {
			return err
		}
	}
	if r.BlockIO != nil {
		if err := m.setBlkio(r.BlockIO); err != nil {
			return err
		}
	}
	for _, h := range r.HugepageLimits {
		dir, err := m.dir("hugetlb", fieldHugepages)
		if err != nil {
			return err
		}
		if err := setField(fieldHugepages, dir, "hugetlb."+h.Pagesize+".limit_in_bytes", strconv.FormatUint(h.Limit, 10)); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		if err := m.setDevices(r.Devices); err != nil {
			return err
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			dir, err := m.dir("net_cls", fieldNetwork)
			if err != nil {
				return err
			}
			if err := setField(fieldNetwork+".classID", dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10)); err != nil {
				return err
			}
		}
		for _, p := range n.Priorities {
			dir, err := m.dir("net_prio", fieldNetwork)
			if err != nil {
				return err
			}
			if err := setField(fieldNetwork+".priorities", dir, "net_prio.ifpriomap", p.Name+" "+strconv.FormatUint(uint64(p.Priority), 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	if mem.Limit == nil && mem.Swap == nil && mem.Reservation == nil && mem.Swappiness == nil && mem.DisableOOMKiller == nil {
		return nil
	}
	dir, err := m.dir("memory", fieldMemLimit)
	if err != nil {
		return err
	}
	limit, swap := optInt(mem.Limit), optInt(mem.Swap)
	if limit == -1 && swap == 0 {
		swap = -1 // unlimited memory means unlimited memory+swap too
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
		if err == nil {
			return nil
		}
		cause := errnoOf(err)
		if errors.Is(cause, unix.EBUSY) {
			usage, _ := readUint(dir, "memory.usage_in_bytes")
			return fieldErr(fieldMemLimit, fmt.Sprintf("%d is below the current usage of %d bytes", limit, usage), cause)
		}
		if errors.Is(cause, unix.EINVAL) {
			memsw, _ := readUint(dir, "memory.memsw.limit_in_bytes")
			if memsw != 0 && limit > int64(memsw) || limit == -1 {
				return fieldErr(fieldMemLimit, fmt.Sprintf("%d is above the memory+swap limit %d (set %s too)", limit, memsw, fieldMemSwap), cause)
			}
		}
		return writeErr(fieldMemLimit, dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10), err)
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		err := writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		switch cause := errnoOf(err); {
		case err == nil:
			return nil
		case errors.Is(cause, fs.ErrNotExist):
			if swap == -1 || swap == limit {
				return nil // no swap accounting: nothing to limit
			}
			return fieldErr(fieldMemSwap, fmt.Sprintf("%d needs swap accounting, which this kernel has off (boot with swapaccount=1)", swap), cause)
		case errors.Is(cause, unix.EINVAL):
			cur := "unlimited"
			if v, err := readUint(dir, "memory.limit_in_bytes"); err == nil && v != 0 {
				cur = strconv.FormatUint(v, 10)
			}
			return fieldErr(fieldMemSwap, fmt.Sprintf("%d is below the memory limit %s (swap counts memory+swap)", swap, cur), cause)
		case errors.Is(cause, unix.EBUSY):
			usage, _ := readUint(dir, "memory.memsw.usage_in_bytes")
			return fieldErr(fieldMemSwap, fmt.Sprintf("%d is below the current memory+swap usage of %d bytes", swap, usage), cause)
		default:
			return fieldErr(fieldMemSwap, fmt.Sprintf("%d refused by the kernel", swap), cause)
		}
	}
	// v1 keeps memsw >= limit at every step: raise memsw first when it grows.
	first, second := setLimit, setSwap
	if swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if swap == -1 || err == nil && cur != 0 && cur < uint64(swap) { // cur 0: unlimited
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := setField(fieldMemReservation, dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if err := setField(fieldMemSwappiness, dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		val := "0"
		if *mem.DisableOOMKiller {
			val = "1"
		}
		if err := setField(fieldMemOOMKiller, dir, "memory.oom_control", val); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCPU(c *specs.LinuxCPU) error {
	if c.Shares != nil && *c.Shares != 0 {
		dir, err := m.dir("cpu", fieldCPUShares)
		if err != nil {
			return err
		}
		if err := setField(fieldCPUShares, dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
	}
	period, quota := optInt(c.Period), optInt(c.Quota)
	if period != 0 || quota != 0 {
		dir, err := m.dir("cpu", fieldCPUQuota)
		if err != nil {
			return err
		}
		setPeriod := func() error {
			if period == 0 {
				return nil
			}
			return setField(fieldCPUPeriod, dir, "cpu.cfs_period_us", strconv.FormatUint(period, 10))
		}
		setQuota := func() error {
			if quota == 0 {
				return nil
			}
			return setField(fieldCPUQuota, dir, "cpu.cfs_quota_us", strconv.FormatInt(quota, 10))
		}
		// A new period can clash with the old quota (and the reverse): if the
		// period is refused, set the quota first.
		if err := setPeriod(); err != nil {
			if !errors.Is(err, unix.EINVAL) {
				return err
			}
			if err := setQuota(); err != nil {
				return err
			}
			if err := setPeriod(); err != nil {
				return err
			}
		} else if err := setQuota(); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		dir, err := m.dir("cpu", fieldCPUBurst)
		if err != nil {
			return err
		}
		if err := setField(fieldCPUBurst, dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		dir, err := m.dir("cpu", fieldCPURtPeriod)
		if err != nil {
			return err
		}
		if err := setField(fieldCPURtPeriod, dir, "cpu.rt_period_us", strconv.FormatUint(*c.RealtimePeriod, 10)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		dir, err := m.dir("cpu", fieldCPURtRuntime)
		if err != nil {
			return err
		}
		if err := setField(fieldCPURtRuntime, dir, "cpu.rt_runtime_us", strconv.FormatInt(*c.RealtimeRuntime, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		dir, err := m.dir("cpu", fieldCPUIdle)
		if err != nil {
			return err
		}
		if err := setField(fieldCPUIdle, dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if c.Cpus != "" || c.Mems != "" {
		dir, err := m.dir("cpuset", fieldCPUs)
		if err != nil {
			return err
		}
		if err := setCpuset(dir, "cpuset.effective_cpus", "cpuset.cpus", fieldCPUs, c.Cpus, "CPUs"); err != nil {
			return err
		}
		if err := setCpuset(dir, "cpuset.effective_mems", "cpuset.mems", fieldMems, c.Mems, "memory nodes"); err != nil {
			return err
		}
	}
	return nil
}

// setCpuset writes a CPU or node list after checking it against what the
// parent cgroup has (the kernel's own error would be a bare EINVAL).
func setCpuset(dir, availFile, file, field, val, what string) error {
	if val == "" {
		return nil
	}
	want, _ := parseList(val) // validated already
	if avail, err := readString(filepath.Dir(dir), availFile); err == nil {
		if have, err := parseList(avail); err == nil && !subsetOf(want, have) {
			return invalid(field, "%q is not within the available %s %s", val, what, avail)
		}
	}
	return setField(field, dir, file, val)
}

func (m *v1) setBlkio(b *specs.LinuxBlockIO) error {
	needs := b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0
	if !needs {
		return nil
	}
	dir, err := m.dir("blkio", fieldBlkWeight)
	if err != nil {
		return err
	}
	// CFQ's blkio.weight where present, else BFQ's blkio.bfq.weight.
	prefix := "blkio."
	if !exists(filepath.Join(dir, "blkio.weight")) && exists(filepath.Join(dir, "blkio.bfq.weight")) {
		prefix = "blkio.bfq."
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := setField(fieldBlkWeight, dir, prefix+"weight", strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := setField(fieldBlkLeafWeight, dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil && *d.Weight != 0 {
			if err := setField(fieldBlkWeightDev, dir, prefix+"weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
				return err
			}
		}
		if d.LeafWeight != nil && *d.LeafWeight != 0 {
			if err := setField(fieldBlkWeightDev, dir, "blkio.leaf_weight_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.LeafWeight)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := setField(fieldBlkThrottle, dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices writes the rules in order. A rule for all devices ("a") resets
// the list first, as the spec's usual leading "deny all" means.
func (m *v1) setDevices(in []specs.LinuxDeviceCgroup) error {
	rules, _ := deviceRules(in) // validated already
	dir, err := m.dir("devices", fieldDevices)
	if err != nil {
		return err
	}
	for i, r := range rules {
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		if err := setField(fmt.Sprintf("%s[%d]", fieldDevices, i), dir, file, r.v1String()); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) IntoFD() (int, bool, error) { return -1, false, nil }

func (m *v1) Apply(pid int) error {
	for _, h := range m.hier {
		if err := addProc(h.dir, pid); err != nil {
			return err
		}
	}
	if m.unified != "" {
		if err := addProc(m.unified, pid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// procsDir is the directory Pids reads: any hierarchy holds every process.
func (m *v1) procsDir() string {
	for _, name := range [...]string{"pids", "freezer", "memory", "devices", "cpu"} {
		if d, ok := m.dirs[name]; ok {
			return d
		}
	}
	return m.hier[0].dir
}

func (m *v1) Pids() ([]int, error) {
	return readProcs(m.procsDir(), nil)
}

func (m *v1) Freeze() error { return m.setFreezer("FROZEN") }
func (m *v1) Thaw() error   { return m.setFreezer("THAWED") }

func (m *v1) setFreezer(state string) error {
	dir, ok := m.dirs["freezer"]
	if !ok {
		return errdefs.Unavailable(fmt.Errorf("freeze cgroup %s: the freezer controller is not mounted", m.path))
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		// A task in vfork can hold FREEZING forever: thaw now and then and retry, as runc does.
		if state == "FROZEN" && i%50 == 49 {
			_ = writeFile(dir, "freezer.state", "THAWED")
		}
		if err := writeFile(dir, "freezer.state", state); err != nil {
			return classify(fmt.Errorf("set cgroup %s to %s: %w", m.path, state, errnoOf(err)), err)
		}
		cur, err := readString(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("set cgroup %s to %s: %w", m.path, state, err)
		}
		if cur == state {
			return nil
		}
		if time.Now().After(deadline) {
			if state == "FROZEN" {
				_ = writeFile(dir, "freezer.state", "THAWED")
			}
			return fmt.Errorf("set cgroup %s to %s: still %s after %s", m.path, state, cur, freezeTimeout)
		}
		backoff(i)
	}
}

func (m *v1) Frozen() (bool, error) {
	dir, ok := m.dirs["freezer"]
	if !ok {
		return false, nil
	}
	s, err := readString(dir, "freezer.state")
	if err != nil {
		return false, fmt.Errorf("read freezer state of cgroup %s: %w", m.path, err)
	}
	return s == "FROZEN", nil
}

func (m *v1) Stats() (*Stats, error) {
	if !m.exists() {
		return nil, notFound(m.path)
	}
	var st Stats
	var errs []error
	opt := func(err error) { // a missing file is a controller the host lacks
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if dir, ok := m.dirs["memory"]; ok {
		var err error
		st.Memory.Usage, err = readUint(dir, "memory.usage_in_bytes")
		opt(err)
		st.Memory.MaxUsage, err = readUint(dir, "memory.max_usage_in_bytes")
		opt(err)
		st.Memory.Limit, err = readUint(dir, "memory.limit_in_bytes")
		opt(err)
		st.Memory.Failcnt, err = readUint(dir, "memory.failcnt")
		opt(err)
		if sw, err := readUint(dir, "memory.memsw.usage_in_bytes"); err == nil && sw > st.Memory.Usage {
			st.Memory.SwapUsage = sw - st.Memory.Usage
		}
		oc, err := readKV(dir, "memory.oom_control")
		opt(err)
		st.Memory.OOMKills = oc["oom_kill"]
		ms, err := readKV(dir, "memory.stat")
		opt(err)
		st.Memory.Cache = ms["total_cache"]
	}
	if dir, ok := m.dirs["cpuacct"]; ok {
		var err error
		st.CPU.UsageTotal, err = readUint(dir, "cpuacct.usage")
		opt(err)
		user, uerr := readUint(dir, "cpuacct.usage_user")
		sys, serr := readUint(dir, "cpuacct.usage_sys")
		if uerr == nil && serr == nil {
			st.CPU.UsageUser, st.CPU.UsageKernel = user, sys
		} else if kv, err := readKV(dir, "cpuacct.stat"); err == nil {
			const nsPerTick = 1e9 / 100 // USER_HZ
			st.CPU.UsageUser, st.CPU.UsageKernel = kv["user"]*nsPerTick, kv["system"]*nsPerTick
		}
	}
	if dir, ok := m.dirs["cpu"]; ok {
		kv, err := readKV(dir, "cpu.stat")
		opt(err)
		st.CPU.Periods, st.CPU.Throttled, st.CPU.ThrottledNS = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
	}
	if dir, ok := m.dirs["pids"]; ok {
		var err error
		st.Pids.Current, err = readUint(dir, "pids.current")
		opt(err)
		st.Pids.Limit, err = readUint(dir, "pids.max")
		opt(err)
	}
	if dir, ok := m.dirs["blkio"]; ok {
		for _, name := range [...]string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes", "blkio.io_service_bytes_recursive"} {
			r, w, err := readBlkioBytes(dir, name)
			if err == nil {
				st.BlkIO.ReadBytes, st.BlkIO.WriteBytes = r, w
				break
			}
			opt(err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &st, fmt.Errorf("read stats of cgroup %s: %w", m.path, err)
	}
	return &st, nil
}

// readBlkioBytes sums "8:0 Read 4096" lines.
func readBlkioBytes(dir, name string) (read, write uint64, err error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write, nil
}

func (m *v1) Destroy() error {
	var errs []error
	for _, h := range m.hier {
		errs = append(errs, m.ops.removeTree(h.dir))
	}
	if m.unified != "" {
		errs = append(errs, m.ops.removeTree(m.unified))
	}
	return errors.Join(errs...)
}
