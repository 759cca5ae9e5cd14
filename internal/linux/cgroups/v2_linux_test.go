package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// fakeV2Files are the files the fake kernel puts in a new cgroup, by
// controller ("" for the core files every cgroup has).
var fakeV2Files = map[string]map[string]string{
	"": {
		"cgroup.controllers": "", "cgroup.subtree_control": "", "cgroup.procs": "",
		"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0", "cpu.stat": "usage_usec 0\n",
	},
	"memory":  {"memory.max": "max", "memory.low": "0", "memory.high": "max", "memory.swap.max": "max", "memory.current": "0", "memory.events": "", "memory.stat": ""},
	"cpu":     {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
	"cpuset":  {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-3", "cpuset.mems.effective": "0"},
	"pids":    {"pids.max": "max", "pids.current": "0"},
	"io":      {"io.weight": "default 100", "io.max": "", "io.stat": ""},
	"hugetlb": {"hugetlb.2MB.max": "max"},
}

// fakeV2 lays a cgroup2 root out in a temp dir with the given controllers
// and returns it with a manager for path whose mkdir fills new directories
// as the kernel would, after the parent's cgroup.subtree_control.
func fakeV2(t *testing.T, path string, controllers ...string) (string, *v2, *[][]deviceRule) {
	t.Helper()
	if controllers == nil {
		controllers = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids"}
	}
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"cgroup.controllers": strings.Join(controllers, " "), "cgroup.subtree_control": "", "cgroup.procs": "1\n",
		"cpuset.cpus.effective": "0-3", "cpuset.mems.effective": "0",
	})
	mode, err := Mode(root)
	if err != nil || mode != ModeV2 {
		t.Fatalf("Mode(fake v2) = %q, %v", mode, err)
	}
	mgr, err := New(path, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	m := mgr.(*v2)
	m.ops = dirOps{
		mkdir: func(dir string) error {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			on, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
			if err != nil {
				return err
			}
			var ctrls []string
			for _, f := range strings.Fields(string(on)) {
				ctrls = append(ctrls, strings.TrimPrefix(f, "+"))
			}
			files := map[string]string{}
			for _, c := range append([]string{""}, ctrls...) {
				for k, v := range fakeV2Files[c] {
					files[k] = v
				}
			}
			files["cgroup.controllers"] = strings.Join(ctrls, " ")
			for k, v := range files {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		rmdir: func(dir string) error {
			if _, err := os.Stat(dir); err != nil {
				return err
			}
			return os.RemoveAll(dir)
		},
	}
	var installed [][]deviceRule
	m.devices = func(dir string, rules []deviceRule) error {
		installed = append(installed, rules)
		return nil
	}
	return root, m, &installed
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestV2FakeCreate(t *testing.T) {
	tests := []struct {
		name string
		res  *specs.LinuxResources
		want map[string]string // leaf file → content
	}{
		{name: "no limits", res: nil, want: map[string]string{"memory.max": "max", "pids.max": "max"}},
		{name: "memory", res: &specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: ptr[int64](256 << 20), Reservation: ptr[int64](128 << 20), Swap: ptr[int64](512 << 20)}},
			want: map[string]string{"memory.max": "268435456", "memory.low": "134217728", "memory.swap.max": "268435456"}},
		{name: "memory unlimited", res: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)}},
			want: map[string]string{"memory.max": "max", "memory.swap.max": "max"}},
		{name: "swap equals limit", res: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), Swap: ptr[int64](1 << 20)}},
			want: map[string]string{"memory.max": "1048576", "memory.swap.max": "0"}},
		{name: "cpu", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](1024), Quota: ptr[int64](50000), Period: ptr[uint64](100000), Cpus: "0-1", Mems: "0", Burst: ptr[uint64](1000)}},
			want: map[string]string{"cpu.weight": "39", "cpu.max": "50000 100000", "cpuset.cpus": "0-1", "cpuset.mems": "0", "cpu.max.burst": "1000"}},
		{name: "cpu shares max", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](262144)}},
			want: map[string]string{"cpu.weight": "10000"}},
		{name: "cpu quota unlimited", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](-1), Period: ptr[uint64](50000)}},
			want: map[string]string{"cpu.max": "max 50000"}},
		{name: "cpu quota alone", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](20000)}},
			want: map[string]string{"cpu.max": "20000"}},
		{name: "pids", res: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](100)}},
			want: map[string]string{"pids.max": "100"}},
		{name: "pids unlimited", res: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}},
			want: map[string]string{"pids.max": "max"}},
		{name: "io weight", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)}},
			want: map[string]string{"io.weight": "4950"}},
		{name: "io throttle", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 100}}}},
			want: map[string]string{"io.max": "8:0 wiops=100"}},
		{name: "hugetlb", res: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}},
			want: map[string]string{"hugetlb.2MB.max": "4194304"}},
		{name: "unified", res: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}},
			want: map[string]string{"memory.high": "1000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, m, _ := fakeV2(t, "/berth/abc")
			if err := m.Create(tt.res); err != nil {
				t.Fatalf("Create: %v", err)
			}
			for name, want := range tt.want {
				if got := readFileT(t, filepath.Join(root, "berth/abc", name)); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			// Controllers handed down at every level above the leaf.
			for _, dir := range []string{root, filepath.Join(root, "berth")} {
				if got := readFileT(t, filepath.Join(dir, "cgroup.subtree_control")); !strings.Contains(got, "+memory") || !strings.Contains(got, "+pids") {
					t.Errorf("%s/cgroup.subtree_control = %q, want memory and pids enabled", dir, got)
				}
			}
		})
	}
}

