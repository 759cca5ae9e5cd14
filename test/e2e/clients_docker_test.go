package e2e

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// dockerEnv is a private dockerd (which starts its own containerd) with
// berth registered as the runtime "berth".
type dockerEnv struct {
	*clientEnv
	env      []string
	execRoot string
}

func startDockerd(e *clientEnv) *dockerEnv {
	e.t.Helper()
	sock := e.path("docker.sock")
	cfg := e.path("daemon.json")
	// A configuration of its own: nothing from /etc/docker/daemon.json (no
	// mirrors, no default runtime) leaks in; its identity key stays here
	// rather than in /etc/docker.
	config := fmt.Sprintf("{\"deprecated-key-path\": %q}\n", e.path("docker-key.json"))
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		e.t.Fatal(err)
	}
	d := &dockerEnv{clientEnv: e, execRoot: e.path("docker-exec")}
	if err := os.MkdirAll(e.path("docker-config"), 0o700); err != nil {
		e.t.Fatal(err)
	}
	d.env = []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + e.path("docker-config")}
	dd := e.startDaemon("dockerd", nil, "dockerd",
		"--config-file", cfg,
		"--data-root", e.path("docker-data"),
		"--exec-root", d.execRoot,
		"--pidfile", e.path("dockerd.pid"),
		"-H", "unix://"+sock,
		"--storage-driver", "vfs",
		"--bridge", "none",
		"--iptables=false",
		"--ip6tables=false",
		"--ip-masq=false",
		"--userland-proxy=false",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/"+e.cgroupName("docker"),
		"--add-runtime", "berth="+e.runtime,
		"--log-level", "debug",
	)
	e.waitSocket(dd, sock, 40*time.Second)
	return d
}

func (d *dockerEnv) docker(args ...string) cmdResult {
	d.t.Helper()
	return d.client(d.env, "", "docker", args...)
}

func (d *dockerEnv) mustDocker(args ...string) string {
	d.t.Helper()
	res := d.docker(args...)
	if res.code != 0 {
		d.t.Fatalf("docker %s: %s", strings.Join(args, " "), res)
	}
	return strings.TrimSpace(res.stdout)
}

