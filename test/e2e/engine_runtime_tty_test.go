package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// --runtime runc|crun|PATH: the engine drives another OCI runtime the same
// way: run, exec, stop, rm.
func TestEngineOtherRuntimes(t *testing.T) {
	e := newEngineEnv(t)
	for _, rt := range []string{"runc", "crun"} {
		path, err := exec.LookPath(rt)
		if err != nil {
			t.Logf("%s not installed: skipped", rt)
			continue
		}
		t.Run(rt, func(t *testing.T) {
			if got := e.must("run", "--rm", "--runtime", rt, "bb", "sh", "-c", "echo hi; exit 0"); got != "hi\n" {
				t.Fatalf("run: %q", got)
			}
			if res := e.berth("run", "--rm", "--runtime", path, "bb", "sh", "-c", "exit 3"); res.code != 3 {
				t.Fatalf("run by path: exit %d: %s", res.code, res.stderr)
			}
			if res := e.berth("run", "--rm", "--runtime", rt, "bb", "/nonexistent"); res.code != 127 {
				t.Fatalf("missing command: exit %d, want 127: %s", res.code, res.stderr)
			}
			name := "other-" + rt
			e.must("run", "-d", "--name", name, "--runtime", rt, "--memory", "64m", "bb", "sleep", "1000")
			if got := e.must("exec", name, "cat", "/proc/1/cmdline"); got != "sleep\x001000\x00" {
				t.Errorf("exec: pid 1 is %q", got)
			}
			if got := e.inspect(name, "{{.State.Status}} {{.HostConfig.Runtime}}"); got != "running "+rt {
				t.Errorf("inspect: %s", got)
			}
			e.must("stop", "-t", "1", name)
			if got := e.inspect(name, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 137" {
				t.Errorf("after stop: %s", got)
			}
			e.must("rm", name)
		})
	}
	res := e.berth("run", "--rm", "--runtime", "no-such-runtime", "bb", "true")
	if res.code != 125 || !strings.Contains(res.stderr, "unknown or invalid runtime name") {
		t.Errorf("unknown runtime: exit %d: %s", res.code, res.stderr)
	}
}

// run -it: the container gets a terminal of the client's size, the client's
// terminal is raw, input reaches it and ctrl-p ctrl-q detaches.
func TestEngineTerminal(t *testing.T) {
	e := newEngineEnv(t)
	runPty := func(args ...string) (*os.File, *exec.Cmd) {
		t.Helper()
		full := append([]string{"--root", e.root, "--runroot", e.runRoot}, args...)
		cmd := exec.Command(e.bin, full...)
		cmd.Env = append(append(os.Environ(), "BERTH_CGROUP_PARENT="+e.cgroupParent), e.extraEnv...)
		ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 101})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ptmx.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return ptmx, cmd
	}
	readUntil := func(r io.Reader, want string) string {
		t.Helper()
		var buf bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			b := make([]byte, 1024)
			for !strings.Contains(buf.String(), want) {
				n, err := r.Read(b)
				buf.Write(b[:n])
				if err != nil {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %q; got %q", want, buf.String())
		}
		return buf.String()
	}

	ptmx, cmd := runPty("run", "--rm", "-it", "bb", "sh", "-c", "tty; stty size; read line; echo got:$line")
	out := readUntil(ptmx, "33 101")
	if !strings.Contains(out, "/dev/pts/") {
		t.Errorf("tty: %q", out)
	}
	_, _ = ptmx.Write([]byte("hello\r"))
	readUntil(ptmx, "got:hello")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitCmd(ctx, t, cmd, 0)

	// Detach with ctrl-p ctrl-q: the container keeps running.
	ptmx, cmd = runPty("run", "-it", "--name", "tty1", "bb", "sh")
	readUntil(ptmx, "#")
	_, _ = ptmx.Write([]byte{16, 17})
	waitCmd(ctx, t, cmd, 0)
	if got := e.inspect("tty1", "{{.State.Status}}"); got != "running" {
		t.Errorf("after detaching: %s", got)
	}
	e.must("rm", "-f", "tty1")
}

func waitCmd(ctx context.Context, t *testing.T, cmd *exec.Cmd, want int) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if code != want {
			t.Fatalf("exit %d, want %d", code, want)
		}
	case <-ctx.Done():
		t.Fatalf("client did not exit")
	}
}
