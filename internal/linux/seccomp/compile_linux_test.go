//go:build linux && cgo

package seccomp

import (
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

const (
	retAllow   = unix.SECCOMP_RET_ALLOW
	retKill    = unix.SECCOMP_RET_KILL_THREAD
	retKillPr  = unix.SECCOMP_RET_KILL_PROCESS
	retTrap    = unix.SECCOMP_RET_TRAP
	retLog     = unix.SECCOMP_RET_LOG
	retErrno   = unix.SECCOMP_RET_ERRNO
	retTrace   = unix.SECCOMP_RET_TRACE
	retEPERM   = retErrno | uint32(unix.EPERM)
	retENOSYSx = retErrno | uint32(unix.ENOSYS)
)

func nativeAudit(t *testing.T) uint32 {
	t.Helper()
	a, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	audit := auditArch(a.String())
	if audit == 0 {
		t.Skipf("no AUDIT_ARCH for %s", a)
	}
	return audit
}

func sysno(t *testing.T, name string, arch libseccomp.ScmpArch) int32 {
	t.Helper()
	nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
	if err != nil || nr < 0 {
		t.Fatalf("syscall %s on %s: %d, %v", name, arch, nr, err)
	}
	return int32(nr)
}

type call struct {
	name string
	nr   int32 // used when name is ""
	args [6]uint64
	want uint32
}

func check(t *testing.T, prog *Program, arch uint32, calls []call) {
	t.Helper()
	native, _ := libseccomp.GetNativeArch()
	for _, c := range calls {
		nr := c.nr
		if c.name != "" {
			nr = sysno(t, c.name, native)
		}
		got, err := run(prog.Filter, seccompData{nr: nr, arch: arch, args: c.args})
		if err != nil {
			t.Fatalf("%s(%v): %v", c.name, c.args, err)
		}
		if got != c.want {
			t.Errorf("syscall %q (nr %d) args %v: verdict %#x, want %#x", c.name, nr, c.args[:2], got, c.want)
		}
	}
}

func TestCompile(t *testing.T) {
	arch := nativeAudit(t)
	tests := []struct {
		name  string
		cfg   *specs.LinuxSeccomp
		flags uint
		calls []call
	}{
		{
			name: "errno default EPERM",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd", "no_such_syscall"}, Action: specs.ActErrno},
			}},
			calls: []call{{name: "getcwd", want: retEPERM}, {name: "getpid", want: retAllow}},
		},
		{
			name: "errnoRet and defaultErrnoRet",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(uint(unix.EACCES)), Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOTSUP))},
				{Names: []string{"getpid"}, Action: specs.ActAllow},
			}},
			calls: []call{
				{name: "getcwd", want: retErrno | uint32(unix.ENOTSUP)},
				{name: "getpid", want: retAllow},
				{name: "read", want: retErrno | uint32(unix.EACCES)},
			},
		},
		{
			name: "actions",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActKill},
				{Names: []string{"getppid"}, Action: specs.ActKillThread},
				{Names: []string{"getuid"}, Action: specs.ActKillProcess},
				{Names: []string{"getgid"}, Action: specs.ActTrap},
				{Names: []string{"geteuid"}, Action: specs.ActLog},
				{Names: []string{"getegid"}, Action: specs.ActTrace},
				{Names: []string{"gettid"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
				{Names: []string{"getpid"}, Action: specs.ActAllow}, // same as default: skipped
			}},
			calls: []call{
				{name: "getcwd", want: retKill},
				{name: "getppid", want: retKill},
				{name: "getuid", want: retKillPr},
				{name: "getgid", want: retTrap},
				{name: "geteuid", want: retLog},
				{name: "getegid", want: retTrace | uint32(unix.EPERM)},
				{name: "gettid", want: retTrace | 7},
				{name: "getpid", want: retAllow},
			},
		},
		{
			name: "args",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				// Two conditions on one argument: either matches (runc's rule).
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 0, Op: specs.OpEqualTo},
					{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo},
				}},
				// Conditions on different arguments: both must match.
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: unix.AF_UNIX, Op: specs.OpEqualTo},
					{Index: 1, Value: unix.SOCK_STREAM, Op: specs.OpEqualTo},
				}},
				{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: unix.CLONE_NEWNS | unix.CLONE_NEWUSER, ValueTwo: 0, Op: specs.OpMaskedEqual},
				}},
				{Names: []string{"kill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpNotEqual}}},
				{Names: []string{"tkill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 9, Op: specs.OpLessThan}}},
				{Names: []string{"tgkill"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 9, Op: specs.OpLessEqual}}},
				{Names: []string{"dup"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 9, Op: specs.OpGreaterEqual}}},
				{Names: []string{"dup3"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 2, Value: 1 << 40, Op: specs.OpGreaterThan}}},
			}},
			calls: []call{
				{name: "personality", args: [6]uint64{0}, want: retAllow},
				{name: "personality", args: [6]uint64{0xffffffff}, want: retAllow},
				{name: "personality", args: [6]uint64{8}, want: retEPERM},
				{name: "socket", args: [6]uint64{unix.AF_UNIX, unix.SOCK_STREAM}, want: retAllow},
				{name: "socket", args: [6]uint64{unix.AF_UNIX, unix.SOCK_DGRAM}, want: retEPERM},
				{name: "socket", args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM}, want: retEPERM},
				{name: "clone", args: [6]uint64{unix.CLONE_NEWPID}, want: retAllow},
				{name: "clone", args: [6]uint64{unix.CLONE_NEWPID | unix.CLONE_NEWUSER}, want: retEPERM},
				{name: "kill", args: [6]uint64{1, 15}, want: retAllow},
				{name: "kill", args: [6]uint64{1, 9}, want: retEPERM},
				{name: "tkill", args: [6]uint64{1, 8}, want: retAllow},
				{name: "tkill", args: [6]uint64{1, 9}, want: retEPERM},
				{name: "tgkill", args: [6]uint64{1, 1, 9}, want: retAllow},
				{name: "tgkill", args: [6]uint64{1, 1, 10}, want: retEPERM},
				{name: "dup", args: [6]uint64{9}, want: retAllow},
				{name: "dup", args: [6]uint64{8}, want: retEPERM},
				{name: "dup3", args: [6]uint64{0, 0, 1<<40 + 1}, want: retAllow},
				{name: "dup3", args: [6]uint64{0, 0, 1 << 40}, want: retEPERM},
			},
		},
		{
			name: "flags",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}},
			flags: FlagTSync | FlagLog | FlagSpecAllow,
			calls: []call{{name: "getpid", want: retAllow}},
		},
		{
			name: "enosys stub",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid", "getppid"}, Action: specs.ActAllow},
				{Names: []string{"mount"}, Action: specs.ActErrno},
			}},
			calls: []call{
				{name: "getpid", want: retAllow},
				{name: "getppid", want: retAllow},
				{name: "mount", want: retEPERM},
				{name: "read", want: retEPERM},
				{nr: 5000, want: retENOSYSx},
			},
		},
		{
			name: "no stub when the default answers ENOSYS",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(uint(unix.ENOSYS)), Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid"}, Action: specs.ActAllow},
			}},
			calls: []call{{name: "getpid", want: retAllow}, {nr: 5000, want: retENOSYSx}},
		},
		{
			name: "no stub when the default allows",
			cfg: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getpid"}, Action: specs.ActErrno},
			}},
			calls: []call{{name: "getpid", want: retEPERM}, {nr: 5000, want: retAllow}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog, err := Compile(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if prog.Flags != tt.flags {
				t.Errorf("flags %#x, want %#x", prog.Flags, tt.flags)
			}
			check(t, prog, arch, tt.calls)
			// Another architecture than those in the filter is killed.
			if got, _ := run(prog.Filter, seccompData{nr: 1, arch: unix.AUDIT_ARCH_M68K}); got != retKill {
				t.Errorf("foreign architecture: verdict %#x, want kill", got)
			}
		})
	}
}

