package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/berth-dev/berth/internal/runtime"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
broken:x:notanumber:1::/:/bin/sh
`

const testGroup = `root:x:0:
wheel:x:10:root,app
app:x:1000:
audio:x:29:app
`

// fakeHost is a host with 4 CPUs, cgroup v1, the kernel's capabilities up
// to CAP_CHECKPOINT_RESTORE and the name "testhost".
func fakeHost() host {
	return host{
		numCPU:   func() int { return 4 },
		cgroupV2: func() bool { return false },
		lastCap:  func() caps.Cap { return caps.MaxKnown },
		hostname: func() (string, error) { return "testhost", nil },
		devRoot:  "/dev",
	}
}

// newRootfs makes a root filesystem holding files (path → content).
func newRootfs(t testing.TB, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// baseInput is `docker run IMAGE` for an alpine-like image in a rootfs
// with testPasswd and testGroup.
func baseInput(t testing.TB) Input {
	t.Helper()
	return Input{
		ID:     testID,
		Name:   "test",
		Rootfs: newRootfs(t, map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup}),
		Image: &image.RunConfig{
			Env: []string{"PATH=" + DefaultPath},
			Cmd: []string{"/bin/sh"},
		},
		Config:      &container.Config{},
		HostConfig:  &container.HostConfig{},
		CgroupsPath: "/berth/" + testID,
	}
}

// mustGenerate generates with h and checks that berth's runtime accepts
// the result as a bundle's config.json.
func mustGenerate(t *testing.T, in Input, h host) *specs.Spec {
	t.Helper()
	s, err := generate(in, h)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	checkLoads(t, s)
	return s
}

// checkLoads writes s as a bundle's config.json and loads it with the
// runtime's validation.
func checkLoads(t *testing.T, s *specs.Spec) {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.LoadSpec(bundle); err != nil {
		t.Fatalf("the runtime refuses the generated spec: %v", err)
	}
}

// wantErr checks that err is not nil and contains want.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func mountDests(ms []specs.Mount) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Destination)
	}
	return out
}

func findMount(ms []specs.Mount, dest string) *specs.Mount {
	for i := range ms {
		if ms[i].Destination == dest {
			return &ms[i]
		}
	}
	return nil
}

func nsTypes(list []specs.LinuxNamespace) []string {
	var out []string
	for _, ns := range list {
		s := string(ns.Type)
		if ns.Path != "" {
			s += "=" + ns.Path
		}
		out = append(out, s)
	}
	return out
}
