//go:build linux && cgo

package seccomp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompileCached(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seccomp")
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getcwd"}, Action: specs.ActErrno},
	}}
	want, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CompileCached(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first CompileCached differs from Compile")
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(entries) != 1 || filepath.Ext(entries[0]) != ".bpf" {
		t.Fatalf("cache holds %v, want one .bpf entry", entries)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v, %v; want 0700", fi.Mode(), err)
	}

	// A second call reads the entry: plant a different program to see it.
	planted := &Program{Filter: []SockFilter{{Code: bpfRetK, K: retAllow}}, Flags: FlagLog}
	b, _ := planted.MarshalBinary()
	if err := os.WriteFile(entries[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = CompileCached(cfg, dir); err != nil || !reflect.DeepEqual(got, planted) {
		t.Errorf("second CompileCached = %+v, %v; want the cached entry", got, err)
	}

	// A different profile has a different key.
	cfg2 := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(5)},
	}}
	if got, err = CompileCached(cfg2, dir); err != nil || reflect.DeepEqual(got, planted) {
		t.Errorf("CompileCached of another profile = %+v, %v", got, err)
	}

	// A damaged entry is compiled again and replaced.
	if err := os.WriteFile(entries[0], b[:len(b)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = CompileCached(cfg, dir); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CompileCached over a damaged entry = %+v, %v", got, err)
	}
	if b2, _ := os.ReadFile(entries[0]); len(b2) != 12+8*len(want.Filter) {
		t.Errorf("damaged entry not rewritten: %d bytes", len(b2))
	}

	// Invalid input is still reported.
	if _, err := CompileCached(&specs.LinuxSeccomp{DefaultAction: "nope"}, dir); err == nil {
		t.Error("CompileCached of an invalid profile: no error")
	}

	// A cache others may write is refused.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := CompileCached(cfg, dir); err == nil {
		t.Error("CompileCached with a world-writable cache: no error")
	}
}

func BenchmarkCompileCachedDefault(b *testing.B) {
	cfg, err := DefaultProfile(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if _, err := CompileCached(cfg, dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := CompileCached(cfg, dir); err != nil {
			b.Fatal(err)
		}
	}
}
