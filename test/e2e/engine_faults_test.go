package e2e

// What a user does wrong and what goes wrong around berth: a CLI or the
// monitor killed mid-way, many containers at once, logs read after the
// CLI is gone, and bad input with docker's errors and exit codes. The
// harness's cleanup fails a test that leaves a mount, cgroup, process or
// runtime state behind.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// monitorPid is the pid in the run root's monitor.pid, 0 if none.
func (e *engineEnv) monitorPid() int {
	data, err := os.ReadFile(filepath.Join(e.runRoot, "monitor.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// pidAlive reports whether pid runs (a zombie counts as ended).
func pidAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return false
}

// A CLI killed while attached leaves a running container that rm -f
// removes completely; with --rm the container still goes when it ends.
func TestEngineKilledCLI(t *testing.T) {
	e := newEngineEnv(t)

	t.Run("attached", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("att")
		cmd := e.command("run", "--name", "att", "bb", "sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(10*time.Second, func() bool {
			return e.berth("inspect", "-f", "{{.State.Status}}", "att").stdout == "running\n"
		}) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("attached container never ran")
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		// docker too keeps the container: the CLI is only a client.
		if got := e.inspect("att", "{{.State.Status}}"); got != "running" {
			t.Errorf("after kill -9 of the CLI: %s, want running", got)
		}
		e.must("rm", "-f", "att")
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("rm -f left %q", out)
		}
	})

	t.Run("attached --rm", func(t *testing.T) {
		e := e.forT(t)
		cmd := e.command("run", "--rm", "--name", "gone", "bb", "sh", "-c", "echo up; sleep 0.5")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if line != "up\n" {
			t.Fatalf("attached output: %q", line)
		}
		// The monitor removes it when it ends, with no CLI left to ask.
		if !waitUntil(10*time.Second, func() bool { return e.must("ps", "-aq") == "" }) {
			t.Errorf("--rm container of a killed CLI still there: %s", e.must("ps", "-a"))
		}
	})
}

// A container outlives its monitor: the next monitor adopts it, stop
// works, and its end is recorded even with no monitor to see it.
func TestEngineKilledMonitor(t *testing.T) {
	e := newEngineEnv(t)
	killMonitor := func(e *engineEnv) {
		e.t.Helper()
		pid := e.monitorPid()
		if pid <= 0 {
			e.t.Fatalf("no monitor.pid in %s", e.runRoot)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			e.t.Fatal(err)
		}
		if !waitUntil(5*time.Second, func() bool { return !pidAlive(pid) }) {
			e.t.Fatalf("monitor %d did not die", pid)
		}
	}

	t.Run("adopted", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("orphan")
		e.must("run", "-d", "--name", "orphan", "bb", "sleep", "1000")
		pid, _ := strconv.Atoi(e.inspect("orphan", "{{.State.Pid}}"))
		killMonitor(e)
		if got := e.inspect("orphan", "{{.State.Status}} {{.State.Pid}}"); got != "running "+strconv.Itoa(pid) {
			t.Errorf("after the monitor died: %s", got)
		}
		// Starting another container starts a new monitor, which must
		// watch the orphan, not declare it ended.
		if got := e.run("bb", "echo", "hi"); got != "hi\n" {
			t.Fatalf("run with a fresh monitor: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
		if got := e.inspect("orphan", "{{.State.Status}}"); got != "running" || !pidAlive(pid) {
			t.Fatalf("a new monitor ended the adopted container: %s, process alive %v", got, pidAlive(pid))
		}
		// stop reaches it through the new monitor.
		e.must("stop", "-t", "1", "orphan")
		if got := e.inspect("orphan", "{{.State.Status}}"); got != "exited" || pidAlive(pid) {
			t.Errorf("stop of the adopted container: %s, process alive %v", got, pidAlive(pid))
		}
		e.must("rm", "orphan")
	})

	t.Run("ends unwatched", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("unwatched")
		e.must("run", "-d", "--name", "unwatched", "bb", "sleep", "1000")
		pid, _ := strconv.Atoi(e.inspect("unwatched", "{{.State.Pid}}"))
		killMonitor(e)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(5*time.Second, func() bool { return !pidAlive(pid) }) {
			t.Fatalf("container process %d did not die", pid)
		}
		// No monitor saw the exit: ps and inspect find it ended, with
		// 255 for a code nobody knows.
		if ps := e.must("ps", "-a", "--format", "{{.Names}} {{.State}}"); ps != "unwatched exited\n" {
			t.Errorf("ps -a: %q", ps)
		}
		if got := e.inspect("unwatched", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"); got != "exited 255 false" {
			t.Errorf("inspect: %s, want exited 255 false", got)
		}
		e.must("rm", "-f", "unwatched")
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("rm -f left %q", out)
		}
	})

	t.Run("rm -f after", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("forced")
		e.must("run", "-d", "--name", "forced", "bb", "sleep", "1000")
		pid, _ := strconv.Atoi(e.inspect("forced", "{{.State.Pid}}"))
		killMonitor(e)
		e.must("rm", "-f", "forced")
		if pidAlive(pid) {
			t.Errorf("rm -f left the process %d running", pid)
		}
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("rm -f left %q", out)
		}
	})
}

