package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// runtimeEnv drives `berth runtime` with a state root of its own, and
// removes every container it made when the test ends.
type runtimeEnv struct {
	t    *testing.T
	bin  string
	root string
	ids  []string
	dirs []string
}

func newRuntimeEnv(t *testing.T) *runtimeEnv {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireBusybox(t)
	r := &runtimeEnv{t: t, bin: testutil.Binary(t), root: t.TempDir()}
	t.Cleanup(func() {
		for _, id := range r.ids {
			r.berth("delete", "--force", id)
		}
		testutil.CheckNoLeaks(t, append(r.dirs, r.root), r.ids)
	})
	return r
}

// newID returns a container id unique to this run, registered for cleanup
// and for the leak check (its cgroup is named after it).
func (r *runtimeEnv) newID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := "berth-test-" + hex.EncodeToString(b[:])
	r.ids = append(r.ids, id)
	return id
}

// bundle makes a busybox bundle running args, with its cgroup named after id.
func (r *runtimeEnv) bundle(id string, args ...string) *testutil.Bundle {
	b := testutil.NewBundle(r.t, args...)
	b.Spec.Linux.CgroupsPath = "/" + id
	b.Spec.Process.Env = append(b.Spec.Process.Env, "HOME=/root")
	r.dirs = append(r.dirs, b.Dir)
	b.Save(r.t)
	return b
}

type result struct {
	stdout, stderr string
	code           int
}

// berth runs `berth runtime --root ROOT args...`.
func (r *runtimeEnv) berth(args ...string) result {
	return r.berthIn("", nil, args...)
}

func (r *runtimeEnv) berthIn(dir string, stdin []byte, args ...string) result {
	cmd := exec.Command(r.bin, append([]string{"runtime", "--root", r.root}, args...)...)
	cmd.Dir = dir
	// Files, not pipes: a container made by create or run --detach keeps
	// its stdio open, and waiting for a pipe's EOF would wait for it.
	out, errb := tempFile(r.t), tempFile(r.t)
	cmd.Stdout, cmd.Stderr = out, errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("run berth %v: %v", args, err)
	}
	return result{stdout: readAll(r.t, out), stderr: readAll(r.t, errb), code: code}
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// must runs berth and fails the test on a non-zero exit.
func (r *runtimeEnv) must(args ...string) string {
	r.t.Helper()
	res := r.berth(args...)
	if res.code != 0 {
		r.t.Fatalf("berth runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// run runs the bundle to completion and returns its output and exit code.
func (r *runtimeEnv) run(b *testutil.Bundle, id string) result {
	r.t.Helper()
	return r.berth("run", "--bundle", b.Dir, id)
}

type runcState struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

func (r *runtimeEnv) state(id string) runcState {
	r.t.Helper()
	var st runcState
	if err := json.Unmarshal([]byte(r.must("state", id)), &st); err != nil {
		r.t.Fatalf("parse state: %v", err)
	}
	return st
}

func hostNSInode(t *testing.T, name string) string {
	t.Helper()
	link, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

// detached runs the bundle in the background and returns its init's pid.
func (r *runtimeEnv) detached(b *testutil.Bundle, id string) int {
	r.t.Helper()
	r.must("run", "--detach", "--bundle", b.Dir, id)
	return r.state(id).Pid
}

// exec runs args in container id and returns what it printed and its exit code.
func (r *runtimeEnv) exec(id string, args ...string) result {
	r.t.Helper()
	return r.berth(append([]string{"exec", id}, args...)...)
}
