package e2e

// Helpers for the engine tests: a berth root with a busybox image "bb"
// imported, and a cleanup that removes every container, stops the root's
// monitor and fails the test if a mount, cgroup or process is left.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type engineEnv struct {
	*imageEnv
	started time.Time
	// The env's own default bridge, nft table and subnet, so that roots
	// never share one and cleanup knows what to look for.
	bridge, table string
	subnet        string
}

// envSeq numbers the engine envs of this test process.
var envSeq atomic.Int32

func newEngineEnv(t *testing.T, flags ...string) *engineEnv {
	t.Helper()
	ie := newImageEnv(t, flags...)
	e := &engineEnv{imageEnv: ie, started: time.Now()}
	// A cgroup parent of its own: what is left under it is this test's.
	ie.cgroupParent = fmt.Sprintf("/berth-e2e-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_"))
	n := envSeq.Add(1)
	e.bridge = fmt.Sprintf("bte%d-%d", os.Getpid()%10000, n)
	e.table = fmt.Sprintf("berth_e2e_%d_%d", os.Getpid(), n)
	// 10.240.0.0/12 is far from docker's and podman's defaults and from
	// this machine's routes; one /24 per env.
	e.subnet = fmt.Sprintf("10.%d.%d.0/24", 240+int(n/250)%10, 1+int(n)%250)
	ie.extraEnv = []string{"BERTH_BRIDGE=" + e.bridge, "BERTH_NFT_TABLE=" + e.table, "BERTH_SUBNET_POOL=" + e.subnet}
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
	e.checkNetworkGone()
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

// checkNetworkGone fails the test if a veth of a container is left, then
// deletes the env's bridge and nft table (the default network outlives
// its containers, as docker0 does).
func (e *engineEnv) checkNetworkGone() {
	// Host ends of veths go when their container's namespace does, which
	// the kernel finishes in the background.
	var left []string
	for i := 0; i < 100; i++ {
		left = left[:0]
		out, _ := exec.Command("ip", "-o", "link", "show", "master", e.bridge).Output()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				left = append(left, line)
			}
		}
		if len(left) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range left {
		e.t.Errorf("leaked veth: %s", l)
	}
	_ = exec.Command("ip", "link", "del", e.bridge).Run()
	_ = exec.Command("nft", "delete", "table", "ip", e.table).Run()
}
