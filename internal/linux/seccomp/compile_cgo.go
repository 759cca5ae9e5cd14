//go:build linux && cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Compile checks cfg and compiles it with libseccomp into a Program for this
// host: the native architecture plus cfg's architectures, cfg's rules, and
// the ENOSYS stub for syscalls newer than the profile (see enosysStub).
// Syscall names unknown to libseccomp are skipped, as runc does: they do not
// exist on this host. Errors on cfg are errdefs.InvalidArgument (or
// NotImplemented for SCMP_ACT_NOTIFY) and name the field.
func Compile(cfg *specs.LinuxSeccomp) (*Program, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	return compile(p)
}

func compile(p *plan) (*Program, error) {
	f, err := libseccomp.NewFilter(scmpAction(p.def))
	if err != nil {
		return nil, fmt.Errorf("seccomp: create filter: %w", err)
	}
	defer f.Release()

	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	arches := []libseccomp.ScmpArch{native}
	for _, name := range p.arches {
		a, err := libseccomp.GetArchFromString(name)
		if err != nil {
			continue // unreachable: archName gives names libseccomp parses
		}
		if err := f.AddArch(a); err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				return nil, fmt.Errorf("seccomp: add architecture %s: %w", name, err)
			}
			// This libseccomp does not know the architecture: leave it
			// out, so its syscalls get the bad-architecture action (kill).
			continue
		}
		if a != native {
			arches = append(arches, a)
		}
	}

	var conds []libseccomp.ScmpCondition
	for _, r := range p.rules {
		act := scmpAction(r.act)
		conds = conds[:0]
		for _, c := range r.conds {
			values := []uint64{c.value}
			if c.op == opMaskedEQ {
				values = append(values, c.valueTwo)
			}
			sc, err := libseccomp.MakeCondition(c.index, scmpOp(c.op), values...)
			if err != nil {
				return nil, fmt.Errorf("seccomp: condition on argument %d: %w", c.index, err)
			}
			conds = append(conds, sc)
		}
		for _, name := range r.names {
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to this libseccomp: not on this host
			}
			switch {
			case len(conds) == 0:
				err = f.AddRule(nr, act)
			case r.split:
				for _, c := range conds {
					if err = f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(nr, act, conds)
			}
			if err != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("linux.seccomp.%s: add rule for %s: %w", r.field, name, err))
			}
		}
	}

	raw, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 || len(raw)%wireInsnLen != 0 {
		return nil, fmt.Errorf("seccomp: libseccomp exported %d bytes of BPF", len(raw))
	}
	var stub []SockFilter
	if needsStub(p.def) {
		stub = enosysStub(lastSyscalls(arches, p.names))
	}
	prog := &Program{Flags: p.flags, Filter: make([]SockFilter, len(stub), len(stub)+len(raw)/wireInsnLen)}
	copy(prog.Filter, stub)
	for i := 0; i < len(raw); i += wireInsnLen {
		// libseccomp exports in host byte order.
		prog.Filter = append(prog.Filter, SockFilter{
			Code: binary.NativeEndian.Uint16(raw[i:]),
			Jt:   raw[i+2],
			Jf:   raw[i+3],
			K:    binary.NativeEndian.Uint32(raw[i+4:]),
		})
	}
	if len(prog.Filter) > maxInstructions {
		return nil, errdefs.InvalidArgument(fmt.Errorf("linux.seccomp: filter has %d instructions, the kernel allows %d", len(prog.Filter), maxInstructions))
	}
	return prog, nil
}

// needsStub reports whether the ENOSYS stub applies: not when the default
// already allows (a tracer or logger handles new syscalls itself) or already
// answers ENOSYS.
func needsStub(def action) bool {
	switch def.kind {
	case actAllow, actLog, actTrace:
		return false
	case actErrno:
		return def.data != uint16(unix.ENOSYS)
	}
	return true
}

// lastSyscalls finds, for each architecture, the largest syscall number
// among the names the profile mentions (with any action).
func lastSyscalls(arches []libseccomp.ScmpArch, names []string) []archMax {
	out := make([]archMax, 0, len(arches))
	for _, a := range arches {
		var last libseccomp.ScmpSyscall
		for _, n := range names {
			nr, err := libseccomp.GetSyscallFromNameByArch(n, a)
			if err == nil && nr > last {
				last = nr
			}
		}
		out = append(out, archMax{arch: a.String(), max: uint32(last)})
	}
	return out
}

// exportBPF gets the compiled program from libseccomp: in memory with
// libseccomp >= 2.6, else through a memfd.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	raw, err := f.ExportBPFMem()
	if err == nil {
		return raw, nil
	}
	if !errors.Is(err, syscall.EOPNOTSUPP) {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	fd, err := unix.MemfdCreate("berth-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	file := os.NewFile(uintptr(fd), "berth-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	st, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	raw = make([]byte, st.Size())
	if _, err := file.ReadAt(raw, 0); err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	return raw, nil
}

func scmpAction(a action) libseccomp.ScmpAction {
	switch a.kind {
	case actKillThread:
		return libseccomp.ActKillThread
	case actKillProcess:
		return libseccomp.ActKillProcess
	case actTrap:
		return libseccomp.ActTrap
	case actErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(a.data))
	case actTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(a.data))
	case actAllow:
		return libseccomp.ActAllow
	case actLog:
		return libseccomp.ActLog
	}
	return libseccomp.ActInvalid
}

func scmpOp(op compareOp) libseccomp.ScmpCompareOp {
	switch op {
	case opNE:
		return libseccomp.CompareNotEqual
	case opLT:
		return libseccomp.CompareLess
	case opLE:
		return libseccomp.CompareLessOrEqual
	case opEQ:
		return libseccomp.CompareEqual
	case opGE:
		return libseccomp.CompareGreaterEqual
	case opGT:
		return libseccomp.CompareGreater
	case opMaskedEQ:
		return libseccomp.CompareMaskedEqual
	}
	return libseccomp.CompareInvalid
}

// libVersion identifies the libseccomp in use, for the compile cache key.
func libVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	api, _ := libseccomp.GetAPI()
	return fmt.Sprintf("libseccomp %d.%d.%d api %d", major, minor, micro, api)
}