// TestClientsDocker runs containers with `docker run --runtime berth`:
// dockerd hands berth to containerd's runc v2 shim as its runc binary.
func TestClientsDocker(t *testing.T) {
	e := newClientEnv(t, "dockerd", "docker", "containerd", "containerd-shim-runc-v2")
	d := startDockerd(e)
	// Before dockerd stops: remove every container, however the test ended.
	t.Cleanup(func() {
		res := d.docker("ps", "--all", "--quiet", "--no-trunc")
		for _, id := range strings.Fields(res.stdout) {
			d.docker("rm", "--force", id)
		}
	})

	d.mustDocker("import", e.rootfsTar(), testImage)
	run := []string{"run", "--runtime", "berth", "--network", "none", "--pull", "never"}

	// A container that prints and exits with a code of its own.
	res := d.docker(append(run, "--rm", testImage, "sh", "-c",
		"echo hello from berth; hostname; grep -E '^(Name|Pid|NoNewPrivs|Seccomp|CapBnd):' /proc/self/status; exit 3")...)
	if res.code != 3 {
		t.Fatalf("docker run: want exit 3, got %s", res)
	}
	t.Logf("docker run printed:\n%s", res.stdout)
	// Docker's defaults reach berth: its seccomp profile (2 = filter).
	for _, want := range []string{"hello from berth", "Name:\tgrep", "Seccomp:\t2"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("docker run output lacks %q:\n%s", want, res)
		}
	}

	// stdin reaches the container through the shim's fifo.
	res = d.client(d.env, "piped input\n", "docker", append(run, "--rm", "-i", testImage, "cat")...)
	if res.code != 0 || strings.TrimSpace(res.stdout) != "piped input" {
		t.Fatalf("docker run -i: %s", res)
	}

	// A failing create: berth's error reaches the user through --log
	// (JSON), and docker maps "not found" to 127 as it does for runc.
	res = d.docker(append(run, "--rm", testImage, "/no/such/binary")...)
	if res.code != 127 || !strings.Contains(res.stderr, "/no/such/binary") {
		t.Fatalf("docker run of a missing binary: want exit 127 and an error naming it, got %s", res)
	}
	t.Logf("docker run of a missing binary said: %s", strings.TrimSpace(res.stderr))

	// A terminal: docker passes --console-socket.
	res = d.docker(append(run, "--rm", "-t", testImage, "sh", "-c", "tty; stty size")...)
	if res.code != 0 || !strings.Contains(res.stdout, "/dev/pts/0") {
		t.Fatalf("docker run -t: want a tty at /dev/pts/0, got %s", res)
	}

	// A long-running one.
	id := d.mustDocker(append(run, "--detach", "--name", "long", testImage, "sleep", "1000")...)
	if dir, err := findBerthState(d.execRoot, id); err != nil {
		t.Fatalf("berth did not run the container: %v", err)
	} else {
		t.Logf("berth state at %s", dir)
	}
	if got := d.mustDocker("inspect", "--format", "{{.HostConfig.Runtime}} {{.State.Status}}", "long"); got != "berth running" {
		t.Fatalf("inspect: %q, want \"berth running\"", got)
	}

	// exec: output and exit code, a terminal, and a detached one.
	res = d.docker("exec", "long", "sh", "-c", "echo exec says hi; exit 5")
	if res.code != 5 || !strings.Contains(res.stdout, "exec says hi") {
		t.Fatalf("docker exec: want exit 5 and output, got %s", res)
	}
	res = d.docker("exec", "-t", "long", "tty")
	if res.code != 0 || !strings.Contains(res.stdout, "/dev/pts/") {
		t.Fatalf("docker exec -t: %s", res)
	}
	d.mustDocker("exec", "--detach", "long", "sh", "-c", "echo detached > /tmp/marker")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := d.docker("exec", "long", "cat", "/tmp/marker"); r.code == 0 && strings.TrimSpace(r.stdout) == "detached" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("docker exec --detach did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := d.mustDocker("top", "long"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("docker top: %q", out)
	}
	d.mustDocker("pause", "long")
	if got := d.mustDocker("inspect", "--format", "{{.State.Status}}", "long"); got != "paused" {
		t.Errorf("after pause: %q", got)
	}
	d.mustDocker("unpause", "long")

	// update goes through `berth-runtime update --resources -`.
	d.mustDocker("update", "--memory", "64m", "--memory-swap", "128m", "long")
	cg := e.cgroups[0] + "/" + id
	limit, err := os.ReadFile("/sys/fs/cgroup/memory/" + cg + "/memory.limit_in_bytes")
	if errors.Is(err, os.ErrNotExist) {
		limit, err = os.ReadFile("/sys/fs/cgroup/" + cg + "/memory.max") // cgroup v2 only
	}
	if err != nil || strings.TrimSpace(string(limit)) != "67108864" {
		t.Errorf("after docker update --memory 64m: limit %q (%v)", limit, err)
	}

	// stop: sleep as pid 1 ignores SIGTERM, so docker kills it.
	start := time.Now()
	d.mustDocker("stop", "--time", "1", "long")
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("docker stop took %v", took)
	}
	if got := d.mustDocker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "long"); got != "exited 137" {
		t.Errorf("after stop: %q, want \"exited 137\"", got)
	}
	// Started again, the same id is created anew.
	d.mustDocker("start", "long")
	if got := d.mustDocker("exec", "long", "echo", "again"); got != "again" {
		t.Errorf("exec after restart: %q", got)
	}
	d.mustDocker("rm", "--force", "long")
	if dir, err := findBerthState(d.execRoot, id); err == nil {
		t.Errorf("berth's state of the removed container is still there: %s", dir)
	}
}
