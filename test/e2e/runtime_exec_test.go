package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/seccomp"
)

func TestRuntimeExecJoinsNamespaces(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	b.Spec.Hostname = "execbox"
	b.Save(t)
	pid := r.detached(b, id)

	res := r.exec(id, "sh", "-c", `echo pid=$$; cat /proc/1/comm; hostname; for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done; cat /proc/self/cgroup`)
	if res.code != 0 {
		t.Fatalf("exec: %d %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) < 9 {
		t.Fatalf("exec printed %q", res.stdout)
	}
	if lines[0] == "pid=1" || lines[1] != "sleep" || lines[2] != "execbox" {
		t.Errorf("exec sees pid %q, pid 1 %q, hostname %q: want the container's", lines[0], lines[1], lines[2])
	}
	for _, l := range lines[3:9] {
		name, link, _ := strings.Cut(l, "=")
		if want := readlinkT(t, fmt.Sprintf("/proc/%d/ns/%s", pid, name)); link != want {
			t.Errorf("exec's %s namespace is %s, init's %s", name, link, want)
		}
	}
	// In the container's cgroup (the cgroup namespace shows it as /).
	for _, l := range lines[9:] {
		if strings.Contains(l, ":memory:") && !strings.HasSuffix(l, ":/") {
			t.Errorf("exec's cgroup: %s", l)
		}
	}
}

func TestRuntimeExecProcessOptions(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	r.detached(b, id)

	if res := r.exec(id, "sh", "-c", "exit 7"); res.code != 7 {
		t.Errorf("exit code: %d, want 7 (stderr %q)", res.code, res.stderr)
	}
	if res := r.exec(id, "sh", "-c", "kill -TERM $$"); res.code != 128+15 {
		t.Errorf("killed by SIGTERM: exit %d, want 143", res.code)
	}
	res := r.berth("exec", "--env", "FOO=bar", "--user", "1000:1001", "--cwd", "/tmp", id, "sh", "-c", `echo "$FOO $(id -u) $(id -g) $(pwd)"`)
	if strings.TrimSpace(res.stdout) != "bar 1000 1001 /tmp" {
		t.Errorf("exec --env --user --cwd: stdout %q stderr %q", res.stdout, res.stderr)
	}

	// --env overrides the container's value, as with runc (last one wins).
	res = r.berth("exec", "--env", "HOME=/override", id, "env")
	var homes []string
	for _, kv := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(kv, "HOME=") {
			homes = append(homes, kv)
		}
	}
	if len(homes) != 1 || homes[0] != "HOME=/override" {
		t.Errorf("exec --env HOME=/override: environment has %q (stderr %q)", homes, res.stderr)
	}
	res = r.berth("exec", "--cwd", "/no/such/dir", id, "true")
	checkOneLineError(t, "exec --cwd /no/such/dir", res, "process.cwd", "/no/such/dir")
	res = r.berth("exec", "--user", "1000", "--additional-gids", "10", "--additional-gids", "20", id, "id")
	if strings.TrimSpace(res.stdout) != "uid=1000 gid=0(root) groups=10,20" {
		t.Errorf("exec --user 1000 --additional-gids 10,20: %q (stderr %q)", res.stdout, res.stderr)
	}

	umask := uint32(0o077)
	proc := specs.Process{
		Args: []string{"sh", "-c", `echo "$GREETING $(id -u) $(pwd) $(umask)"`},
		Env:  []string{"PATH=/bin", "GREETING=hello"},
		Cwd:  "/proc",
		User: specs.User{UID: 65534, GID: 65534, Umask: &umask},
	}
	data, err := json.Marshal(proc)
	if err != nil {
		t.Fatal(err)
	}
	processFile := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(processFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res = r.berth("exec", "--process", processFile, id)
	if strings.TrimSpace(res.stdout) != "hello 65534 /proc 0077" {
		t.Errorf("exec --process: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}

	if res := r.exec(id, "/no/such/program"); res.code == 0 || !strings.Contains(res.stderr, "/no/such/program") {
		t.Errorf("exec of a missing program: code %d stderr %q", res.code, res.stderr)
	}
}

func TestRuntimeExecDetachPidFile(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	initPid := r.detached(b, id)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.must("exec", "--detach", "--pid-file", pidFile, id, "sleep", "999")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file holds %q", data)
	}
	// The process may still be on its way to execve when exec returns.
	waitFor(t, func() bool {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return string(cmdline) == "sleep\x00999\x00"
	})
	if a, b := readlinkT(t, fmt.Sprintf("/proc/%d/ns/pid", pid)), readlinkT(t, fmt.Sprintf("/proc/%d/ns/pid", initPid)); a != b {
		t.Errorf("detached exec in pid namespace %s, container in %s", a, b)
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.must("ps", "--format", "json", id)), &pids); err != nil || len(pids) != 2 {
		t.Errorf("ps after a detached exec: %v (%v)", pids, err)
	}
}

func TestRuntimeExecIntoStoppedContainer(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "true")
	r.must("run", "--detach", "--bundle", b.Dir, id)
	waitFor(t, func() bool { return r.state(id).Status == "stopped" })
	res := r.exec(id, "true")
	checkOneLineError(t, "exec", res, id, "stopped")

	res = r.exec("no-such-container", "true")
	checkOneLineError(t, "exec", res, "no-such-container", "does not exist")
}

func TestRuntimeExecTerminal(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	r.detached(b, id)
	sock, masters := consoleSocket(t)
	done := make(chan result, 1)
	go func() {
		done <- r.berth("exec", "--tty", "--console-socket", sock, id, "sh", "-c", "tty; echo exec-tty")
	}()
	master := <-masters
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, master); err != nil && !errors.Is(err, unix.EIO) {
		t.Fatalf("read pty master: %v", err)
	}
	if res := <-done; res.code != 0 {
		t.Fatalf("exec --tty: %d %s", res.code, res.stderr)
	}
	if got := out.String(); !strings.Contains(got, "/dev/pts/") || !strings.Contains(got, "exec-tty\r\n") {
		t.Fatalf("exec's terminal output %q", got)
	}
}

func TestRuntimeExecKeepsSecurity(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	profile, err := seccomp.DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Linux.Seccomp = profile
	setCaps(b.Spec, withCap(dockerCaps, "CAP_SYS_ADMIN"))
	b.Save(t)
	pid := r.detached(b, id)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var initCaps string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapBnd:") || strings.HasPrefix(l, "CapEff:") {
			initCaps += l + "\n"
		}
	}
	res := r.exec(id, "sh", "-c", `grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; unshare -n true && echo unshare=ok; touch /x && echo rootfs=rw; true`)
	// In /proc/PID/status order.
	if want := initCaps + "NoNewPrivs:\t1\nSeccomp:\t2\n"; res.stdout != want {
		t.Errorf("exec: stdout %q, want %q (stderr %q)", res.stdout, want, res.stderr)
	}
	if !strings.Contains(res.stderr, "unshare(0x40000000): Operation not permitted") || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("exec: stderr %q, want EPERM from unshare and EROFS from touch", res.stderr)
	}
}

func TestRuntimeExecUserNamespace(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Save(t)
	pid := r.detached(b, id)
	res := r.exec(id, "sh", "-c", "id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map")
	f := strings.Fields(res.stdout)
	if res.code != 0 || len(f) != 5 || f[0] != "0" || f[1] != readlinkT(t, fmt.Sprintf("/proc/%d/ns/user", pid)) || f[3] != "100000" {
		t.Fatalf("exec into a user namespace: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}
