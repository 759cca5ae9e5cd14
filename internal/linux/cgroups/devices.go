package cgroups

import (
	"encoding/binary"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Access bits and device types as the kernel's bpf_cgroup_dev_ctx has them
// (include/uapi/linux/bpf.h); defined here so this file builds anywhere.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4
	accAll   = accMknod | accRead | accWrite

	devBlock = 1
	devChar  = 2
)

// deviceRule is one checked spec device rule.
type deviceRule struct {
	allow        bool
	typ          byte  // 'a', 'b' or 'c'
	major, minor int64 // -1: any
	access       uint8 // acc* bits
}

// deviceRules checks spec rules: type a, b or c (empty: a), access from "rwm"
// (empty: rwm), majors and minors non-negative (nil: any).
func deviceRules(in []specs.LinuxDeviceCgroup) ([]deviceRule, error) {
	out := make([]deviceRule, 0, len(in))
	for i, d := range in {
		r := deviceRule{allow: d.Allow, major: -1, minor: -1}
		switch d.Type {
		case "", "a":
			r.typ = 'a'
		case "b", "c":
			r.typ = d.Type[0]
		default:
			return nil, invalid(fieldDevices, "rule %d: type %q is not a, b or c", i, d.Type)
		}
		if d.Major != nil {
			if *d.Major < 0 || *d.Major > 1<<31-1 {
				return nil, invalid(fieldDevices, "rule %d: major %d is out of range", i, *d.Major)
			}
			r.major = *d.Major
		}
		if d.Minor != nil {
			if *d.Minor < 0 || *d.Minor > 1<<31-1 {
				return nil, invalid(fieldDevices, "rule %d: minor %d is out of range", i, *d.Minor)
			}
			r.minor = *d.Minor
		}
		for _, c := range d.Access {
			switch c {
			case 'r':
				r.access |= accRead
			case 'w':
				r.access |= accWrite
			case 'm':
				r.access |= accMknod
			default:
				return nil, invalid(fieldDevices, "rule %d: access %q is not made of r, w and m", i, d.Access)
			}
		}
		if r.access == 0 {
			r.access = accAll
		}
		out = append(out, r)
	}
	return out, nil
}

// v1String formats the rule for devices.allow / devices.deny: "c 1:3 rwm".
func (r deviceRule) v1String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	acc := ""
	if r.access&accRead != 0 {
		acc += "r"
	}
	if r.access&accWrite != 0 {
		acc += "w"
	}
	if r.access&accMknod != 0 {
		acc += "m"
	}
	return string(r.typ) + " " + num(r.major) + ":" + num(r.minor) + " " + acc
}

// insn is one eBPF instruction (struct bpf_insn).
type insn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

// eBPF opcodes used by the device program.
const (
	opLdxW    = 0x61 // dst = *(u32 *)(src + off)
	opAnd32K  = 0x54 // dst &= imm
	opRsh32K  = 0x74 // dst >>= imm
	opMov32K  = 0xb4 // dst = imm
	opMov32X  = 0xbc // dst = src
	opJeqK    = 0x15 // if dst == imm goto pc+off
	opJneK    = 0x55 // if dst != imm goto pc+off
	opJneX    = 0x5d // if dst != src goto pc+off
	opExit    = 0x95
	jumpToEnd = -1 // placeholder: to the next rule's block
)

// deviceProgram builds a BPF_PROG_TYPE_CGROUP_DEVICE program for rules with
// the spec's meaning (the last matching rule wins, nothing matched: deny),
// as crun builds it: rules are checked from the last to the first and the
// first match returns. An allow rule matches when it covers all the access
// asked for; a deny rule when it covers any of it. (Unlike v1 this does not
// merge several allow rules for the same device into one.)
func deviceProgram(rules []deviceRule) []insn {
	// R2 = type, R3 = access, R4 = major, R5 = minor, from struct bpf_cgroup_dev_ctx.
	prog := []insn{
		{code: opLdxW, dst: 2, src: 1, off: 0},
		{code: opAnd32K, dst: 2, imm: 0xffff},
		{code: opLdxW, dst: 3, src: 1, off: 0},
		{code: opRsh32K, dst: 3, imm: 16},
		{code: opLdxW, dst: 4, src: 1, off: 4},
		{code: opLdxW, dst: 5, src: 1, off: 8},
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		var block []insn
		switch r.typ {
		case 'b':
			block = append(block, insn{code: opJneK, dst: 2, off: jumpToEnd, imm: devBlock})
		case 'c':
			block = append(block, insn{code: opJneK, dst: 2, off: jumpToEnd, imm: devChar})
		}
		if r.access != accAll {
			block = append(block,
				insn{code: opMov32X, dst: 1, src: 3},
				insn{code: opAnd32K, dst: 1, imm: int32(r.access)})
			if r.allow {
				block = append(block, insn{code: opJneX, dst: 1, src: 3, off: jumpToEnd})
			} else {
				block = append(block, insn{code: opJeqK, dst: 1, off: jumpToEnd, imm: 0})
			}
		}
		if r.major >= 0 {
			block = append(block, insn{code: opJneK, dst: 4, off: jumpToEnd, imm: int32(r.major)})
		}
		if r.minor >= 0 {
			block = append(block, insn{code: opJneK, dst: 5, off: jumpToEnd, imm: int32(r.minor)})
		}
		conditional := len(block) > 0
		block = append(block, insn{code: opMov32K, dst: 0, imm: boolInt(r.allow)}, insn{code: opExit})
		for j := range block {
			if block[j].off == jumpToEnd {
				block[j].off = int16(len(block) - j - 1)
			}
		}
		prog = append(prog, block...)
		if !conditional {
			return prog // matches everything: what follows would be unreachable, which the verifier refuses
		}
	}
	return append(prog, insn{code: opMov32K, dst: 0, imm: 0}, insn{code: opExit})
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// encodeProgram lays instructions out as the kernel reads them.
func encodeProgram(prog []insn) []byte {
	little := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	buf := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		regs := in.dst&0xf | in.src<<4
		if !little {
			regs = in.dst<<4 | in.src&0xf
		}
		buf = append(buf, in.code, regs)
		buf = binary.NativeEndian.AppendUint16(buf, uint16(in.off))
		buf = binary.NativeEndian.AppendUint32(buf, uint32(in.imm))
	}
	return buf
}
