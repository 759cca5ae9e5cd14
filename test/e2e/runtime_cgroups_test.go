package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupFile reads a v1 controller file of container id's cgroup on the host.
func cgroupFile(t *testing.T, controller, id, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, id, name))
	if err != nil {
		t.Fatalf("read host cgroup file: %v", err)
	}
	return strings.TrimSpace(string(data))
}

func requireV1(t *testing.T, controllers ...string) {
	t.Helper()
	for _, c := range controllers {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cgroup.procs")); err != nil {
			t.Skipf("needs the cgroup v1 %s controller: %v", c, err)
		}
	}
}

type eventStats struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data struct {
		Memory struct {
			Usage    uint64 `json:"usage"`
			Limit    uint64 `json:"limit"`
			OOMKills uint64 `json:"oomKills"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
	} `json:"data"`
}

func (r *runtimeEnv) stats(id string) eventStats {
	r.t.Helper()
	out := r.must("events", "--stats", id)
	var ev eventStats
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		r.t.Fatalf("events --stats printed %q: %v", out, err)
	}
	if ev.Type != "stats" || ev.ID != id {
		r.t.Fatalf("events --stats: %+v", ev)
	}
	return ev
}

func TestRuntimeMemoryLimitOOMKills(t *testing.T) {
	requireV1(t, "memory")
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	limit := int64(32 << 20)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	b.Save(t)
	r.detached(b, id)

	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != strconv.FormatInt(limit, 10) {
		t.Fatalf("host memory.limit_in_bytes = %s, want %d", got, limit)
	}
	if res := r.exec(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); strings.TrimSpace(res.stdout) != strconv.FormatInt(limit, 10) {
		t.Fatalf("limit seen inside: %+v", res)
	}
	if ev := r.stats(id); ev.Data.Memory.OOMKills != 0 || ev.Data.Memory.Usage == 0 || ev.Data.Memory.Limit != uint64(limit) {
		t.Fatalf("stats before the allocation: %+v", ev.Data.Memory)
	}
	// tail keeps the whole newline-free input in memory: 100 MiB > 32 MiB.
	res := r.exec(id, "sh", "-c", "head -c 100m /dev/zero | tail; echo rc=$?")
	// The kernel usually kills tail, which holds the memory; under load it
	// sometimes picks the shell itself, and exec then exits 137.
	if strings.TrimSpace(res.stdout) != "rc=137" && !(res.stdout == "" && res.code == 137) {
		t.Fatalf("allocation past the limit: stdout %q stderr %q code %d, want rc=137 (SIGKILL)", res.stdout, res.stderr, res.code)
	}
	if ev := r.stats(id); ev.Data.Memory.OOMKills == 0 {
		t.Fatalf("events --stats reports no OOM kill: %+v", ev.Data.Memory)
	}
	// The container's init was not the victim.
	if st := r.state(id); st.Status != "running" {
		t.Fatalf("after the OOM kill: %+v", st)
	}

	// When the victim is the container's own program, run exits as a
	// shell would for SIGKILL.
	id = r.newID()
	b = r.bundle(id, "tail", "/dev/zero")
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	b.Save(t)
	if res := r.run(b, id); res.code != 137 {
		t.Fatalf("run of a program past its memory limit: exit %d, want 137 (stderr %q)", res.code, res.stderr)
	}
}

func TestRuntimePidsLimitStopsFork(t *testing.T) {
	requireV1(t, "pids")
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", "i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i+1)); done; echo started $i")
	limit := int64(10)
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	b.Save(t)
	res := r.run(b, id)
	if !strings.Contains(res.stderr, "can't fork") {
		t.Fatalf("20 processes under pids.limit 10: code %d stdout %q stderr %q, want \"can't fork\"", res.code, res.stdout, res.stderr)
	}
}

func TestRuntimeUpdateChangesLimits(t *testing.T) {
	requireV1(t, "memory", "pids", "cpu")
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	limit, pids := int64(64<<20), int64(50)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	b.Save(t)
	r.detached(b, id)

	for _, tc := range []struct{ memory, pids string }{
		{strconv.Itoa(48 << 20), "20"},
		{strconv.Itoa(128 << 20), "100"},
	} {
		r.must("update", "--memory", tc.memory, "--pids-limit", tc.pids, id)
		if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != tc.memory {
			t.Errorf("host memory.limit_in_bytes = %s, want %s", got, tc.memory)
		}
		if got := cgroupFile(t, "pids", id, "pids.max"); got != tc.pids {
			t.Errorf("host pids.max = %s, want %s", got, tc.pids)
		}
		res := r.exec(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max")
		if got := strings.Fields(res.stdout); !slices.Equal(got, []string{tc.memory, tc.pids}) {
			t.Errorf("limits seen inside: %q (stderr %q), want %s %s", got, res.stderr, tc.memory, tc.pids)
		}
		if ev := r.stats(id); strconv.FormatUint(ev.Data.Memory.Limit, 10) != tc.memory || strconv.FormatUint(ev.Data.Pids.Limit, 10) != tc.pids {
			t.Errorf("events --stats limits: memory %d pids %d", ev.Data.Memory.Limit, ev.Data.Pids.Limit)
		}
	}
	// A JSON document of linux.resources on stdin, as containerd sends it.
	shares := uint64(512)
	data, err := json.Marshal(specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}})
	if err != nil {
		t.Fatal(err)
	}
	if res := r.berthIn("", data, "update", "--resources", "-", id); res.code != 0 {
		t.Fatalf("update --resources -: %d %s", res.code, res.stderr)
	}
	if got := cgroupFile(t, "cpu", id, "cpu.shares"); got != "512" {
		t.Errorf("cpu.shares after update --resources: %s", got)
	}
	// Unlimited again.
	r.must("update", "--pids-limit", "-1", id)
	if got := cgroupFile(t, "pids", id, "pids.max"); got != "max" {
		t.Errorf("pids.max after --pids-limit -1 = %s", got)
	}
	if res := r.berth("update", "--memory", "1024", id); res.code == 0 || !strings.Contains(res.stderr, "linux.resources.memory.limit") {
		t.Errorf("update to an impossible limit: code %d stderr %q", res.code, res.stderr)
	}
}

func TestRuntimePauseResume(t *testing.T) {
	requireV1(t, "freezer")
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", "sleep 1000 & exec sleep 1000")
	pid := r.detached(b, id)
	var pids []int
	waitFor(t, func() bool {
		if err := json.Unmarshal([]byte(r.must("ps", "--format", "json", id)), &pids); err != nil {
			t.Fatalf("ps --format json: %v", err)
		}
		return len(pids) == 2
	})
	if !slices.Contains(pids, pid) {
		t.Fatalf("ps lists %v, without init %d", pids, pid)
	}

	r.must("pause", id)
	if st := r.state(id); st.Status != "paused" {
		t.Fatalf("after pause: %+v", st)
	}
	if got := cgroupFile(t, "freezer", id, "freezer.state"); got != "FROZEN" {
		t.Fatalf("freezer.state = %s", got)
	}
	for _, p := range pids {
		if st := procState(t, p); st != "D" && st != "T" {
			// TASK_FROZEN shows as D (or T with the old freezer).
			t.Errorf("paused process %d is in state %s", p, st)
		}
	}
	if res := r.exec(id, "true"); res.code == 0 || !strings.Contains(res.stderr, "paused") {
		t.Errorf("exec into a paused container: code %d stderr %q", res.code, res.stderr)
	}
	if res := r.berth("pause", id); res.code == 0 {
		t.Errorf("second pause succeeded")
	}

	r.must("resume", id)
	if st := r.state(id); st.Status != "running" {
		t.Fatalf("after resume: %+v", st)
	}
	for _, p := range pids {
		if st := procState(t, p); st != "S" {
			t.Errorf("resumed process %d is in state %s", p, st)
		}
	}
	if res := r.berth("resume", id); res.code == 0 {
		t.Errorf("resume of a running container succeeded")
	}
	// A paused container is still killed and deleted cleanly.
	r.must("pause", id)
	r.must("delete", "--force", id)
}

// procState is the one-letter state of pid from /proc/PID/stat.
func procState(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}