func TestV2FakeUpdate(t *testing.T) {
	root, m, installed := fakeV2(t, "/berth/abc")
	if err := m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 30)}}); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(root, "berth/abc")
	steps := []struct {
		name string
		res  specs.LinuxResources
		want map[string]string
	}{
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](50)}}, map[string]string{"pids.max": "50"}},
		{"swap alone uses the limit in place", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](3 << 30)}},
			map[string]string{"memory.swap.max": "2147483648", "memory.max": "1073741824"}},
		{"period alone keeps the quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](50000)}},
			map[string]string{"cpu.max": "max 50000"}},
		{"devices", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false}, {Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3)}}}, nil},
	}
	for _, s := range steps {
		if err := m.Update(&s.res); err != nil {
			t.Fatalf("Update %s: %v", s.name, err)
		}
		for name, want := range s.want {
			if got := readFileT(t, filepath.Join(leaf, name)); got != want {
				t.Errorf("%s: %s = %q, want %q", s.name, name, got, want)
			}
		}
	}
	if len(*installed) != 1 || len((*installed)[0]) != 2 {
		t.Errorf("device rules installed: %v", *installed)
	}

	// With io.bfq.weight present, the weight goes there unconverted.
	writeFiles(t, leaf, map[string]string{"io.bfq.weight": "100"})
	if err := m.Update(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](500)}}); err != nil {
		t.Fatal(err)
	}
	if got := readFileT(t, filepath.Join(leaf, "io.bfq.weight")); got != "500" {
		t.Errorf("io.bfq.weight = %q, want 500", got)
	}

	// CheckBeforeUpdate refuses a limit below usage.
	writeFiles(t, leaf, map[string]string{"memory.current": "10485760"})
	err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20), CheckBeforeUpdate: ptr(true)}})
	checkFieldErr(t, err, fieldMemLimit, "1048576 is below the current usage of 10485760 bytes", syscall.EBUSY)

	_, gone, _ := fakeV2(t, "/berth/gone")
	if err := gone.Update(&specs.LinuxResources{}); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Update of a missing cgroup: %v, want NotFound", err)
	}
}

func TestV2FakeCreateErrors(t *testing.T) {
	tests := []struct {
		name        string
		controllers []string
		res         specs.LinuxResources
		field, msg  string
		errno       error
	}{
		{name: "memory below minimum", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1024)}},
			field: fieldMemLimit, msg: "1024 is below the kernel minimum of 4096 bytes", errno: syscall.EINVAL},
		{name: "swap without limit", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](1 << 30)}},
			field: fieldMemSwap, msg: "needs " + fieldMemLimit, errno: syscall.EINVAL},
		{name: "cpus beyond the host", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "99999"}},
			field: fieldCPUs, msg: `"99999" is not within the available CPUs 0-3`, errno: syscall.EINVAL},
		{name: "shares", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}},
			field: fieldCPUShares, errno: syscall.EINVAL},
		{name: "realtime", res: specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}},
			field: fieldCPURtRuntime, msg: "only on cgroup v1", errno: errors.ErrUnsupported},
		{name: "controller missing", controllers: []string{"memory", "pids"},
			res:   specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}, BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100)}},
			field: fieldBlkWeight, msg: "not supported here", errno: fs.ErrNotExist},
		{name: "unknown unified file", res: specs.LinuxResources{Unified: map[string]string{"memory.bogus": "1"}},
			field: fieldUnified + `["memory.bogus"]`, errno: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, m, _ := fakeV2(t, "/berth-new/abc", tt.controllers...)
			err := m.Create(&tt.res)
			checkFieldErr(t, err, tt.field, tt.msg, tt.errno)
			if exists(filepath.Join(root, "berth-new")) {
				t.Errorf("Create left %s behind", filepath.Join(root, "berth-new"))
			}
		})
	}
	// A parent that was there before stays.
	root, m, _ := fakeV2(t, "/kept/abc")
	if err := os.Mkdir(filepath.Join(root, "kept"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(root, "kept"), map[string]string{"cgroup.subtree_control": "", "cgroup.controllers": ""})
	if err := m.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "7"}}); err == nil {
		t.Fatal("Create with cpus 7 of 0-3 succeeded")
	}
	if !exists(filepath.Join(root, "kept")) || exists(filepath.Join(root, "kept/abc")) {
		t.Error("Create removed a parent it did not make, or left its leaf")
	}
}