func TestCompileDefaultProfile(t *testing.T) {
	arch := nativeAudit(t)
	cfg, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("default profile: %d instructions (%s)", len(prog.Filter), libVersion())
	check(t, prog, arch, []call{
		{name: "read", want: retAllow},
		{name: "getcwd", want: retAllow},
		{name: "unshare", want: retEPERM},
		{name: "mount", want: retEPERM},
		{name: "ptrace", want: retAllow}, // kernel >= 4.8
		{name: "personality", args: [6]uint64{0}, want: retAllow},
		{name: "personality", args: [6]uint64{0x1234}, want: retEPERM},
		{name: "socket", args: [6]uint64{unix.AF_UNIX}, want: retAllow},
		{name: "socket", args: [6]uint64{unix.AF_VSOCK}, want: retEPERM},
		{name: "clone", args: [6]uint64{uint64(unix.SIGCHLD)}, want: retAllow},
		{name: "clone", args: [6]uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, want: retEPERM},
		{name: "clone3", want: retENOSYSx}, // Docker answers ENOSYS so that libc falls back to clone
		{nr: 5000, want: retENOSYSx},
	})

	// With CAP_SYS_ADMIN Docker allows mount, unshare and clone with namespaces.
	admin, err := DefaultProfile(append([]string{"CAP_SYS_ADMIN"}, dockerCaps...))
	if err != nil {
		t.Fatal(err)
	}
	prog, err = Compile(admin)
	if err != nil {
		t.Fatal(err)
	}
	check(t, prog, arch, []call{
		{name: "unshare", want: retAllow},
		{name: "mount", want: retAllow},
		{name: "clone", args: [6]uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}, want: retAllow},
	})

	if runtime.GOARCH == "amd64" {
		// Docker lists x86 and x32 on amd64; both get the same treatment.
		x86 := sysno(t, "unshare", libseccomp.ArchX86)
		x32 := sysno(t, "unshare", libseccomp.ArchX32)
		if x32&x32Bit == 0 {
			x32 |= x32Bit
		}
		pr, _ := Compile(cfg)
		for _, c := range []struct {
			arch uint32
			nr   int32
			want uint32
		}{
			{unix.AUDIT_ARCH_I386, x86, retEPERM},
			{unix.AUDIT_ARCH_I386, sysno(t, "read", libseccomp.ArchX86), retAllow},
			{unix.AUDIT_ARCH_I386, 5000, retENOSYSx},
			{unix.AUDIT_ARCH_X86_64, x32, retEPERM},
			{unix.AUDIT_ARCH_X86_64, sysno(t, "read", libseccomp.ArchX32) | x32Bit, retAllow},
			{unix.AUDIT_ARCH_X86_64, x32Bit | 5000, retENOSYSx},
		} {
			got, err := run(pr.Filter, seccompData{nr: c.nr, arch: c.arch})
			if err != nil || got != c.want {
				t.Errorf("arch %#x nr %#x: verdict %#x, %v; want %#x", c.arch, c.nr, got, err, c.want)
			}
		}
	}
}