// Twenty `run -d` at once: distinct IDs and names, all running, all gone
// after one rm -f.
func TestEngineParallelRuns(t *testing.T) {
	e := newEngineEnv(t)
	const n = 20
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := e.command("run", "-d", "bb", "sleep", "1000")
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			results[i] = result{stdout: out.String(), stderr: errb.String()}
			if err != nil {
				results[i].code = -1
				if ee, ok := err.(interface{ ExitCode() int }); ok {
					results[i].code = ee.ExitCode()
				}
			}
		}()
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, r := range results {
		id := strings.TrimSpace(r.stdout)
		if r.code != 0 || len(id) != 64 {
			t.Errorf("run %d: code %d stdout %q stderr %s", i, r.code, r.stdout, r.stderr)
			continue
		}
		ids[id] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct IDs from %d runs", len(ids), n)
	}
	names := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(e.must("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}")), "\n")
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || !ids[f[0]] || f[2] != "running" {
			t.Errorf("ps line %q", line)
			continue
		}
		names[f[1]] = true
	}
	if len(lines) != n || len(names) != n {
		t.Errorf("ps lists %d containers with %d distinct names, want %d:\n%s", len(lines), len(names), n, strings.Join(lines, "\n"))
	}
	e.must(append([]string{"rm", "-f"}, strings.Fields(e.must("ps", "-aq"))...)...)
	if out := e.must("ps", "-aq"); out != "" {
		t.Errorf("rm -f left %q", out)
	}
}

// Logs are kept by the monitor, not the CLI; logs -f follows to the end;
// --rm with -d; wait's exit code; signals reach the container.
func TestEngineDetachedOutput(t *testing.T) {
	e := newEngineEnv(t)
	const script = `for i in $(seq 1 10); do echo line$i; sleep 0.1; done`
	var want strings.Builder
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&want, "line%d\n", i)
	}

	t.Run("logs", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("talker")
		e.must("run", "-d", "--name", "talker", "bb", "sh", "-c", script)
		// -f from the start follows until the container exits.
		start := time.Now()
		if got := e.must("logs", "-f", "talker"); got != want.String() {
			t.Errorf("logs -f: %q", got)
		}
		if d := time.Since(start); d < 500*time.Millisecond {
			t.Errorf("logs -f returned after %v, before the container ended", d)
		}
		if got := e.inspect("talker", "{{.State.Status}}"); got != "exited" {
			t.Errorf("logs -f returned while the container is %s", got)
		}
		if got := e.must("logs", "talker"); got != want.String() {
			t.Errorf("logs after the end: %q", got)
		}
		if got := e.must("logs", "--tail", "2", "talker"); got != "line9\nline10\n" {
			t.Errorf("logs --tail 2: %q", got)
		}
		e.must("rm", "talker")
	})

	t.Run("logs while running", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("talker2")
		e.must("run", "-d", "--name", "talker2", "bb", "sh", "-c", "echo first; echo err >&2; sleep 1000")
		waitFor(t, func() bool { return e.berth("logs", "talker2").stdout == "first\n" })
		res := e.berth("logs", "talker2")
		if res.stdout != "first\n" || res.stderr != "err\n" {
			t.Errorf("logs keep the streams apart: stdout %q stderr %q", res.stdout, res.stderr)
		}
		e.must("rm", "-f", "talker2")
	})

	t.Run("rm -d", func(t *testing.T) {
		e := e.forT(t)
		e.must("run", "-d", "--rm", "--name", "brief", "bb", "sleep", "0.2")
		if !waitUntil(10*time.Second, func() bool { return e.must("ps", "-aq") == "" }) {
			t.Errorf("--rm -d container still there after it ended: %s", e.must("ps", "-a"))
		}
		res := e.berth("inspect", "brief")
		if res.code == 0 {
			t.Errorf("inspect of a removed container succeeded")
		}
	})

	t.Run("wait", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("w42", "w0")
		e.must("run", "-d", "--name", "w42", "bb", "sh", "-c", "sleep 0.2; exit 42")
		e.must("run", "-d", "--name", "w0", "bb", "true")
		if got := e.must("wait", "w42", "w0"); got != "42\n0\n" {
			t.Errorf("wait: %q", got)
		}
		// wait on an exited container answers at once.
		if got := e.must("wait", "w42"); got != "42\n" {
			t.Errorf("second wait: %q", got)
		}
		res := e.berth("wait", "nosuch")
		if res.code == 0 || !strings.Contains(res.stderr, "No such container") {
			t.Errorf("wait nosuch: %d: %s", res.code, res.stderr)
		}
		e.must("rm", "w42", "w0")
	})

	t.Run("kill -s", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("trapper")
		e.must("run", "-d", "--name", "trapper", "bb", "sh", "-c",
			`trap "echo got USR1" USR1; trap "echo got HUP; exit 5" HUP; echo ready; while :; do sleep 0.05; done`)
		waitFor(t, func() bool { return e.berth("logs", "trapper").stdout == "ready\n" })
		e.must("kill", "-s", "USR1", "trapper")
		waitFor(t, func() bool { return e.berth("logs", "trapper").stdout == "ready\ngot USR1\n" })
		if got := e.inspect("trapper", "{{.State.Status}}"); got != "running" {
			t.Errorf("after a handled USR1: %s", got)
		}
		e.must("kill", "--signal", "SIGHUP", "trapper")
		if got := strings.TrimSpace(e.must("wait", "trapper")); got != "5" {
			t.Errorf("exit after HUP: %s", got)
		}
		res := e.berth("kill", "trapper")
		if res.code == 0 || !strings.Contains(res.stderr, "is not running") {
			t.Errorf("kill of a stopped container: %d: %s", res.code, res.stderr)
		}
		e.must("start", "trapper")
		res = e.berth("kill", "-s", "NOSUCHSIG", "trapper")
		if res.code == 0 || !strings.Contains(res.stderr, "NOSUCHSIG") {
			t.Errorf("kill -s NOSUCHSIG: %d: %s", res.code, res.stderr)
		}
		e.must("kill", "trapper")
		if got := e.inspect("trapper", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 137" {
			t.Errorf("after kill: %s", got)
		}
		e.must("rm", "trapper")
	})
}