func TestV2FakeLifecycle(t *testing.T) {
	root, m, _ := fakeV2(t, "/berth/abc")
	if _, err := Load("/berth/abc", Options{Root: root}); !errdefs.Is(err, errdefs.KindNotFound) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load before Create: %v, want NotFound", err)
	}
	if err := m.Create(nil); err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(root, "berth/abc")
	if l, err := Load("/berth/abc", Options{Root: root}); err != nil || l.Path() != "/berth/abc" {
		t.Fatalf("Load = %v, %v", l, err)
	}

	fd, ok, err := m.IntoFD()
	if err != nil || !ok {
		t.Fatalf("IntoFD = %d, %v, %v", fd, ok, err)
	}
	syscall.Close(fd)

	if err := m.Apply(42); err != nil {
		t.Fatal(err)
	}
	if got := readFileT(t, filepath.Join(leaf, "cgroup.procs")); got != "42" {
		t.Errorf("cgroup.procs = %q after Apply(42)", got)
	}
	if err := os.Mkdir(filepath.Join(leaf, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, filepath.Join(leaf, "sub"), map[string]string{"cgroup.procs": "7\n8\n"})
	pids, err := m.Pids()
	slices.Sort(pids)
	if err != nil || !slices.Equal(pids, []int{7, 8, 42}) {
		t.Errorf("Pids = %v, %v; want [7 8 42]", pids, err)
	}

	// The fake kernel reports the freezer state the write asks for.
	writeFiles(t, leaf, map[string]string{"cgroup.events": "populated 1\nfrozen 1\n"})
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := readFileT(t, filepath.Join(leaf, "cgroup.freeze")); got != "1" {
		t.Errorf("cgroup.freeze = %q after Freeze", got)
	}
	if frozen, err := m.Frozen(); !frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Freeze", frozen, err)
	}
	writeFiles(t, leaf, map[string]string{"cgroup.events": "populated 1\nfrozen 0\n"})
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Thaw", frozen, err)
	}

	writeFiles(t, leaf, map[string]string{
		"memory.current": "1234", "memory.max": "max", "memory.peak": "2000",
		"memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "memory.stat": "anon 10\nfile 20\n",
		"cpu.stat":     "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\nnr_throttled 1\nthrottled_usec 4\n",
		"pids.current": "2", "pids.max": "10",
		"io.stat": "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n",
	})
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		CPU:    CPUStats{UsageTotal: 5000, UsageUser: 3000, UsageKernel: 2000, Periods: 7, Throttled: 1, ThrottledNS: 4000},
		Memory: MemoryStats{Usage: 1234, MaxUsage: 2000, Limit: 0, Failcnt: 3, OOMKills: 1, Cache: 20},
		Pids:   PidsStats{Current: 2, Limit: 10},
		BlkIO:  BlkIOStats{ReadBytes: 101, WriteBytes: 202},
	}
	if *st != want {
		t.Errorf("Stats = %+v\nwant    %+v", *st, want)
	}

	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if exists(leaf) {
		t.Error("Destroy left the leaf")
	}
	if !exists(filepath.Join(root, "berth")) {
		t.Error("Destroy removed the shared parent")
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestMode(t *testing.T) {
	tests := []struct {
		name  string
		files []string // dirs end in /
		want  string
	}{
		{"v2", []string{"cgroup.controllers"}, ModeV2},
		{"v1", []string{"memory/", "cpu/", "pids/"}, ModeV1},
		{"hybrid", []string{"memory/", "cpu/", "unified/", "unified/cgroup.controllers"}, ModeHybrid},
		{"empty unified is v1", []string{"memory/", "unified/"}, ModeV1},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				var err error
				if strings.HasSuffix(f, "/") {
					err = os.MkdirAll(p, 0o755)
				} else {
					err = os.WriteFile(p, nil, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := Mode(root)
			if tt.want == "" {
				if err == nil || !errdefs.Is(err, errdefs.KindUnavailable) {
					t.Fatalf("Mode = %q, %v; want an Unavailable error", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Mode = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
