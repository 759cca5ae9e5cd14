package tini

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// envMain makes the test binary act as berth-init: the tests re-execute
// themselves with it so that berth-init runs as a real process, as PID 1
// of a new PID namespace when root.
const envMain = "BERTH_TINI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMain) == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// tiniCmd prepares berth-init with args. As root it is PID 1 of a new PID
// namespace, as in a container; otherwise it registers as a subreaper (-s)
// so that orphans still come to it.
func tiniCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	sys := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		sys.Cloneflags = unix.CLONE_NEWPID
	} else {
		args = append([]string{"-s"}, args...)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envMain+"=1")
	cmd.SysProcAttr = sys
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("berth-init did not run: %v", err)
	}
	return ee.ExitCode()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string // exact, unless wantUsage
		wantUsage  bool
	}{
		{name: "true", args: []string{"--", "/bin/true"}, wantCode: 0},
		{name: "false from PATH", args: []string{"--", "false"}, wantCode: 1},
		{name: "exit status", args: []string{"--", "sh", "-c", "exit 3"}, wantCode: 3},
		{name: "no dashdash", args: []string{"sh", "-c", "echo $0 $1; exit 5", "a", "b"}, wantCode: 5, wantStdout: "a b\n"},
		{name: "killed", args: []string{"--", "sh", "-c", "kill -KILL $$"}, wantCode: 137},
		{name: "terminated", args: []string{"--", "sh", "-c", "kill -TERM $$"}, wantCode: 143},
		{name: "remapped", args: []string{"-e", "3", "--", "sh", "-c", "exit 3"}, wantCode: 0},
		{name: "missing file", args: []string{"--", "/nonexistent/cmd"}, wantCode: 127,
			wantStderr: "berth-init: exec /nonexistent/cmd: no such file or directory\n"},
		{name: "not in PATH", args: []string{"--", "berth-no-such-command"}, wantCode: 127,
			wantStderr: "berth-init: exec berth-no-such-command: executable file not found in $PATH\n"},
		{name: "not executable", args: []string{"--", plain}, wantCode: 126,
			wantStderr: "berth-init: exec " + plain + ": permission denied\n"},
		{name: "directory", args: []string{"--", dir}, wantCode: 126,
			wantStderr: "berth-init: exec " + dir + ": permission denied\n"},
		{name: "no program", args: []string{"-g", "--"}, wantCode: 1, wantUsage: true,
			wantStderr: "berth-init: no program to run\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			cmd := tiniCmd(t, tt.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code := exitCode(t, cmd.Run())
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if got := stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", got, tt.wantStdout)
			}
			got := stderr.String()
			if tt.wantUsage {
				if !strings.HasPrefix(got, tt.wantStderr) || !strings.Contains(got, "Usage: berth-init") {
					t.Errorf("stderr = %q, want %q and the usage", got, tt.wantStderr)
				}
			} else if got != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", got, tt.wantStderr)
			}
		})
	}
}

// lineReader hands out the lines a process writes, as they come.
type lineReader struct {
	ch  chan string
	mu  sync.Mutex
	all strings.Builder
}

func readLines(r io.Reader) *lineReader {
	lr := &lineReader{ch: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			lr.mu.Lock()
			lr.all.WriteString(line + "\n")
			lr.mu.Unlock()
			lr.ch <- line
		}
		close(lr.ch)
	}()
	return lr
}

// waitFor returns the lines before the first line that contains want.
func (lr *lineReader) waitFor(t *testing.T, want string) []string {
	t.Helper()
	var before []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-lr.ch:
			if !ok {
				lr.mu.Lock()
				defer lr.mu.Unlock()
				t.Fatalf("output ended before %q; got:\n%s", want, lr.all.String())
			}
			if strings.Contains(line, want) {
				return before
			}
			before = append(before, line)
		case <-timeout:
			lr.mu.Lock()
			defer lr.mu.Unlock()
			t.Fatalf("no %q after 10s; got:\n%s", want, lr.all.String())
		}
	}
}

func TestSignalForwarding(t *testing.T) {
	for _, sig := range []syscall.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH} {
		for _, group := range []bool{false, true} {
			name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
			t.Run(fmt.Sprintf("%s/group=%v", name, group), func(t *testing.T) {
				t.Parallel()
				script := fmt.Sprintf("trap 'echo got %s; exit 42' %s; echo ready; while :; do sleep 0.05; done", name, name)
				args := []string{"--", "sh", "-c", script}
				if group {
					args = append([]string{"-g"}, args...)
				}
				cmd := tiniCmd(t, args...)
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				lines := readLines(stdout)
				lines.waitFor(t, "ready")
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				lines.waitFor(t, "got "+name)
				if code := exitCode(t, cmd.Wait()); code != 42 {
					t.Errorf("exit code = %d, want 42 (stderr %q)", code, stderr.String())
				}
			})
		}
	}
}

