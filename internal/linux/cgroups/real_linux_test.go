package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// These tests change the host's cgroups: they need root, use unique names
// (/berth-test-<random>) and remove everything in t.Cleanup, even on failure.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups under /sys/fs/cgroup")
	}
}

func testPath(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "/berth-test-" + hex.EncodeToString(b)
}

// v1Root skips unless the host has v1 controllers.
func v1Root(t *testing.T) (root string, hybrid bool) {
	t.Helper()
	requireRoot(t)
	mode, err := Mode(DefaultRoot)
	if err != nil || mode == ModeV2 {
		t.Skipf("needs a cgroup v1 or hybrid host; %s is %q (%v)", DefaultRoot, mode, err)
	}
	return DefaultRoot, mode == ModeHybrid
}

// v2Root is a real cgroup2 hierarchy: the root on v2 hosts, unified/ on hybrid ones.
func v2Root(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	mode, err := Mode(DefaultRoot)
	switch {
	case err != nil:
		t.Skipf("no cgroupfs at %s: %v", DefaultRoot, err)
	case mode == ModeV2:
		return DefaultRoot
	case mode == ModeHybrid:
		return filepath.Join(DefaultRoot, "unified")
	}
	t.Skip("needs a cgroup2 hierarchy; this host is v1 only")
	return ""
}

// cleanupCgroup removes path (and its top directory) from every hierarchy
// under root, whatever the manager did.
func cleanupCgroup(t *testing.T, root, path string) {
	t.Helper()
	top := "/" + strings.Split(strings.Trim(path, "/"), "/")[0]
	t.Cleanup(func() {
		mounts := []string{root, filepath.Join(root, "unified")}
		for _, name := range v1Names {
			mounts = append(mounts, filepath.Join(root, name))
		}
		for _, mnt := range mounts {
			if dir := filepath.Join(mnt, top); isDir(dir) && dir != mnt {
				if err := kernelDirs.removeTree(dir); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
	})
}

// start runs argv and kills it in t.Cleanup.
func start(t *testing.T, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kill(cmd) })
	return cmd
}

func kill(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(readFileT(t, path), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestV1Real(t *testing.T) {
	root, hybrid := v1Root(t)
	path := testPath(t)
	cleanupCgroup(t, root, path)
	m, err := New(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.IntoFD(); ok {
		t.Error("IntoFD ok on v1")
	}
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](128 << 20)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](100)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
		},
	}
	if err := m.Create(res); err != nil {
		t.Fatalf("Create: %v", err)
	}
	checks := map[string]string{
		"memory/memory.limit_in_bytes": "67108864",
		"cpu/cpu.shares":               "512",
		"cpu/cpu.cfs_quota_us":         "50000",
		"pids/pids.max":                "100",
		"devices/devices.list":         "c 1:3 rwm",
	}
	if exists(filepath.Join(root, "memory", path, "memory.memsw.limit_in_bytes")) {
		checks["memory/memory.memsw.limit_in_bytes"] = "134217728"
	}
	for file, want := range checks {
		ctrl, name, _ := strings.Cut(file, "/")
		if got := readFileT(t, filepath.Join(root, ctrl, path, name)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := readFileT(t, filepath.Join(root, "cpuset", path, "cpuset.cpus")); got == "" {
		t.Error("cpuset.cpus not copied from the parent")
	}
	if hybrid && !isDir(filepath.Join(root, "unified", path)) {
		t.Error("no unified/ directory on a hybrid host")
	}

	// The shell execs sleep once it is in the cgroup, so that its memory is charged there.
	sh := exec.Command("sh", "-c", "read x; exec sleep 1000")
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, sh)
	pid := sh.Process.Pid
	if err := m.Apply(pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := io.WriteString(stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	if pids, err := m.Pids(); err != nil || !slices.Contains(pids, pid) {
		t.Errorf("Pids = %v, %v; want %d in it", pids, err, pid)
	}
	if hybrid {
		if got := readFileT(t, filepath.Join(root, "unified", path, "cgroup.procs")); got != strconv.Itoa(pid) {
			t.Errorf("unified cgroup.procs = %q, want %d", got, pid)
		}
	}

	if err := m.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](50)}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := readFileT(t, filepath.Join(root, "pids", path, "pids.max")); got != "50" {
		t.Errorf("pids.max = %q after Update, want 50", got)
	}

	var st *Stats
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err = m.Stats(); err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if st.Memory.Usage > 0 || time.Now().After(deadline) {
			break
		}
	}
	if st.Memory.Usage == 0 || st.Memory.Limit != 64<<20 || st.Pids.Current != 1 || st.Pids.Limit != 50 {
		t.Errorf("Stats = %+v; want memory usage > 0, limit 64MiB, 1 of 50 pids", *st)
	}

	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if frozen, err := m.Frozen(); !frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Freeze", frozen, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if frozen, err := m.Frozen(); frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Thaw", frozen, err)
	}

	// A limit below what the process uses: the kernel refuses, the limit stays.
	err = m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](8192)}})
	checkFieldErr(t, err, fieldMemLimit, "8192 is below the current usage", unix.EBUSY)
	if got := readInt(t, filepath.Join(root, "memory", path, "memory.limit_in_bytes")); got != 64<<20 {
		t.Errorf("memory.limit_in_bytes = %d after a refused update", got)
	}

	// Reopened by a later call.
	l, err := Load(path, Options{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if err := l.Destroy(); err == nil {
		t.Error("Destroy with a live process succeeded")
	}
	kill(sh)
	if err := l.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, name := range append(v1Names[:], "unified") {
		if dir := filepath.Join(root, name, path); exists(dir) {
			t.Errorf("Destroy left %s", dir)
		}
	}
	if _, err := Load(path, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load after Destroy: %v, want not found", err)
	}
}

func TestV1RealCreateErrors(t *testing.T) {
	root, _ := v1Root(t)
	tests := []struct {
		name, sub  string
		res        specs.LinuxResources
		field, msg string
		errno      error
	}{
		{name: "memory below minimum", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1024)}},
			field: fieldMemLimit, msg: "1024 is below the kernel minimum", errno: unix.EINVAL},
		{name: "cpus beyond the host", sub: "/child", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "99999"}},
			field: fieldCPUs, msg: `"99999" is not within the available CPUs`, errno: unix.EINVAL},
		{name: "kernel refuses realtime runtime", sub: "/child", res: specs.LinuxResources{CPU: &specs.LinuxCPU{
			RealtimePeriod: ptr[uint64](1000000), RealtimeRuntime: ptr[int64](1000000)}},
			field: fieldCPURtRuntime, msg: "refused by the kernel", errno: unix.EINVAL},
		{name: "unified on v1", res: specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}},
			field: fieldUnified, errno: errors.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testPath(t)
			cleanupCgroup(t, root, path)
			m, err := New(path+tt.sub, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.field == fieldCPURtRuntime && !exists(filepath.Join(root, "cpu", "cpu.rt_runtime_us")) {
				t.Skip("kernel without CONFIG_RT_GROUP_SCHED")
			}
			checkFieldErr(t, m.Create(&tt.res), tt.field, tt.msg, tt.errno)
			for _, name := range append(v1Names[:], "unified") {
				if dir := filepath.Join(root, name, path); exists(dir) {
					t.Errorf("Create left %s", dir)
				}
			}
		})
	}
}

