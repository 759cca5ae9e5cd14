package seccomp

import "golang.org/x/sys/unix"

// The ENOSYS stub, as runc's patchbpf: a profile names the syscalls its
// author knew of. A syscall with a number above the largest one the profile
// names on that architecture is newer than the profile, and is answered
// ENOSYS instead of the default action, so that libc falls back to an older
// syscall (clone3 → clone, fchmodat2 → fchmodat) instead of failing on EPERM.
// The stub runs before libseccomp's program and jumps into it otherwise.

// Classic BPF opcodes (linux/bpf_common.h).
const (
	bpfLdWAbs = 0x00 | 0x00 | 0x20 // BPF_LD | BPF_W | BPF_ABS
	bpfJa     = 0x05 | 0x00        // BPF_JMP | BPF_JA
	bpfJeqK   = 0x05 | 0x10        // BPF_JMP | BPF_JEQ | BPF_K
	bpfJgtK   = 0x05 | 0x20        // BPF_JMP | BPF_JGT | BPF_K
	bpfJsetK  = 0x05 | 0x40        // BPF_JMP | BPF_JSET | BPF_K
	bpfRetK   = 0x06 | 0x00        // BPF_RET | BPF_K

	offNr   = 0 // offsetof(struct seccomp_data, nr)
	offArch = 4 // offsetof(struct seccomp_data, arch)

	x32Bit    = 0x40000000 // __X32_SYSCALL_BIT
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// archMax is the largest syscall number a profile names on one of the
// filter's architectures (libseccomp name).
type archMax struct {
	arch string
	max  uint32
}

// stubArch is one AUDIT_ARCH value the stub tests for. x86_64 and x32 share
// AUDIT_ARCH_X86_64; x32 syscall numbers have bit 30 set.
type stubArch struct {
	audit           uint32
	max, x32Max     uint32 // 0: that ABI is not in the filter
	s390Multiplex   bool
	hasMain, hasX32 bool
}

// enosysStub returns the stub to put before libseccomp's program, or nil
// when there is nothing to test (no architecture with a known syscall).
func enosysStub(maxes []archMax) []SockFilter {
	var groups []stubArch
	find := func(audit uint32) *stubArch {
		for i := range groups {
			if groups[i].audit == audit {
				return &groups[i]
			}
		}
		groups = append(groups, stubArch{audit: audit})
		return &groups[len(groups)-1]
	}
	for _, m := range maxes {
		audit := auditArch(m.arch)
		if audit == 0 || m.max == 0 {
			continue // the filter's bad-arch action or default applies
		}
		g := find(audit)
		if m.arch == "x32" {
			g.hasX32, g.x32Max = true, max(g.x32Max, m.max|x32Bit)
			continue
		}
		g.hasMain, g.max = true, max(g.max, m.max)
		g.s390Multiplex = m.arch == "s390" || m.arch == "s390x"
	}
	if len(groups) == 0 {
		return nil
	}

	// Sections, one per architecture. A "ja filter" is marked with
	// jaFilter and resolved once the stub's length is known.
	const jaFilter = ^uint32(0)
	tail := func(limit uint32) []SockFilter {
		return []SockFilter{
			{Code: bpfJgtK, K: limit, Jt: 0, Jf: 1},
			{Code: bpfRetK, K: retENOSYS},
			{Code: bpfJa, K: jaFilter},
		}
	}
	sections := make([][]SockFilter, len(groups))
	for i, g := range groups {
		s := []SockFilter{{Code: bpfLdWAbs, K: offNr}}
		switch {
		case g.audit == unix.AUDIT_ARCH_X86_64 && g.hasMain && g.hasX32:
			s = append(s, SockFilter{Code: bpfJsetK, K: x32Bit, Jt: 3})
			s = append(s, tail(g.max)...)
			s = append(s, tail(g.x32Max)...)
		case g.audit == unix.AUDIT_ARCH_X86_64 && g.hasMain:
			s = append(s, SockFilter{Code: bpfJsetK, K: x32Bit, Jt: 2}) // x32: to the filter
			s = append(s, tail(g.max)...)
		case g.audit == unix.AUDIT_ARCH_X86_64:
			s = append(s, SockFilter{Code: bpfJsetK, K: x32Bit, Jf: 2}) // not x32: to the filter
			s = append(s, tail(g.x32Max)...)
		default:
			if g.s390Multiplex {
				// Syscall 0 is how s390 multiplexes numbers the kernel
				// does not know; it must get ENOSYS too.
				s = append(s, SockFilter{Code: bpfJeqK, K: 0, Jt: 1})
			}
			s = append(s, tail(g.max)...)
		}
		sections[i] = s
	}

	// Head: load the arch, jump to its section, else into the filter.
	headLen := 1 + 2*len(groups) + 1
	stub := make([]SockFilter, 0, headLen+8*len(groups))
	stub = append(stub, SockFilter{Code: bpfLdWAbs, K: offArch})
	start := headLen
	for i, g := range groups {
		at := len(stub) + 1 // index of the ja
		stub = append(stub,
			SockFilter{Code: bpfJeqK, K: g.audit, Jt: 0, Jf: 1},
			SockFilter{Code: bpfJa, K: uint32(start - (at + 1))})
		start += len(sections[i])
	}
	stub = append(stub, SockFilter{Code: bpfJa, K: jaFilter})
	for _, s := range sections {
		stub = append(stub, s...)
	}
	for i := range stub {
		if stub[i].Code == bpfJa && stub[i].K == jaFilter {
			stub[i].K = uint32(len(stub) - (i + 1))
		}
	}
	return stub
}

// auditArch maps libseccomp's architecture name to the AUDIT_ARCH_* value
// the kernel puts in seccomp_data.arch, or 0.
func auditArch(name string) uint32 {
	switch name {
	case "x86":
		return unix.AUDIT_ARCH_I386
	case "amd64", "x32":
		return unix.AUDIT_ARCH_X86_64
	case "arm":
		return unix.AUDIT_ARCH_ARM
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	case "mips":
		return unix.AUDIT_ARCH_MIPS
	case "mips64":
		return unix.AUDIT_ARCH_MIPS64
	case "mips64n32":
		return unix.AUDIT_ARCH_MIPS64N32
	case "mipsel":
		return unix.AUDIT_ARCH_MIPSEL
	case "mipsel64":
		return unix.AUDIT_ARCH_MIPSEL64
	case "mipsel64n32":
		return unix.AUDIT_ARCH_MIPSEL64N32
	case "ppc":
		return unix.AUDIT_ARCH_PPC
	case "ppc64":
		return unix.AUDIT_ARCH_PPC64
	case "ppc64le":
		return unix.AUDIT_ARCH_PPC64LE
	case "s390":
		return unix.AUDIT_ARCH_S390
	case "s390x":
		return unix.AUDIT_ARCH_S390X
	case "riscv64":
		return unix.AUDIT_ARCH_RISCV64
	case "loong64", "loongarch64":
		return unix.AUDIT_ARCH_LOONGARCH64
	}
	return 0
}
