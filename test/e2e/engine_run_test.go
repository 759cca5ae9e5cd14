package e2e

import (
	"strings"
	"testing"
)

// A container's output, exit code and the docker exit codes for failures.
func TestEngineRunBasics(t *testing.T) {
	e := newEngineEnv(t)
	if got := e.run("bb", "echo", "hello"); got != "hello\n" {
		t.Fatalf("run echo: %q", got)
	}
	res := e.berth("run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 7")
	if res.code != 7 || res.stdout != "out\n" || res.stderr != "err\n" {
		t.Fatalf("exit 7: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	res = e.berth("run", "--rm", "bb", "/nonexistent")
	if res.code != 127 {
		t.Fatalf("missing command: want 127, got %d: %s", res.code, res.stderr)
	}
	res = e.berth("run", "--rm", "--pull", "never", "nosuchimage")
	if res.code != 125 || !strings.Contains(res.stderr, "No such image") {
		t.Fatalf("unknown image: want 125 and No such image, got %d: %s", res.code, res.stderr)
	}
	res = e.berth("run", "--rm", "--memory", "bogus", "bb", "true")
	if res.code != 125 {
		t.Fatalf("bad flag value: want 125, got %d: %s", res.code, res.stderr)
	}
	// stdin with -i.
	res = e.berthStdin(strings.NewReader("piped\n"), "run", "--rm", "-i", "bb", "cat")
	if res.code != 0 || res.stdout != "piped\n" {
		t.Fatalf("run -i cat: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if out := e.must("ps", "-aq"); out != "" {
		t.Fatalf("--rm left containers: %q", out)
	}
}

// The lifecycle of a detached container: ps, logs, exec, stop, start, rm.
func TestEngineDetachedLifecycle(t *testing.T) {
	e := newEngineEnv(t)
	id := strings.TrimSpace(e.must("run", "-d", "--name", "web", "bb", "sh", "-c", "echo started; exec sleep 1000"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	if got := e.inspect("web", "{{.State.Status}} {{.State.Running}}"); got != "running true" {
		t.Fatalf("state: %s", got)
	}
	if ps := e.must("ps"); !strings.Contains(ps, "web") || !strings.Contains(ps, "Up ") {
		t.Fatalf("ps:\n%s", ps)
	}
	waitFor(t, func() bool { return e.berth("logs", "web").stdout == "started\n" })
	if out := e.must("exec", "web", "cat", "/etc/hostname"); out != id[:12]+"\n" {
		t.Fatalf("hostname: %q", out)
	}
	if res := e.berth("exec", "web", "sh", "-c", "exit 4"); res.code != 4 {
		t.Fatalf("exec exit code: %d", res.code)
	}
	res := e.berth("rm", "web")
	if res.code == 0 || !strings.Contains(res.stderr, "container is running") {
		t.Fatalf("rm of a running container: code %d: %s", res.code, res.stderr)
	}
	res = e.berth("run", "-d", "--name", "web", "bb", "true")
	if res.code != 125 || !strings.Contains(res.stderr, "is already in use") {
		t.Fatalf("name conflict: code %d: %s", res.code, res.stderr)
	}
	e.must("stop", "-t", "1", "web")
	if got := e.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 137" {
		t.Fatalf("after stop of a shell ignoring TERM: %s", got)
	}
	res = e.berth("exec", "web", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "is not running") {
		t.Fatalf("exec into a stopped container: code %d: %s", res.code, res.stderr)
	}
	e.must("start", "web")
	if got := e.inspect("web", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after start: %s", got)
	}
	if out := e.must("logs", "web"); out != "started\nstarted\n" {
		t.Fatalf("logs across two runs: %q", out)
	}
	e.must("rm", "-f", "web")
	if out := e.must("ps", "-aq"); out != "" {
		t.Fatalf("rm -f left: %q", out)
	}
}

// --ipc shareable / container:NAME share the IPC namespace and /dev/shm.
func TestEngineSharedIPC(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "-d", "--name", "donor", "--ipc", "shareable", "bb", "sh", "-c", "echo shared > /dev/shm/x; exec sleep 100")
	waitFor(t, func() bool { return e.berth("exec", "donor", "cat", "/dev/shm/x").stdout == "shared\n" })
	if got := e.run("--ipc", "container:donor", "bb", "cat", "/dev/shm/x"); got != "shared\n" {
		t.Errorf("joined /dev/shm: %q", got)
	}
	donorNS := e.must("exec", "donor", "readlink", "/proc/self/ns/ipc")
	if got := e.run("--ipc", "container:donor", "bb", "readlink", "/proc/self/ns/ipc"); got != donorNS {
		t.Errorf("ipc namespace %q, donor's %q", got, donorNS)
	}
	e.must("run", "-d", "--name", "private", "bb", "sleep", "100")
	res := e.berth("run", "--rm", "--ipc", "container:private", "bb", "true")
	if res.code != 125 || !strings.Contains(res.stderr, "non-shareable IPC") {
		t.Errorf("joining a private IPC: %d %s", res.code, res.stderr)
	}
}
