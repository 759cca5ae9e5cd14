package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// containerdEnv is a private containerd: its own root, state, sockets.
type containerdEnv struct {
	*clientEnv
	sock string
	ns   string
}

// startContainerd starts containerd with a config that names only paths
// under the test's directory and disables what a test does not need
// (CRI, which would also want a network).
func startContainerd(e *clientEnv) *containerdEnv {
	e.t.Helper()
	c := &containerdEnv{clientEnv: e, sock: e.path("containerd.sock"), ns: e.tag}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, e.path("containerd", "root"), e.path("containerd", "state"), c.sock, e.path("containerd-ttrpc.sock"), e.path("containerd", "opt"))
	cfg := e.path("containerd.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		e.t.Fatal(err)
	}
	d := e.startDaemon("containerd", nil, "containerd", "--config", cfg)
	e.waitSocket(d, c.sock, 20*time.Second)
	return c
}

// ctr runs ctr against the private containerd, in the test's namespace.
func (c *containerdEnv) ctr(args ...string) cmdResult {
	c.t.Helper()
	return c.client(nil, "", "ctr", append([]string{"--address", c.sock, "--namespace", c.ns}, args...)...)
}

func (c *containerdEnv) mustCtr(args ...string) string {
	c.t.Helper()
	res := c.ctr(args...)
	if res.code != 0 {
		c.t.Fatalf("ctr %s: %s", strings.Join(args, " "), res)
	}
	return res.stdout
}

// TestClientsContainerd runs containers with `ctr run --runc-binary
// berth-runtime`: containerd's runc v2 shim drives berth as it drives runc.
func TestClientsContainerd(t *testing.T) {
	e := newClientEnv(t, "containerd", "ctr", "containerd-shim-runc-v2")
	c := startContainerd(e)
	runcRoot := e.path("runc-root")
	cgParent := "/" + e.cgroupName("ctr")
	// Runs before the daemon stops (cleanups run last in, first out):
	// remove whatever a failed test left, through containerd.
	var ids []string
	t.Cleanup(func() {
		for _, id := range ids {
			c.ctr("task", "kill", "--signal", "SIGKILL", id)
			c.ctr("task", "delete", "--force", id)
			c.ctr("container", "delete", id)
		}
	})

	c.mustCtr("images", "import", e.ociArchive(e.rootfsTar(), testImage))
	if out := c.mustCtr("images", "list", "--quiet"); !strings.Contains(out, testImage) {
		t.Fatalf("image %s not imported: %q", testImage, out)
	}

	run := func(id string, extra []string, args ...string) cmdResult {
		t.Helper()
		ids = append(ids, id)
		full := append([]string{"run", "--runc-binary", e.runtime, "--runc-root", runcRoot, "--fifo-dir", e.path("fifo"),
			"--cgroup", cgParent + "/" + id}, extra...)
		full = append(full, testImage, id)
		return c.ctr(append(full, args...)...)
	}

	// A container that prints and exits with a code of its own.
	res := run("hello", []string{"--rm"}, "sh", "-c", "echo hello from berth; hostname; grep -E '^(Name|Pid|NoNewPrivs|Seccomp):' /proc/self/status; exit 3")
	if res.code != 3 {
		t.Fatalf("ctr run: want exit 3, got %s", res)
	}
	t.Logf("ctr run printed:\n%s", res.stdout)
	for _, want := range []string{"hello from berth", "Pid:\t", "Name:\tgrep"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("ctr run output lacks %q:\n%s", want, res)
		}
	}

	// A long-running one: berth's state proves berth runs it; exec into
	// it, pause and resume it, kill it.
	res = run("long", []string{"--detach", "--null-io"}, "sleep", "1000")
	if res.code != 0 {
		t.Fatalf("ctr run --detach: %s", res)
	}
	if dir, err := findBerthState(runcRoot, "long"); err != nil {
		t.Fatalf("berth did not run the container: %v", err)
	} else {
		t.Logf("berth state at %s", dir)
	}
	if out := c.mustCtr("task", "list"); !strings.Contains(out, "RUNNING") {
		t.Fatalf("task list: %q", out)
	}
	res = c.ctr("task", "exec", "--fifo-dir", e.path("fifo"), "--exec-id", "e1", "long", "sh", "-c", "echo exec says hi; exit 4")
	if res.code != 4 || !strings.Contains(res.stdout, "exec says hi") {
		t.Fatalf("ctr task exec: want exit 4 and output, got %s", res)
	}
	c.mustCtr("task", "pause", "long")
	if out := c.mustCtr("task", "list"); !strings.Contains(out, "PAUSED") {
		t.Fatalf("after pause, task list: %q", out)
	}
	c.mustCtr("task", "resume", "long")
	if out := c.mustCtr("task", "ps", "long"); !strings.Contains(out, "PID") {
		t.Fatalf("task ps: %q", out)
	}
	// --all: every process of the container, as containerd asks runc.
	c.mustCtr("task", "kill", "--all", "--signal", "SIGKILL", "long")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := c.mustCtr("task", "list")
		if strings.Contains(out, "STOPPED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task did not stop after SIGKILL: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mustCtr("task", "delete", "long")
	c.mustCtr("container", "delete", "long")
	if _, err := os.Stat(runcRoot + "/" + c.ns + "/long"); !os.IsNotExist(err) {
		t.Errorf("berth's state of the deleted container is still there (%v)", err)
	}
}
