package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestLoadSpecErrorsNameTheField(t *testing.T) {
	nsFile := filepath.Join(t.TempDir(), "not-a-namespace")
	if err := os.WriteFile(nsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(*specs.Spec)
		raw    string
		wantIn string
	}{
		{name: "malformed json", raw: `{"ociVersion": "1.0.2", "process": {"args": "sh"}}`, wantIn: "expected []string"},
		{name: "old version", edit: func(s *specs.Spec) { s.Version = "0.9.0" }, wantIn: "ociVersion"},
		{name: "no root", edit: func(s *specs.Spec) { s.Root = nil }, wantIn: "root.path"},
		{name: "no args", edit: func(s *specs.Spec) { s.Process.Args = nil }, wantIn: "process.args"},
		{name: "relative cwd", edit: func(s *specs.Spec) { s.Process.Cwd = "tmp" }, wantIn: "process.cwd"},
		{name: "unknown namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, wantIn: `linux.namespaces[6].type: unknown namespace type "bogus"`},
		{name: "duplicate namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, wantIn: "listed twice"},
		{name: "path not a namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = nsFile
		}, wantIn: "linux.namespaces[1].path: " + nsFile + " is not a namespace"},
		{name: "wrong namespace type", edit: func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/ipc"
		}, wantIn: "is a ipc namespace, not a network namespace"},
		{name: "no mount namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = s.Linux.Namespaces[:4]
		}, wantIn: "a mount namespace is required"},
		{name: "uid maps without userns", edit: func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}
		}, wantIn: "linux.uidMappings"},
		{name: "hostname without uts", edit: func(s *specs.Spec) {
			s.Linux.Namespaces[3].Path = "/proc/self/ns/uts"
		}, wantIn: "hostname"},
		{name: "bad rlimit", edit: func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
		}, wantIn: "process.rlimits[0].type"},
		{name: "soft above hard", edit: func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		}, wantIn: "soft limit 2 exceeds hard limit 1"},
		{name: "relative mount", edit: func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, wantIn: "mounts[0].destination"},
		{name: "net sysctl without netns", edit: func(s *specs.Spec) {
			s.Linux.Namespaces[1].Path = "/proc/self/ns/net"
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, wantIn: "linux.sysctl.net.ipv4.ip_forward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := tt.raw
			if raw == "" {
				spec := DefaultSpec(false)
				tt.edit(spec)
				raw = mustJSON(t, spec)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(raw), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadSpec(dir)
			if err == nil {
				t.Fatalf("LoadSpec accepted it")
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("error %q does not mention %q", err, tt.wantIn)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			if !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Fatalf("error not classified as invalid argument: %v", err)
			}
		})
	}
}

func TestLoadSpecMissingConfig(t *testing.T) {
	_, err := LoadSpec(t.TempDir())
	if !errdefs.Is(err, errdefs.KindNotFound) || !strings.Contains(err.Error(), "no config.json") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateID(t *testing.T) {
	for _, id := range []string{"abc", "a_b+c-d.e", "0123"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", ".seccomp", "a/b", "a b", strings.Repeat("x", 1025)} {
		if err := ValidateID(id); err == nil {
			t.Errorf("ValidateID(%q) accepted", id)
		}
	}
}
