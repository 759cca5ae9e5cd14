package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	berthruntime "github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// podmanEnv runs podman with every path private to the test and berth as
// its OCI runtime (conmon drives it, as it drives crun or runc).
type podmanEnv struct {
	*clientEnv
	env    []string
	global []string
}

func newPodmanEnv(e *clientEnv) *podmanEnv {
	e.t.Helper()
	p := &podmanEnv{clientEnv: e}
	// No registry may be searched for a short name, and nothing of the
	// host's storage or engine configuration leaks in.
	files := map[string]string{
		"registries.conf": "unqualified-search-registries = []\n",
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			e.path("podman", "root"), e.path("podman", "runroot")),
		"containers.conf": "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
		"policy.json":     `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(e.path("podman-"+name), []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	p.env = []string{
		"CONTAINERS_REGISTRIES_CONF=" + e.path("podman-registries.conf"),
		"CONTAINERS_STORAGE_CONF=" + e.path("podman-storage.conf"),
		"CONTAINERS_CONF=" + e.path("podman-containers.conf"),
	}
	p.global = []string{
		"--root", e.path("podman", "root"),
		"--runroot", e.path("podman", "runroot"),
		"--tmpdir", e.path("podman", "tmp"),
		"--volumepath", e.path("podman", "volumes"),
		"--network-config-dir", e.path("podman", "networks"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		// podman gives the runtime no --root, so berth keeps its state in
		// its default root, as runc does in /run/runc. (--runtime-flag
		// root=... would not reach the runtime calls of the cleanup
		// process that conmon starts when a container exits.)
		"--runtime", e.runtime,
	}
	return p
}

func (p *podmanEnv) podman(args ...string) cmdResult {
	p.t.Helper()
	return p.podmanIn("", args...)
}

// podmanIn runs podman with stdin.
func (p *podmanEnv) podmanIn(stdin string, args ...string) cmdResult {
	p.t.Helper()
	return p.client(p.env, stdin, "podman", append(append([]string{}, p.global...), args...)...)
}

func (p *podmanEnv) mustPodman(args ...string) string {
	p.t.Helper()
	res := p.podman(args...)
	if res.code != 0 {
		p.t.Fatalf("podman %s: %s", strings.Join(args, " "), res)
	}
	return strings.TrimSpace(res.stdout)
}

// TestClientsPodman runs containers with `podman --runtime berth-runtime`.
func TestClientsPodman(t *testing.T) {
	e := newClientEnv(t, "podman", "conmon")
	p := newPodmanEnv(e)
	// Remove every container, however the test ended (podman has no
	// daemon: this is all the stopping there is).
	t.Cleanup(func() {
		p.podman("rm", "--all", "--force", "--time", "0")
		p.podman("system", "reset", "--force")
		// berth's state of this test's containers is in berth's default
		// root: delete what podman could not.
		entries, _ := os.ReadDir(berthruntime.DefaultRoot)
		for _, ent := range entries {
			st, err := berthState(berthruntime.DefaultRoot, ent.Name())
			if bundle, _ := st["bundle"].(string); err == nil && strings.HasPrefix(bundle, e.dir+"/") {
				t.Errorf("podman left container %s in berth's root", ent.Name())
				e.client(nil, "", testutil.Binary(t), "runtime", "delete", "--force", ent.Name())
			}
		}
	})

	p.mustPodman("import", e.rootfsTar(), testImage)
	nofile, nproc := ulimits()
	run := []string{"run", "--network", "none", "--pull", "never",
		"--cgroup-parent", "/" + e.cgroupName("podman"),
		// podman's defaults are above what a sandbox may raise to.
		"--ulimit", nofile, "--ulimit", nproc}

	// A container that prints and exits with a code of its own.
	res := p.podman(append(run, "--rm", testImage, "sh", "-c",
		"echo hello from berth; hostname; grep -E '^(Name|Pid|NoNewPrivs|Seccomp|CapBnd):' /proc/self/status; exit 3")...)
	if res.code != 3 {
		t.Fatalf("podman run: want exit 3, got %s", res)
	}
	t.Logf("podman run printed:\n%s", res.stdout)
	for _, want := range []string{"hello from berth", "Name:\tgrep", "Seccomp:\t2"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("podman run output lacks %q:\n%s", want, res)
		}
	}

	// stdin reaches the container through conmon.
	res = p.podmanIn("piped input\n", append(run, "--rm", "-i", testImage, "cat")...)
	if res.code != 0 || strings.TrimSpace(res.stdout) != "piped input" {
		t.Fatalf("podman run -i: %s", res)
	}

	// A failing create: berth's error reaches the user.
	res = p.podman(append(run, "--rm", testImage, "/no/such/binary")...)
	if res.code == 0 || !strings.Contains(res.stderr, "/no/such/binary") {
		t.Fatalf("podman run of a missing binary: want an error naming it, got %s", res)
	}
	t.Logf("podman run of a missing binary said (exit %d): %s", res.code, strings.TrimSpace(res.stderr))

	// A terminal: conmon passes --console-socket.
	res = p.podman(append(run, "--rm", "-t", testImage, "sh", "-c", "tty")...)
	if res.code != 0 || !strings.Contains(res.stdout, "/dev/pts/0") {
		t.Fatalf("podman run -t: want a tty at /dev/pts/0, got %s", res)
	}

	// A long-running one.
	id := p.mustPodman(append(run, "--detach", "--name", "long", testImage, "sleep", "1000")...)
	if dir, err := findBerthState(berthruntime.DefaultRoot, id); err != nil {
		t.Fatalf("berth did not run the container: %v", err)
	} else {
		t.Logf("berth state at %s", dir)
	}
	if got := p.mustPodman("inspect", "--format", "{{.OCIRuntime}} {{.State.Status}}", "long"); !strings.HasSuffix(got, "berth-runtime running") {
		t.Fatalf("inspect: %q, want berth-runtime running", got)
	}
	res = p.podman("exec", "long", "sh", "-c", "echo exec says hi; exit 5")
	if res.code != 5 || !strings.Contains(res.stdout, "exec says hi") {
		t.Fatalf("podman exec: want exit 5 and output, got %s", res)
	}
	res = p.podman("exec", "-t", "long", "tty")
	if res.code != 0 || !strings.Contains(res.stdout, "/dev/pts/") {
		t.Fatalf("podman exec -t: %s", res)
	}
	p.mustPodman("exec", "--detach", "long", "sh", "-c", "echo detached > /tmp/marker")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := p.podman("exec", "long", "cat", "/tmp/marker"); r.code == 0 && strings.TrimSpace(r.stdout) == "detached" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("podman exec --detach did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := p.mustPodman("top", "long"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("podman top: %q", out)
	}
	p.mustPodman("pause", "long")
	if got := p.mustPodman("inspect", "--format", "{{.State.Status}}", "long"); got != "paused" {
		t.Errorf("after pause: %q", got)
	}
	p.mustPodman("unpause", "long")
	p.mustPodman("stop", "--time", "1", "long")
	if got := p.mustPodman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "long"); got != "exited 137" {
		t.Errorf("after stop: %q, want \"exited 137\"", got)
	}
	p.mustPodman("rm", "long")
	if dir, err := findBerthState(berthruntime.DefaultRoot, id); err == nil {
		t.Errorf("berth's state of the removed container is still there: %s", dir)
	}
}
