package e2e

// stats, update, commit, cp, events, version, system prune and info's
// container counts, driven through the binary.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestEngineStats(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "-d", "--name", "st", "--memory", "64m", "bb", "sleep", "1000")
	out := e.must("stats", "--no-stream")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") ||
		!strings.Contains(lines[0], "MEM USAGE / LIMIT") || !strings.Contains(lines[0], "PIDS") {
		t.Fatalf("stats table:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 2 || f[1] != "st" || !strings.Contains(lines[1], "/ 64MiB") {
		t.Fatalf("stats row, want the 64MiB limit:\n%s", out)
	}
	if got := e.must("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "st"); got != "st 1\n" {
		t.Fatalf("stats --format: %q", got)
	}
	// Stopped containers only with -a, as zeros.
	e.must("create", "--name", "idle", "bb", "true")
	if out := e.must("stats", "--no-stream", "--format", "{{.Name}}"); strings.Contains(out, "idle") {
		t.Fatalf("stats lists a stopped container without -a:\n%s", out)
	}
	if out := e.must("stats", "-a", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}"); !strings.Contains(out, "idle 0.00% 0B / 0B") {
		t.Fatalf("stats -a:\n%s", out)
	}
	e.fails("No such container: nope", "stats", "--no-stream", "nope")
}

func TestEngineUpdate(t *testing.T) {
	e := newEngineEnv(t)
	id := strings.TrimSpace(e.must("run", "-d", "--name", "up", "--memory", "64m", "bb", "sleep", "1000"))
	parent := e.cgroupParent // the harness's; berth's default is /berth
	if parent == "" {
		parent = "/berth"
	}
	limit := func() string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parent, id, "memory.limit_in_bytes"))
		if err != nil {
			t.Fatalf("cgroup v1 memory limit: %v", err)
		}
		return strings.TrimSpace(string(data))
	}
	if got := limit(); got != "67108864" {
		t.Fatalf("limit at start: %s", got)
	}
	if out := e.must("update", "--memory", "100m", "--pids-limit", "64", "up"); out != "up\n" {
		t.Fatalf("update printed %q", out)
	}
	if got := limit(); got != "104857600" {
		t.Fatalf("live limit after update: %s", got)
	}
	if got := e.inspect("up", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}"); got != "104857600 64" {
		t.Fatalf("recorded: %s", got)
	}
	e.fails("Minimum memory limit allowed is 6MB", "update", "--memory", "1m", "up")
	e.fails("memoryswap", "update", "--memory", "1g", "up")
	if got := limit(); got != "104857600" {
		t.Fatalf("a refused update changed the limit: %s", got)
	}
	e.must("update", "--restart", "on-failure:3", "up")
	if got := e.inspect("up", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"); got != "on-failure:3" {
		t.Fatalf("restart policy: %s", got)
	}
	// A stopped container's record changes; its next start applies it.
	e.must("stop", "-t", "0", "up")
	e.must("update", "--memory", "80m", "up")
	e.must("start", "up")
	id = e.inspect("up", "{{.Id}}")
	if got := limit(); got != "83886080" {
		t.Fatalf("limit after restart: %s", got)
	}
	e.fails("No such container: nope", "update", "--memory", "64m", "nope")
}

func TestEngineCommit(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "--name", "src", "bb", "sh", "-c", "mkdir -p /data && echo committed > /data/f && rm /bin/ls")
	id := strings.TrimSpace(e.must("commit", "-m", "a message", "-a", "me", "-c", "ENV GREETING=hi", "src", "snap:v1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("commit printed %q", id)
	}
	if got := e.must("run", "--rm", "snap:v1", "sh", "-c", `cat /data/f; echo $GREETING; test -e /bin/ls || echo gone`); got != "committed\nhi\ngone\n" {
		t.Fatalf("run of the committed image: %q", got)
	}
	if got := strings.TrimSpace(e.must("image", "inspect", "-f", "{{.Comment}}|{{.Author}}", "snap:v1")); got != "a message|me" {
		t.Fatalf("image comment and author: %q", got)
	}
	// The container's command is the image's.
	e.must("run", "--name", "second", "snap:v1", "sh", "-c", "echo again > /data/g")
	e.must("commit", "second", "snap:v2")
	if got := e.must("run", "--rm", "snap:v2", "cat", "/data/f", "/data/g"); got != "committed\nagain\n" {
		t.Fatalf("second commit: %q", got)
	}
	// A running container is paused while committed and runs on after.
	e.must("run", "-d", "--name", "live", "bb", "sh", "-c", "echo x > /x; exec sleep 1000")
	waitFor(t, func() bool { return e.berth("exec", "live", "test", "-e", "/x").code == 0 })
	e.must("commit", "live", "snap:live")
	if got := e.inspect("live", "{{.State.Status}}"); got != "running" {
		t.Fatalf("after commit: %s", got)
	}
	e.fails("No such container: nope", "commit", "nope")
}

