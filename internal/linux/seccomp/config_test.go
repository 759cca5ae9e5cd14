package seccomp

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func uintp(v uint) *uint { return &v }

func TestPlanErrors(t *testing.T) {
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	tests := []struct {
		name string
		cfg  *specs.LinuxSeccomp
		want string
		kind errdefs.Kind
	}{
		{"nil", nil, "linux.seccomp: no configuration", errdefs.KindInvalidArgument},
		{"no default", &specs.LinuxSeccomp{}, "linux.seccomp.defaultAction: missing action", errdefs.KindInvalidArgument},
		{"bad default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"},
			`linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE"`, errdefs.KindInvalidArgument},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify},
			`linux.seccomp.defaultAction: action "SCMP_ACT_NOTIFY" is not supported`, errdefs.KindNotImplemented},
		{"default errno on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uintp(1)},
			"linux.seccomp.defaultErrnoRet: only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_ALLOW", errdefs.KindInvalidArgument},
		{"default errno too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(4096)},
			"linux.seccomp.defaultErrnoRet: errno 4096 out of range 0 to 4095", errdefs.KindInvalidArgument},
		{"trace value too big", &specs.LinuxSeccomp{DefaultAction: specs.ActTrace, DefaultErrnoRet: uintp(65536)},
			"linux.seccomp.defaultErrnoRet: value 65536 out of range 0 to 65535", errdefs.KindInvalidArgument},
		{"listener", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x.sock"},
			"linux.seccomp.listenerPath: seccomp user notification is not supported", errdefs.KindNotImplemented},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_VAX"}},
			`linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX"`, errdefs.KindInvalidArgument},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_FOO"}},
			`linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`, errdefs.KindInvalidArgument},
		{"listener flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			`linux.seccomp.flags[0]: flag "SECCOMP_FILTER_FLAG_NEW_LISTENER" needs seccomp user notification, which is not supported`, errdefs.KindNotImplemented},
		{"no names", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("read"), {Action: specs.ActAllow}}},
			"linux.seccomp.syscalls[1].names: no syscall names", errdefs.KindInvalidArgument},
		{"empty name", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allow("read", "")}},
			"linux.seccomp.syscalls[0].names[1]: empty syscall name", errdefs.KindInvalidArgument},
		{"unknown action", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			allow("read"), allow("write"), allow("close"), {Names: []string{"open"}, Action: "SCMP_ACT_FOO"}}},
			`linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`, errdefs.KindInvalidArgument},
		{"missing action", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"open"}}}},
			"linux.seccomp.syscalls[0].action: missing action", errdefs.KindInvalidArgument},
		{"notify rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"open"}, Action: specs.ActNotify}}},
			`linux.seccomp.syscalls[0].action: action "SCMP_ACT_NOTIFY" is not supported`, errdefs.KindNotImplemented},
		{"errnoRet on kill", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"open"}, Action: specs.ActKill, ErrnoRet: uintp(1)}}},
			"linux.seccomp.syscalls[0].errnoRet: only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not SCMP_ACT_KILL", errdefs.KindInvalidArgument},
		{"arg index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"open"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 6, Op: specs.OpEqualTo}}}}},
			"linux.seccomp.syscalls[0].args[1].index: index 6 out of range, a syscall has 6 arguments", errdefs.KindInvalidArgument},
		{"arg op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"open"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_APPROX"}}}}},
			`linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_APPROX"`, errdefs.KindInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newPlan(tt.cfg)
			if err == nil {
				t.Fatalf("newPlan: no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("newPlan error:\n got %q\nwant %q", err, tt.want)
			}
			if k := errdefs.KindOf(err); k != tt.kind {
				t.Errorf("error kind %v, want %v", k, tt.kind)
			}
			// Compile reports the same error, with or without cgo.
			if _, err := Compile(tt.cfg); err == nil || err.Error() != tt.want {
				t.Errorf("Compile error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Flags:         []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
			// Same as the default (ERRNO, EPERM): dropped.
			{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: uintp(1)},
			{Names: []string{"umount2"}, Action: specs.ActErrno},
			// Different errno: kept.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo},
				{Index: 0, Value: 8, Op: specs.OpEqualTo},
			}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual},
				{Index: 1, Value: 5, ValueTwo: 9, Op: specs.OpGreaterThan},
			}},
			{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: uintp(1234)},
			{Names: []string{"kexec_load"}, Action: specs.ActKill},
		},
	}
	p, err := newPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := &plan{
		def:    action{actErrno, eperm},
		arches: []string{"amd64", "x86", "x32"},
		flags:  FlagTSync | FlagLog | FlagSpecAllow,
		rules: []rule{
			{field: "syscalls[0]", names: []string{"read", "write"}, act: action{kind: actAllow}},
			{field: "syscalls[3]", names: []string{"clone3"}, act: action{actErrno, 38}},
			{field: "syscalls[4]", names: []string{"personality"}, act: action{kind: actAllow}, split: true,
				conds: []cond{{index: 0, op: opEQ}, {index: 0, op: opEQ, value: 8}}},
			{field: "syscalls[5]", names: []string{"clone"}, act: action{kind: actAllow},
				conds: []cond{{index: 0, op: opMaskedEQ, value: 0x7e020000}, {index: 1, op: opGT, value: 5}}},
			{field: "syscalls[6]", names: []string{"ptrace"}, act: action{actTrace, 1234}},
			{field: "syscalls[7]", names: []string{"kexec_load"}, act: action{kind: actKillThread}},
		},
		names: []string{"read", "write", "mount", "umount2", "clone3", "personality", "clone", "ptrace", "kexec_load"},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("newPlan:\n got %+v\nwant %+v", p, want)
	}
}

func TestMarshalBinary(t *testing.T) {
	p := &Program{
		Flags: FlagLog | FlagTSync,
		Filter: []SockFilter{
			{Code: 0x20, K: 4},
			{Code: 0x15, Jt: 1, Jf: 0, K: 0xc000003e},
			{Code: 0x06, K: 0},
			{Code: 0x06, K: 0x7fff0000},
		},
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 12+8*len(p.Filter) {
		t.Errorf("encoded %d bytes, want %d", len(b), 12+8*len(p.Filter))
	}
	var q Program
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, &q) {
		t.Errorf("round trip:\n got %+v\nwant %+v", q, *p)
	}

	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", b[:11]},
		{"magic", append([]byte("bsc\x02"), b[4:]...)},
		{"truncated", b[:len(b)-1]},
		{"trailing", append(append([]byte{}, b...), 0)},
		{"zero count", []byte("bsc\x01\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"huge count", []byte("bsc\x01\x00\x00\x00\x00\x01\x10\x00\x00")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := new(Program).UnmarshalBinary(tt.b); err == nil {
				t.Error("UnmarshalBinary: no error")
			}
		})
	}
	if _, err := (&Program{}).MarshalBinary(); err == nil {
		t.Error("MarshalBinary of an empty program: no error")
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	p := &Program{Flags: 1, Filter: []SockFilter{{Code: 6, K: 0x7fff0000}}}
	b, _ := p.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Program
		if p.UnmarshalBinary(b) != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil || string(out) != string(b) {
			t.Fatalf("decoded program re-encodes to %x, %v; want %x", out, err, b)
		}
	})
}

// FuzzPlan feeds linux.seccomp JSON to the checker: it must not panic.
func FuzzPlan(f *testing.F) {
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errnoRet":4096}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var cfg specs.LinuxSeccomp
		if json.Unmarshal(b, &cfg) != nil {
			return
		}
		_, _ = newPlan(&cfg)
	})
}
