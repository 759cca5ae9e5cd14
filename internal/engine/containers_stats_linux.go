package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/linux/cgroups"
)

// StatsSample is one reading of a container's resource use. CPU use is a
// counter: a percentage needs two samples (CPUPercent).
type StatsSample struct {
	ID, Name string
	// Running is false for a stopped container, whose sample is zero.
	Running bool
	Read    time.Time
	// CPUUsage is the CPU time the container used, on all CPUs (ns);
	// SystemUsage the CPU time that passed on the host, all CPUs, busy or
	// idle (ns), both as docker reports them.
	CPUUsage, SystemUsage uint64
	OnlineCPUs            int
	// MemUsage leaves out the page cache, as docker's CLI shows it;
	// MemLimit is the host's memory when the container has no limit.
	MemUsage, MemLimit    uint64
	NetRx, NetTx          uint64 // bytes, all interfaces but lo
	BlockRead, BlockWrite uint64 // bytes
	Pids                  uint64
}

// Stats takes one sample of container ref's resource use.
func (e *Engine) Stats(ctx context.Context, ref string) (StatsSample, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return StatsSample{}, err
	}
	s := StatsSample{ID: rec.ID, Name: rec.Name, Read: time.Now()}
	if !rec.Running() || rec.State.Status == store.StatusRestarting {
		return s, nil
	}
	st, err := e.cgroupStats(rec)
	if err != nil {
		// It may have stopped meanwhile: a stopped container reads as zero.
		if cur, gerr := e.containers.Get(rec.ID); gerr == nil && !cur.Running() {
			return s, nil
		}
		return s, fmt.Errorf("stats of %s: %w", rec.Name, err)
	}
	s.Running = true
	s.CPUUsage = st.CPU.UsageTotal
	s.SystemUsage, _ = systemCPUUsage()
	s.OnlineCPUs = goruntime.NumCPU()
	s.MemUsage = st.Memory.Usage
	if st.Memory.Cache < s.MemUsage {
		s.MemUsage -= st.Memory.Cache
	}
	s.MemLimit = st.Memory.Limit
	if host := hostMemory(); host > 0 && (s.MemLimit == 0 || s.MemLimit > host) {
		s.MemLimit = host
	}
	s.BlockRead, s.BlockWrite = st.BlkIO.ReadBytes, st.BlkIO.WriteBytes
	s.Pids = st.Pids.Current
	if !rec.HostConfig.NetworkMode.IsHost() && rec.State.Pid > 0 {
		// The host's interfaces are not the container's: docker shows none.
		if f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", rec.State.Pid)); err == nil {
			s.NetRx, s.NetTx, _ = parseNetDev(f)
			f.Close()
		}
	}
	return s, nil
}

// cgroupStats reads the container's cgroup through berth's runtime, or,
// for another runtime, directly at the cgroup path berth gave it.
func (e *Engine) cgroupStats(rec *store.Container) (*cgroups.Stats, error) {
	if rec.Runtime == "berth" {
		c, err := e.runtime().Load(rec.ID)
		if err != nil {
			return nil, err
		}
		return c.Stats()
	}
	cg, err := cgroups.New(cgroupsPath(rec, e.opts.CgroupParent), cgroups.Options{})
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// CPUPercent is docker's CPU %: the container's share of the host's CPU
// time between two samples, scaled to the number of CPUs (200% is two
// CPUs busy).
func CPUPercent(prev, cur StatsSample) float64 {
	if !prev.Running || !cur.Running || cur.CPUUsage < prev.CPUUsage || cur.SystemUsage <= prev.SystemUsage {
		return 0
	}
	cpu := float64(cur.CPUUsage - prev.CPUUsage)
	sys := float64(cur.SystemUsage - prev.SystemUsage)
	n := cur.OnlineCPUs
	if n == 0 {
		n = 1
	}
	return cpu / sys * float64(n) * 100
}

// MemPercent is docker's MEM %: usage over limit.
func MemPercent(s StatsSample) float64 {
	if s.MemLimit == 0 {
		return 0
	}
	return float64(s.MemUsage) / float64(s.MemLimit) * 100
}

// parseNetDev sums the received and sent bytes of /proc/PID/net/dev's
// interfaces, leaving out loopback.
func parseNetDev(r io.Reader) (rx, tx uint64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue // the two header lines
		}
		if strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		rx += r
		tx += t
	}
	return rx, tx, sc.Err()
}

// clockTicks is USER_HZ, the unit of /proc/stat; 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// systemCPUUsage is the host's total CPU time in ns, from /proc/stat.
func systemCPUUsage() (uint64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseProcStat(f)
}

// parseProcStat reads the "cpu" line's first seven fields (user, nice,
// system, idle, iowait, irq, softirq), as docker does, in ns.
func parseProcStat(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 8 {
			return 0, fmt.Errorf("/proc/stat: short cpu line")
		}
		var ticks uint64
		for _, v := range f[1:8] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat: %w", err)
			}
			ticks += n
		}
		return ticks * (1e9 / clockTicks), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/stat: no cpu line")
}

// hostMemory is the host's total memory in bytes.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