// Bad input: docker's messages and exit codes, and nothing left behind.
func TestEngineBadInput(t *testing.T) {
	e := newEngineEnv(t)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing bind source", []string{"run", "--rm", "--mount", "type=bind,src=" + missing + ",dst=/x", "bb", "true"}, 125, "bind source path does not exist"},
		{"unknown image", []string{"run", "--rm", "--pull", "never", "nosuchimage", "true"}, 125, "No such image"},
		{"bad restart", []string{"run", "-d", "--restart", "sometimes", "bb", "true"}, 125, "restart policy"},
		{"start unknown", []string{"start", "nosuch"}, 1, "No such container: nosuch"},
		{"stop unknown", []string{"stop", "nosuch"}, 1, "No such container: nosuch"},
		{"rm unknown", []string{"rm", "nosuch"}, 1, "No such container: nosuch"},
		{"exec unknown", []string{"exec", "nosuch", "true"}, 1, "No such container: nosuch"},
		{"logs unknown", []string{"logs", "nosuch"}, 1, "No such container: nosuch"},
		{"bad name", []string{"create", "--name", "bad/name", "bb", "true"}, 125, "Invalid container name"},
		{"bad memory", []string{"run", "--rm", "--memory", "lots", "bb", "true"}, 125, "memory"},
		{"missing command", []string{"run", "--rm", "bb", "/no/such/command"}, 127, ""},
		{"not executable", []string{"run", "--rm", "bb", "/etc/passwd"}, 126, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := e.forT(t).berth(tt.args...)
			if res.code != tt.code || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("berth %s: want %d and %q, got %d: %s", strings.Join(tt.args, " "), tt.code, tt.want, res.code, res.stderr)
			}
		})
	}
	if out := e.must("ps", "-aq"); out != "" {
		t.Errorf("failed commands left containers: %q", out)
	}

	t.Run("container state", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("busy")
		e.must("run", "-d", "--name", "busy", "bb", "sleep", "1000")
		res := e.berth("rm", "busy")
		if res.code != 1 || !strings.Contains(res.stderr, "container is running") {
			t.Errorf("rm of a running container without -f: %d: %s", res.code, res.stderr)
		}
		res = e.berth("run", "-d", "--name", "busy", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, `The container name "/busy" is already in use`) {
			t.Errorf("duplicate name: %d: %s", res.code, res.stderr)
		}
		res = e.berth("create", "--name", "busy", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "is already in use") {
			t.Errorf("create with a duplicate name: %d: %s", res.code, res.stderr)
		}
		e.must("stop", "-t", "0", "busy")
		res = e.berth("exec", "busy", "true")
		if res.code == 0 || !strings.Contains(res.stderr, "is not running") {
			t.Errorf("exec into a stopped container: %d: %s", res.code, res.stderr)
		}
		// A stopped container is removed without -f; twice is an error.
		e.must("rm", "busy")
		res = e.berth("rm", "busy")
		if res.code != 1 || !strings.Contains(res.stderr, "No such container: busy") {
			t.Errorf("second rm: %d: %s", res.code, res.stderr)
		}
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("left containers: %q", out)
		}
	})
}