// children lists the processes whose parent is pid, with their state
// letter (Z for zombies), from /proc.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	kids := make(map[int]string)
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(p)
		if err != nil {
			continue // exited meanwhile
		}
		if st.ppid == pid {
			kids[p] = string(st.state)
		}
	}
	return kids
}

type procStat struct {
	state                      byte
	ppid, pgrp, session, tpgid int
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// parseStat reads the fields of /proc/PID/stat that follow "(comm)":
// state ppid pgrp session tty_nr tpgid.
func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("bad stat %q", s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 6 {
		return procStat{}, fmt.Errorf("bad stat %q", s)
	}
	st := procStat{state: f[0][0]}
	for _, x := range []struct {
		dst *int
		s   string
	}{{&st.ppid, f[1]}, {&st.pgrp, f[2]}, {&st.session, f[3]}, {&st.tpgid, f[5]}} {
		n, err := strconv.Atoi(x.s)
		if err != nil {
			return procStat{}, fmt.Errorf("bad stat %q", s)
		}
		*x.dst = n
	}
	return st, nil
}

func TestReapsOrphans(t *testing.T) {
	// Each inner shell exits at once and leaves its sleep to berth-init,
	// which must reap it when it ends, while the main child lives on.
	script := `for i in 1 2 3 4 5; do sh -c 'sleep 0.5 &'; done; echo spawned; sleep 1; echo ready; exec sleep 60`
	cmd := tiniCmd(t, "--", "sh", "-c", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	init := cmd.Process.Pid
	lines := readLines(stdout)

	lines.waitFor(t, "spawned")
	if kids := children(t, init); len(kids) < 6 {
		t.Fatalf("berth-init has %d children, want the main child and 5 orphans: %v", len(kids), kids)
	}
	lines.waitFor(t, "ready")
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids := children(t, init)
		if len(kids) == 1 {
			for _, state := range kids {
				if state == "Z" {
					t.Fatalf("the main child is a zombie while berth-init runs")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphans not reaped: children of berth-init (pid: state) %v, want only the main child", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The main child was exec'd into sleep: SIGTERM kills it, and
	// berth-init reports that as 128+15.
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd.Wait()); code != 143 {
		t.Errorf("exit code = %d, want 143", code)
	}
}

// openPTY opens a new pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	// Control keeps the master non-blocking, so closing it ends a Read.
	if err := rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatalf("unlock pty: %v", ioErr)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestForegroundTTY(t *testing.T) {
	master, slave := openPTY(t)
	script := `trap 'echo got INT; exit 42' INT; cat /proc/self/stat; echo ready; while :; do sleep 0.05; done`
	cmd := tiniCmd(t, "--", "sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// berth-init leads a session whose controlling terminal is the pty,
	// as PID 1 of a container started with -t.
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	lines := readLines(master)
	before := lines.waitFor(t, "ready")
	var st procStat
	var err error
	for _, line := range before {
		if strings.Contains(line, "(cat)") {
			st, err = parseStat(line)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if st.pgrp == 0 {
		t.Fatalf("no stat line from cat in %q", before)
	}
	init := cmd.Process.Pid
	if st.pgrp == init || st.ppid == init || st.pgrp != st.ppid {
		t.Errorf("child's process group = %d (berth-init %d, shell %d), want the shell's own group", st.pgrp, init, st.ppid)
	}
	if st.tpgid != st.pgrp {
		t.Errorf("terminal's foreground group = %d, want the child's group %d", st.tpgid, st.pgrp)
	}
	// Ctrl-C: the terminal sends SIGINT to the foreground group.
	if _, err := master.Write([]byte{3}); err != nil {
		t.Fatal(err)
	}
	lines.waitFor(t, "got INT")
	if code := exitCode(t, cmd.Wait()); code != 42 {
		t.Errorf("exit code = %d, want 42", code)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "plain"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, file, want string
		wantErr                bool
	}{
		{name: "slash used as is", path: dir, file: "./x/y", want: "./x/y"},
		{name: "found", path: "/nonexistent:" + dir, file: "exe", want: exe},
		{name: "executable later in PATH wins", path: dir + ":" + other, file: "plain", want: filepath.Join(other, "plain")},
		{name: "only a plain file", path: dir, file: "plain", want: plain},
		{name: "directory left to exec to refuse", path: filepath.Dir(dir), file: filepath.Base(dir), want: dir},
		{name: "not found", path: dir, file: "nope", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			got, err := lookPath(tt.file)
			if tt.wantErr {
				if !errors.Is(err, errNotFound) {
					t.Fatalf("lookPath(%q) = %q, %v; want errNotFound", tt.file, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("lookPath(%q) = %q, %v; want %q", tt.file, got, err, tt.want)
			}
		})
	}
}
