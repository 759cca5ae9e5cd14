package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestRuntimeBadInput(t *testing.T) {
	notNS := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notNS, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(t *testing.T, b *testutil.Bundle)
		want []string // in the error line
	}{
		{"config not JSON", func(t *testing.T, b *testutil.Bundle) {
			writeConfig(t, b, `{"ociVersion": "1.2.0", "process": {`)
		}, []string{"config.json", "not a valid config"}},
		{"config field of the wrong type", func(t *testing.T, b *testutil.Bundle) {
			writeConfig(t, b, `{"ociVersion": "1.2.0", "root": {"path": "rootfs"}, "process": {"args": "sh"}, "linux": {}}`)
		}, []string{"config.json", "process.args"}},
		{"unsupported ociVersion", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Version = "2.0.0"
		}, []string{"ociVersion"}},
		{"missing rootfs", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Root.Path = "no-such-rootfs"
		}, []string{"root.path", "no-such-rootfs"}},
		{"unknown namespace type", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, []string{"linux.namespaces[6].type", "bogus"}},
		{"namespace path that is not a namespace", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces[1].Path = notNS // network
		}, []string{"linux.namespaces[1].path", notNS, "not a namespace"}},
		{"namespace path of the wrong type", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces[1].Path = "/proc/self/ns/ipc" // network
		}, []string{"linux.namespaces[1].path", "ipc"}},
		{"memory limit below the kernel's minimum", func(t *testing.T, b *testutil.Bundle) {
			limit := int64(1024)
			b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		}, []string{"linux.resources.memory.limit", "1024"}},
		{"bind mount of a missing source", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/no/such/dir", Options: []string{"bind"}})
		}, []string{"mounts[7]", "/no/such/dir"}},
		{"sysctl outside the container's namespaces", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Sysctl = map[string]string{"kernel.panic": "1"}
		}, []string{"kernel.panic"}},
		{"uid map without a user namespace", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, []string{"linux.uidMappings"}},
		{"joined namespace that exited", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Linux.Namespaces[1].Path = "/proc/999999999/ns/net"
		}, []string{"linux.namespaces[1].path", "/proc/999999999/ns/net"}},
		{"missing program", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Args = []string{"/no/such/program"}
		}, []string{"process.args[0]", "/no/such/program"}},
		{"unknown rlimit", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Rlimits = append(b.Spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS"})
		}, []string{"process.rlimits[1].type", "RLIMIT_BOGUS"}},
		{"program not in PATH", func(t *testing.T, b *testutil.Bundle) {
			b.Spec.Process.Args = []string{"no-such-program"}
		}, []string{"process.args[0]", "no-such-program", "not found"}},
	}
	r := newRuntimeEnv(t)
	// One rootfs for all: each case writes its own config.json.
	base := r.bundle("", "true")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := r.newID()
			b := &testutil.Bundle{Dir: base.Dir, Spec: cloneSpec(t, base.Spec)}
			b.Spec.Linux.CgroupsPath = "/" + id
			tc.edit(t, b)
			if !strings.HasPrefix(tc.name, "config") {
				b.Save(t)
			}
			for _, verb := range []string{"create", "run"} {
				res := r.berth(verb, "--bundle", b.Dir, id)
				checkOneLineError(t, verb, res, tc.want...)
				checkNothingLeft(t, r, id)
			}
		})
	}
}

func TestRuntimeDuplicateID(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	pid := r.detached(b, id)
	for _, verb := range []string{"create", "run"} {
		res := r.berth(verb, "--bundle", b.Dir, id)
		checkOneLineError(t, verb, res, id, "already exists")
	}
	// The first container is untouched.
	if st := r.state(id); st.Status != "running" || st.Pid != pid {
		t.Fatalf("after the duplicate create: %+v, want running pid %d", st, pid)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", id)); err != nil {
		t.Fatalf("the first container's cgroup: %v", err)
	}
}

func cloneSpec(t *testing.T, spec *specs.Spec) *specs.Spec {
	t.Helper()
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var clone specs.Spec
	if err := json.Unmarshal(data, &clone); err != nil {
		t.Fatal(err)
	}
	return &clone
}

func writeConfig(t *testing.T, b *testutil.Bundle, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkOneLineError wants a non-zero exit and one line on stderr holding
// each of want.
func checkOneLineError(t *testing.T, verb string, res result, want ...string) {
	t.Helper()
	msg := strings.TrimSpace(res.stderr)
	if res.code == 0 || msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: exit %d, stderr %q: want a non-zero exit and one line", verb, res.code, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: error %q does not name %q", verb, msg, w)
		}
	}
	if strings.Contains(msg, ".go:") {
		t.Errorf("%s: error %q shows a source position", verb, msg)
	}
}

// checkNothingLeft fails unless no state, cgroup or process of id remains.
func checkNothingLeft(t *testing.T, r *runtimeEnv, id string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory of %s left behind (%v)", id, err)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + id); len(m) > 0 {
		t.Errorf("cgroups left behind: %v", m)
	}
	if out := r.must("list", "-q"); strings.Contains(out, id) {
		t.Errorf("list shows %s", id)
	}
}
