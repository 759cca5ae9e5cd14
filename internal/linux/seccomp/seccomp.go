// Package seccomp turns linux.seccomp of an OCI spec into a BPF program and
// installs it. Compilation (libseccomp) happens in the runtime's parent
// process; installing the compiled program is one raw syscall in the
// container's init, so init does not link or call libseccomp.
//
// The parent calls Compile (or CompileCached), sends the Program's
// MarshalBinary bytes to init over the sync pipe, and init calls
// UnmarshalBinary and then Install right before it execs the container
// process, on the same locked OS thread, after PR_SET_NO_NEW_PRIVS.
package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Program is a compiled filter ready to install.
type Program struct {
	// Filter is the classic BPF program, in the kernel's sock_filter layout.
	Filter []SockFilter
	// Flags are SECCOMP_FILTER_FLAG_* bits for seccomp(2).
	Flags uint
}

// SockFilter is one BPF instruction (struct sock_filter, 8 bytes).
type SockFilter struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// SECCOMP_FILTER_FLAG_* bits (linux/seccomp.h) that berth supports.
const (
	FlagTSync     = 1 << 0 // SECCOMP_FILTER_FLAG_TSYNC
	FlagLog       = 1 << 1 // SECCOMP_FILTER_FLAG_LOG
	FlagSpecAllow = 1 << 2 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
)

// maxInstructions is the kernel's limit on one filter (BPF_MAXINSNS).
const maxInstructions = 4096

// Wire format: magic "bsc" + version byte, flags (uint32), instruction count
// (uint32), then count instructions of 8 bytes (code u16, jt u8, jf u8, k u32).
// All little endian, so the bytes mean the same on every host.
const (
	wireMagic   = "bsc\x01"
	wireHeader  = 12
	wireInsnLen = 8
)

// MarshalBinary encodes p as a 12-byte header and its raw instructions.
func (p *Program) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, wireHeader+wireInsnLen*len(p.Filter)))
}

// AppendBinary appends the MarshalBinary encoding of p to b.
func (p *Program) AppendBinary(b []byte) ([]byte, error) {
	if len(p.Filter) == 0 || len(p.Filter) > maxInstructions {
		return nil, fmt.Errorf("seccomp program has %d instructions, want 1 to %d", len(p.Filter), maxInstructions)
	}
	if uint64(p.Flags) > 0xffffffff {
		return nil, fmt.Errorf("seccomp program flags %#x do not fit in 32 bits", p.Flags)
	}
	b = append(b, wireMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Flags))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Filter)))
	for _, ins := range p.Filter {
		b = binary.LittleEndian.AppendUint16(b, ins.Code)
		b = append(b, ins.Jt, ins.Jf)
		b = binary.LittleEndian.AppendUint32(b, ins.K)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced, replacing p's contents.
func (p *Program) UnmarshalBinary(b []byte) error {
	if len(b) < wireHeader || string(b[:4]) != wireMagic {
		return errors.New("decode seccomp program: bad header")
	}
	flags := binary.LittleEndian.Uint32(b[4:])
	n := binary.LittleEndian.Uint32(b[8:])
	if n == 0 || n > maxInstructions {
		return fmt.Errorf("decode seccomp program: %d instructions, want 1 to %d", n, maxInstructions)
	}
	if len(b) != wireHeader+wireInsnLen*int(n) {
		return fmt.Errorf("decode seccomp program: %d bytes for %d instructions", len(b), n)
	}
	f := make([]SockFilter, n)
	for i := range f {
		r := b[wireHeader+wireInsnLen*i:]
		f[i] = SockFilter{
			Code: binary.LittleEndian.Uint16(r),
			Jt:   r[2],
			Jf:   r[3],
			K:    binary.LittleEndian.Uint32(r[4:]),
		}
	}
	p.Filter, p.Flags = f, uint(flags)
	return nil
}