func TestV2Real(t *testing.T) {
	root := v2Root(t)
	path := testPath(t)
	cleanupCgroup(t, root, path)
	m, err := New(path, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	res := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"}, // /dev/null
	}}
	ctrls, _ := readString(root, "cgroup.controllers")
	hasMemory := slices.Contains(strings.Fields(ctrls), "memory")
	if hasMemory {
		res.Memory = &specs.LinuxMemory{Limit: ptr[int64](64 << 20)}
	}
	if err := m.Create(res); err != nil {
		t.Fatalf("Create: %v", err)
	}
	dir := filepath.Join(root, path)
	if hasMemory {
		if got := readFileT(t, filepath.Join(dir, "memory.max")); got != "67108864" {
			t.Errorf("memory.max = %q", got)
		}
	}

	// run starts argv inside the cgroup with clone3(CLONE_INTO_CGROUP).
	run := func(argv ...string) *exec.Cmd {
		fd, ok, err := m.IntoFD()
		if err != nil || !ok {
			t.Fatalf("IntoFD = %v, %v", ok, err)
		}
		defer syscall.Close(fd)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		return start(t, cmd)
	}
	if err := run("sh", "-c", "echo > /dev/null").Wait(); err != nil {
		t.Errorf("writing /dev/null, allowed: %v", err)
	}
	if err := run("sh", "-c", "head -c1 /dev/zero >/dev/null").Wait(); err == nil {
		t.Error("reading /dev/zero, denied, succeeded")
	}
	// Update replaces the filter: the old one must be gone.
	if err := m.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}); err != nil {
		t.Fatalf("Update devices: %v", err)
	}
	if err := run("sh", "-c", "head -c1 /dev/zero >/dev/null").Wait(); err != nil {
		t.Errorf("reading /dev/zero after allowing all: %v", err)
	}

	sleep := run("sleep", "1000")
	other := start(t, exec.Command("sleep", "1000"))
	if err := m.Apply(other.Process.Pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	pids, err := m.Pids()
	if err != nil || !slices.Contains(pids, sleep.Process.Pid) || !slices.Contains(pids, other.Process.Pid) {
		t.Errorf("Pids = %v, %v; want %d and %d", pids, err, sleep.Process.Pid, other.Process.Pid)
	}

	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if frozen, err := m.Frozen(); !frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Freeze", frozen, err)
	}
	if ev := readFileT(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Errorf("cgroup.events = %q after Freeze", ev)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if frozen, err := m.Frozen(); frozen || err != nil {
		t.Errorf("Frozen = %v, %v after Thaw", frozen, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.CPU.UsageTotal == 0 || hasMemory && st.Memory.Usage == 0 {
		t.Errorf("Stats = %+v; want CPU (and memory) usage", *st)
	}

	kill(sleep)
	kill(other)
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if exists(dir) {
		t.Errorf("Destroy left %s", dir)
	}
}