// readTar lists a tar's entries and their contents.
func readTar(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		out[hdr.Name] = string(body)
	}
}

func listTree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			rel += "/"
		} else {
			data, _ := os.ReadFile(p)
			rel += "=" + string(data)
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

func TestEngineCp(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "-d", "--name", "box", "bb", "sleep", "1000")
	host := t.TempDir()
	src := filepath.Join(host, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a": "A", "sub/b": "B"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Host to container: a directory into a directory, a file to a new
	// name, a directory's contents.
	e.must("cp", src, "box:/tmp")
	if got := e.must("exec", "box", "cat", "/tmp/src/a", "/tmp/src/sub/b"); got != "AB" {
		t.Fatalf("copied directory: %q", got)
	}
	if got := e.inspect("box", "{{.State.Status}}"); got != "running" {
		t.Fatal(got)
	}
	e.must("cp", filepath.Join(src, "a"), "box:/renamed")
	if got := e.must("exec", "box", "cat", "/renamed"); got != "A" {
		t.Fatalf("copied file: %q", got)
	}
	e.must("cp", src+"/.", "box:/contents")
	if got := e.must("exec", "box", "ls", "/contents"); got != "a\nsub\n" {
		t.Fatalf("copied contents: %q", got)
	}
	// Files copied in belong to the container's root.
	if got := e.must("exec", "box", "stat", "-c", "%u:%g", "/tmp/src/a"); got != "0:0\n" {
		t.Fatalf("owner: %q", got)
	}

	// Container to host.
	e.must("exec", "box", "sh", "-c", "mkdir -p /made/deep && echo made > /made/deep/f")
	out := filepath.Join(host, "out")
	e.must("cp", "box:/made", out)
	if got := listTree(t, out); got != "deep/ deep/f=made\n" {
		t.Fatalf("copied out: %q", got)
	}
	e.must("cp", "box:/made/deep/f", host)
	if data, _ := os.ReadFile(filepath.Join(host, "f")); string(data) != "made\n" {
		t.Fatalf("copied file out: %q", data)
	}
	// A tar on stdout, and a tar on stdin.
	res := e.berth("cp", "box:/made", "-")
	if res.code != 0 {
		t.Fatalf("cp to -: %s", res.stderr)
	}
	if entries := readTar(t, []byte(res.stdout)); entries["made/deep/f"] != "made\n" {
		t.Fatalf("tar of /made: %v", entries)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: "fromtar", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte("tar"))
	_ = tw.Close()
	if res := e.berthStdin(&buf, "cp", "-", "box:/tmp"); res.code != 0 {
		t.Fatalf("cp from -: %s", res.stderr)
	}
	if got := e.must("exec", "box", "cat", "/tmp/fromtar"); got != "tar" {
		t.Fatalf("extracted tar: %q", got)
	}

	// docker's errors.
	e.fails("Could not find the file /nope in container box", "cp", "box:/nope", host)
	e.fails("Could not find the file /no/such in container box", "cp", filepath.Join(src, "a"), "box:/no/such/x")
	e.fails("must specify at least one container source", "cp", src, host)

	// A stopped container: its root is mounted for the copy, and not left so.
	e.must("stop", "-t", "0", "box")
	e.must("cp", filepath.Join(src, "a"), "box:/while-stopped")
	e.must("cp", "box:/while-stopped", filepath.Join(host, "back"))
	if data, _ := os.ReadFile(filepath.Join(host, "back")); string(data) != "A" {
		t.Fatalf("copy of a stopped container: %q", data)
	}
	id := e.inspect("box", "{{.Id}}")
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), id) {
		t.Fatal("a stopped container's root stayed mounted after cp")
	}
	e.must("start", "box")
	if got := e.must("exec", "box", "cat", "/while-stopped"); got != "A" {
		t.Fatalf("after start: %q", got)
	}
}

