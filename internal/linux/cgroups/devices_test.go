package cgroups

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDeviceRulesV1String(t *testing.T) {
	rules, err := deviceRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rw"},
		{Allow: true, Type: "b", Major: ptr[int64](8), Access: "m"},
		{Allow: true, Type: "c", Minor: ptr[int64](0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a *:* rwm", "c 1:3 rw", "b 8:* m", "c *:0 rwm"}
	for i, r := range rules {
		if got := r.v1String(); got != want[i] {
			t.Errorf("rule %d = %q, want %q", i, got, want[i])
		}
	}
}

// runDeviceProgram interprets the few instructions deviceProgram emits, so
// its decisions are tested without a kernel (the kernel is tested in the
// root-only tests).
func runDeviceProgram(t *testing.T, prog []insn, typ, major, minor, access uint32) bool {
	t.Helper()
	ctx := [3]uint32{access<<16 | typ, major, minor}
	var r [11]uint64
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.code {
		case opLdxW:
			r[in.dst] = uint64(ctx[in.off/4])
		case opAnd32K:
			r[in.dst] = uint64(uint32(r[in.dst]) & uint32(in.imm))
		case opRsh32K:
			r[in.dst] = uint64(uint32(r[in.dst]) >> uint32(in.imm))
		case opMov32K:
			r[in.dst] = uint64(uint32(in.imm))
		case opMov32X:
			r[in.dst] = uint64(uint32(r[in.src]))
		case opJeqK, opJneK, opJneX:
			b := uint64(int64(in.imm))
			if in.code == opJneX {
				b = r[in.src]
			}
			if (in.code == opJeqK) == (r[in.dst] == b) {
				pc += int(in.off)
				if pc+1 >= len(prog) {
					t.Fatalf("jump past the end at %d", pc)
				}
			}
		case opExit:
			return r[0] == 1
		default:
			t.Fatalf("unknown opcode %#x", in.code)
		}
	}
	t.Fatal("program fell off its end")
	return false
}

func TestDeviceProgram(t *testing.T) {
	defaults := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"}, // null
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](5), Access: "r"},   // zero, read only
		{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rw"},                      // pts
		{Allow: false, Type: "c", Major: ptr[int64](136), Minor: ptr[int64](9), Access: "w"},
	}
	tests := []struct {
		name              string
		rules             []specs.LinuxDeviceCgroup
		typ, major, minor uint32
		access            uint32
		want              bool
	}{
		{"null rw", defaults, devChar, 1, 3, accRead | accWrite, true},
		{"zero r", defaults, devChar, 1, 5, accRead, true},
		{"zero rw", defaults, devChar, 1, 5, accRead | accWrite, false},
		{"block", defaults, devBlock, 1, 3, accRead, false},
		{"pts 1", defaults, devChar, 136, 1, accRead | accWrite, true},
		{"pts 1 mknod", defaults, devChar, 136, 1, accMknod, false},
		{"pts 9 read", defaults, devChar, 136, 9, accRead, true},
		{"pts 9 write", defaults, devChar, 136, 9, accWrite | accRead, false},
		{"sda", defaults, devBlock, 8, 0, accRead, false},
		{"no rules", nil, devChar, 1, 3, accRead, false},
		{"allow all", []specs.LinuxDeviceCgroup{{Allow: true}}, devBlock, 8, 0, accAll, true},
		{"allow all then deny", []specs.LinuxDeviceCgroup{{Allow: true}, {Type: "b", Access: "w"}}, devBlock, 8, 0, accRead, true},
		{"allow all then deny w", []specs.LinuxDeviceCgroup{{Allow: true}, {Type: "b", Access: "w"}}, devBlock, 8, 0, accWrite, false},
		{"deny all last", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c"}, {Allow: false}}, devChar, 1, 3, accRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := deviceRules(tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			prog := deviceProgram(rules)
			if got := runDeviceProgram(t, prog, tt.typ, tt.major, tt.minor, tt.access); got != tt.want {
				t.Errorf("access %d to %d %d:%d = %v, want %v", tt.access, tt.typ, tt.major, tt.minor, got, tt.want)
			}
			if n := len(encodeProgram(prog)); n != 8*len(prog) {
				t.Errorf("encoded %d bytes for %d instructions", n, len(prog))
			}
		})
	}
}
