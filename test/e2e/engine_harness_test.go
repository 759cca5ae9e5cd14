package e2e

// Helpers for the engine tests: a berth root with a busybox image "bb"
// imported, and a cleanup that removes every container, stops the root's
// monitor and fails the test if a mount, cgroup or process is left.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type engineEnv struct {
	*imageEnv
	started time.Time
}

func newEngineEnv(t *testing.T, flags ...string) *engineEnv {
	t.Helper()
	ie := newImageEnv(t, flags...)
	e := &engineEnv{imageEnv: ie, started: time.Now()}
	// A cgroup parent of its own: what is left under it is this test's.
	ie.cgroupParent = fmt.Sprintf("/berth-e2e-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	// Registered after newImageEnv's leak check, so it runs before it.
	t.Cleanup(e.cleanup)
	e.must("import", busyboxTar(t), "bb")
	return e
}

// cleanup removes every container and stops the monitor.
func (e *engineEnv) cleanup() {
	if ids := strings.Fields(e.berth("ps", "-aq", "--no-trunc").stdout); len(ids) > 0 {
		if res := e.berth(append([]string{"rm", "-f", "-v"}, ids...)...); res.code != 0 {
			e.t.Errorf("cleanup: rm -f: %s", res.stderr)
		}
	}
	e.stopMonitor()
	// Every container cgroup of this test is under its own parent, which
	// must be empty now; the parents go too.
	parents, _ := filepath.Glob("/sys/fs/cgroup/*" + e.cgroupParent)
	more, _ := filepath.Glob("/sys/fs/cgroup" + e.cgroupParent)
	for _, p := range append(parents, more...) {
		ents, _ := os.ReadDir(p)
		for _, d := range ents {
			if d.IsDir() {
				e.t.Errorf("leaked cgroup: %s", filepath.Join(p, d.Name()))
			}
		}
		_ = os.Remove(p)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.runRoot, "runtime")); len(ents) > 0 {
		for _, d := range ents {
			if !strings.HasPrefix(d.Name(), ".") {
				e.t.Errorf("leaked runtime state: %s", d.Name())
			}
		}
	}
}

// stopMonitor kills the root's monitor, if one runs, and waits for it.
func (e *engineEnv) stopMonitor() {
	data, err := os.ReadFile(filepath.Join(e.runRoot, "monitor.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run runs `berth run --rm bb ARGS...` and returns its stdout.
func (e *engineEnv) run(args ...string) string {
	e.t.Helper()
	return e.must(append([]string{"run", "--rm"}, args...)...)
}

// inspect returns one field of a container's inspect, by template.
func (e *engineEnv) inspect(ref, tmpl string) string {
	e.t.Helper()
	return strings.TrimSpace(e.must("inspect", "-f", tmpl, ref))
}