func TestEnosysStubX86(t *testing.T) {
	// The stub alone, ahead of a one-instruction "filter" returning ALLOW.
	tests := []struct {
		name  string
		maxes []archMax
		calls []seccompData
		want  []uint32
	}{
		{
			name:  "amd64 and x32",
			maxes: []archMax{{"amd64", 400}, {"x86", 300}, {"x32", 350}},
			calls: []seccompData{
				{nr: 400, arch: unix.AUDIT_ARCH_X86_64}, {nr: 401, arch: unix.AUDIT_ARCH_X86_64},
				{nr: x32Bit | 350, arch: unix.AUDIT_ARCH_X86_64}, {nr: x32Bit | 351, arch: unix.AUDIT_ARCH_X86_64},
				{nr: 300, arch: unix.AUDIT_ARCH_I386}, {nr: 301, arch: unix.AUDIT_ARCH_I386},
				{nr: 999, arch: unix.AUDIT_ARCH_AARCH64},
			},
			want: []uint32{retAllow, retENOSYSx, retAllow, retENOSYSx, retAllow, retENOSYSx, retAllow},
		},
		{
			name:  "amd64 alone leaves x32 to the filter",
			maxes: []archMax{{"amd64", 400}},
			calls: []seccompData{{nr: 401, arch: unix.AUDIT_ARCH_X86_64}, {nr: x32Bit | 999, arch: unix.AUDIT_ARCH_X86_64}},
			want:  []uint32{retENOSYSx, retAllow},
		},
		{
			name:  "x32 alone leaves amd64 to the filter",
			maxes: []archMax{{"x32", 350}},
			calls: []seccompData{{nr: 999, arch: unix.AUDIT_ARCH_X86_64}, {nr: x32Bit | 351, arch: unix.AUDIT_ARCH_X86_64}},
			want:  []uint32{retAllow, retENOSYSx},
		},
		{
			name:  "s390x multiplexer",
			maxes: []archMax{{"s390x", 400}},
			calls: []seccompData{{nr: 0, arch: unix.AUDIT_ARCH_S390X}, {nr: 1, arch: unix.AUDIT_ARCH_S390X}, {nr: 401, arch: unix.AUDIT_ARCH_S390X}},
			want:  []uint32{retENOSYSx, retAllow, retENOSYSx},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prog := append(enosysStub(tt.maxes), SockFilter{Code: bpfRetK, K: retAllow})
			for i, d := range tt.calls {
				got, err := run(prog, d)
				if err != nil || got != tt.want[i] {
					t.Errorf("arch %#x nr %#x: verdict %#x, %v; want %#x", d.arch, d.nr, got, err, tt.want[i])
				}
			}
		})
	}
	if s := enosysStub([]archMax{{"amd64", 0}, {"vax", 10}}); s != nil {
		t.Errorf("stub without known syscalls: %v, want nil", s)
	}
}

func BenchmarkCompileDefault(b *testing.B) {
	cfg, err := DefaultProfile(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
