package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRuntimeRunPrintsAndExits(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", "echo hello; exit 3")
	res := r.run(b, id)
	if res.code != 3 || strings.TrimSpace(res.stdout) != "hello" {
		t.Fatalf("run: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if out := r.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("run left a container behind: %q", out)
	}
}

func TestRuntimeCreateStartKillDelete(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("create", "--bundle", b.Dir, "--pid-file", pidFile, id)

	st := r.state(id)
	if st.Status != "created" || st.Pid <= 0 || st.Bundle != b.Dir {
		t.Fatalf("after create: %+v", st)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil || strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q (err %v), state pid %d", data, err, st.Pid)
	}
	// Not started yet: init still runs berth, not sleep.
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatalf("user process started before start")
	}
	if res := r.berth("create", "--bundle", b.Dir, id); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
		t.Fatalf("duplicate create: code %d stderr %q", res.code, res.stderr)
	}

	r.must("start", id)
	if st := r.state(id); st.Status != "running" {
		t.Fatalf("after start: %+v", st)
	}
	waitFor(t, func() bool {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Pid) + "/comm")
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	if res := r.berth("delete", id); res.code == 0 {
		t.Fatalf("delete of a running container succeeded")
	}
	r.must("kill", id, "KILL")
	waitFor(t, func() bool { return r.state(id).Status == "stopped" })
	r.must("delete", id)
	if res := r.berth("state", id); res.code == 0 {
		t.Fatalf("state after delete succeeded: %s", res.stdout)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
