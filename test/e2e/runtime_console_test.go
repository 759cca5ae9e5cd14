package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// consoleSocket listens on a unix socket, as a runtime's caller does for
// --console-socket, and delivers the pty master it receives.
func consoleSocket(t *testing.T) (path string, master <-chan *os.File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *os.File, 1)
	go func() {
		defer close(ch)
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Errorf("receive from console socket: %v", err)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Errorf("console socket: control messages %v (%v)", msgs, err)
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Errorf("console socket: fds %v (%v)", fds, err)
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

func TestRuntimeConsoleSocket(t *testing.T) {
	r := newRuntimeEnv(t)
	sock, masters := consoleSocket(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", `tty; read line; echo "got:$line"`)
	b.Spec.Process.Terminal = true
	b.Save(t)
	r.must("create", "--console-socket", sock, "--bundle", b.Dir, id)
	master := <-masters
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	r.must("start", id)
	if _, err := master.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	// Read until the container's side closes (EIO on a pty master).
	var out bytes.Buffer
	_, err := io.Copy(&out, master)
	if err != nil && !errors.Is(err, unix.EIO) {
		t.Fatalf("read pty master: %v", err)
	}
	got := strings.ReplaceAll(out.String(), "\r\n", "\n")
	if !strings.Contains(got, "/dev/pts/0\n") || !strings.Contains(got, "got:ping\n") {
		t.Fatalf("container's terminal output %q", got)
	}
	waitFor(t, func() bool { return r.state(id).Status == "stopped" })
	r.must("delete", id)
}

func TestRuntimeTerminalNeedsConsoleSocket(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "true")
	b.Spec.Process.Terminal = true
	b.Save(t)
	res := r.berth("create", "--bundle", b.Dir, id)
	checkOneLineError(t, "create", res, "process.terminal", "--console-socket")
	checkNothingLeft(t, r, id)
}

func TestRuntimePreserveFDs(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	// Only 0-2 and the preserved 3 reach the program: ls lists the fds of
	// the shell (pid 1), which runs it as a child.
	b := r.bundle(id, "sh", "-c", `echo via-fd3 >&3; ls /proc/1/fd; true`)
	extra, err := os.CreateTemp(t.TempDir(), "fd3")
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	cmd := exec.Command(r.bin, "runtime", "--root", r.root, "run", "--preserve-fds", "1", "--bundle", b.Dir, id)
	cmd.ExtraFiles = []*os.File{extra}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run --preserve-fds 1: %v %s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "0 1 2 3" {
		t.Errorf("fds in the container: %q, want 0 1 2 3", got)
	}
	data, err := os.ReadFile(extra.Name())
	if err != nil || string(data) != "via-fd3\n" {
		t.Errorf("preserved fd 3 got %q (%v)", data, err)
	}

	// exec passes them too.
	id = r.newID()
	b = r.bundle(id, "sleep", "1000")
	r.detached(b, id)
	cmd = exec.Command(r.bin, "runtime", "--root", r.root, "exec", "--preserve-fds", "1", id, "sh", "-c", `echo exec-fd3 >&3; ls /proc/$$/fd; true`)
	cmd.ExtraFiles = []*os.File{extra}
	if out, err = cmd.Output(); err != nil {
		t.Fatalf("exec --preserve-fds 1: %v %s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "0 1 2 3" {
		t.Errorf("fds in the exec'd process: %q, want 0 1 2 3", got)
	}
	data, err = os.ReadFile(extra.Name())
	if err != nil || string(data) != "via-fd3\nexec-fd3\n" {
		t.Errorf("preserved fd 3 got %q (%v)", data, err)
	}
}

func TestRuntimeNoPivot(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", `cat /marker; awk '$5 == "/" {print $4}' /proc/self/mountinfo`)
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "marker"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.berth("run", "--no-pivot", "--bundle", b.Dir, id)
	if res.code != 0 {
		t.Fatalf("run --no-pivot: %d %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || lines[0] != "inside" {
		t.Fatalf("run --no-pivot printed %q", res.stdout)
	}
	// The root mount is the bundle's rootfs directory.
	if !strings.HasSuffix(b.Rootfs(), lines[1]) || !strings.HasSuffix(lines[1], "/rootfs") {
		t.Errorf("root mount's source: %q", lines[1])
	}

	// exec joins the mount namespace and lands in the same root.
	id = r.newID()
	b.Spec.Process.Args = []string{"sleep", "1000"}
	b.Spec.Linux.CgroupsPath = "/" + id
	b.Save(t)
	r.must("run", "--detach", "--no-pivot", "--bundle", b.Dir, id)
	if res := r.exec(id, "sh", "-c", "cat /marker; ls /"); !strings.HasPrefix(res.stdout, "inside\n") || strings.Contains(res.stdout, "work") {
		t.Errorf("exec into a --no-pivot container: stdout %q stderr %q", res.stdout, res.stderr)
	}
}