func TestEngineEvents(t *testing.T) {
	e := newEngineEnv(t)
	start := time.Now().Add(-time.Second).Format(time.RFC3339Nano)

	// Following: a second process sees a new container's events.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follow := exec.CommandContext(ctx, e.bin, append([]string{"--root", e.root, "--runroot", e.runRoot},
		"events", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.Attributes.name}}")...)
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = follow.Wait() }()
	time.Sleep(500 * time.Millisecond) // the follower reads from the log's end

	e.must("run", "--rm", "--name", "ev", "bb", "true")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "start ev\n" {
		t.Fatalf("followed: %q, %v", line, err)
	}

	got := e.must("events", "--since", start, "--until", time.Now().Add(time.Second).Format(time.RFC3339Nano),
		"--filter", "container=ev", "--format", "{{.Action}}")
	if got != "create\nstart\ndie\ndestroy\n" {
		t.Fatalf("events of run --rm:\n%s", got)
	}
	got = e.must("events", "--since", start, "--until", "0s", "--filter", "event=die")
	if !strings.Contains(got, " container die ") || !strings.Contains(got, "exitCode=0") || !strings.Contains(got, "name=ev") {
		t.Fatalf("default format:\n%s", got)
	}
	e.fails("invalid filter 'color'", "events", "--filter", "color=red", "--until", "0s")
}

func TestEngineVersion(t *testing.T) {
	e := newEngineEnv(t)
	out := e.must("version")
	for _, want := range []string{"Client:", "Server: berth", " Engine:", "Go version:", "OS/Arch:", "berth-runtime:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("version lacks %q:\n%s", want, out)
		}
	}
	client := strings.TrimSpace(e.must("version", "--format", "{{.Client.Version}}"))
	server := strings.TrimSpace(e.must("version", "--format", "{{.Server.Version}}"))
	if client == "" || client != server {
		t.Fatalf("versions: client %q server %q", client, server)
	}
}

func TestEngineSystemPrune(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "-d", "--name", "alive", "bb", "sleep", "1000")
	stopped := strings.TrimSpace(e.must("create", "--name", "stopped", "bb", "true"))
	exited := strings.TrimSpace(e.must("run", "-d", "--name", "exited", "bb", "true"))
	waitFor(t, func() bool { return e.inspect("exited", "{{.State.Status}}") == "exited" })
	info := e.must("info")
	for _, want := range []string{" Containers: 3\n", "  Running: 1\n", "  Paused: 0\n", "  Stopped: 2\n"} {
		if !strings.Contains(info, want) {
			t.Fatalf("info lacks %q:\n%s", want, info)
		}
	}
	// Answering no removes nothing.
	res := e.berthStdin(strings.NewReader("n\n"), "system", "prune")
	if res.code != 0 || !strings.Contains(res.stdout, "WARNING! This will remove:") {
		t.Fatalf("prompt: code %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if n := len(strings.Fields(e.must("ps", "-aq"))); n != 3 {
		t.Fatalf("declined prune removed containers: %d left", n)
	}
	out := e.must("system", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:\n") || !strings.Contains(out, stopped) || !strings.Contains(out, exited) ||
		!strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("system prune:\n%s", out)
	}
	if got := e.must("ps", "-a", "--format", "{{.Names}}"); got != "alive\n" {
		t.Fatalf("left after prune: %q", got)
	}
	// The image a container uses stays, even with -a.
	e.must("system", "prune", "-f", "-a")
	if got := e.must("images", "--format", "{{.Repository}}"); got != "bb\n" {
		t.Fatalf("images after prune -a: %q", got)
	}
}
