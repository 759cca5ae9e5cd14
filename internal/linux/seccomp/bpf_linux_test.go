package seccomp

import (
	"encoding/binary"
	"fmt"
)

// seccompData is struct seccomp_data, what a filter sees.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.NativeEndian.PutUint32(b[0:], uint32(d.nr))
	binary.NativeEndian.PutUint32(b[4:], d.arch)
	binary.NativeEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// run interprets a classic BPF seccomp filter, as the kernel would, and
// returns its verdict. It knows the instructions libseccomp and the ENOSYS
// stub emit, and fails on others.
func run(prog []SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		switch ins.Code {
		case 0x20: // ld [k]
			if ins.K%4 != 0 || int(ins.K)+4 > len(data) {
				return 0, fmt.Errorf("pc %d: load at %d", pc, ins.K)
			}
			a = binary.NativeEndian.Uint32(data[ins.K:])
		case 0x60: // ld M[k]
			a = mem[ins.K]
		case 0x61: // ldx M[k]
			x = mem[ins.K]
		case 0x02: // st M[k]
			mem[ins.K] = a
		case 0x03: // stx M[k]
			mem[ins.K] = x
		case 0x00: // ld #k
			a = ins.K
		case 0x01: // ldx #k
			x = ins.K
		case 0x07: // tax
			x = a
		case 0x87: // txa
			a = x
		case 0x54: // and #k
			a &= ins.K
		case 0x5c: // and x
			a &= x
		case 0x05: // ja
			pc += int(ins.K)
		case 0x15, 0x25, 0x35, 0x45, 0x1d, 0x2d, 0x3d, 0x4d: // jeq/jgt/jge/jset, k or x
			v := ins.K
			if ins.Code&0x08 != 0 {
				v = x
			}
			var ok bool
			switch ins.Code & 0xf0 {
			case 0x10:
				ok = a == v
			case 0x20:
				ok = a > v
			case 0x30:
				ok = a >= v
			case 0x40:
				ok = a&v != 0
			}
			if ok {
				pc += int(ins.Jt)
			} else {
				pc += int(ins.Jf)
			}
		case 0x06: // ret #k
			return ins.K, nil
		case 0x16: // ret a
			return a, nil
		default:
			return 0, fmt.Errorf("pc %d: opcode %#x not interpreted", pc, ins.Code)
		}
	}
	return 0, fmt.Errorf("program ran off its end")
}
