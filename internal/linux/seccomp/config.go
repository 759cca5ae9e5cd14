package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// This file checks linux.seccomp and turns it into a plan: the same content
// with every string resolved to a value, so that the libseccomp step cannot
// fail on bad input. It has no cgo and builds everywhere.

type actionKind uint8

const (
	actKillThread actionKind = iota + 1
	actKillProcess
	actTrap
	actErrno
	actTrace
	actAllow
	actLog
)

// action is an action with its 16-bit data (the errno for ERRNO, the
// message for TRACE).
type action struct {
	kind actionKind
	data uint16
}

type compareOp uint8

const (
	opNE compareOp = iota + 1
	opLT
	opLE
	opEQ
	opGE
	opGT
	opMaskedEQ
)

// cond compares one syscall argument. For opMaskedEQ, value is the mask and
// valueTwo the datum, as in libseccomp and runc.
type cond struct {
	index           uint
	op              compareOp
	value, valueTwo uint64
}

type rule struct {
	field string // "syscalls[3]", for errors
	names []string
	act   action
	// conds must all match (AND). When two of them test the same argument,
	// libseccomp cannot express that; runc then adds one rule per condition
	// (OR), and so does berth: see split.
	conds []cond
	split bool
}

type plan struct {
	def    action
	arches []string // libseccomp names, e.g. "x86", "x32"
	flags  uint
	rules  []rule // rules whose action equals def are dropped
	names  []string
}

const (
	eperm    = 1 // EPERM is 1 on every Linux architecture
	maxErrno = 4095
	maxArgs  = 6
)

func invalid(field, format string, args ...any) error {
	return errdefs.InvalidArgument(fmt.Errorf("linux.seccomp."+field+": "+format, args...))
}

func notImplemented(field, format string, args ...any) error {
	return errdefs.NotImplemented(fmt.Errorf("linux.seccomp."+field+": "+format, args...))
}

// newPlan checks cfg and resolves it. Errors name the field, as in
// `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`.
func newPlan(cfg *specs.LinuxSeccomp) (*plan, error) {
	if cfg == nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("linux.seccomp: no configuration"))
	}
	if cfg.ListenerPath != "" || cfg.ListenerMetadata != "" {
		return nil, notImplemented("listenerPath", "seccomp user notification is not supported")
	}
	p := &plan{}
	var err error
	if p.def, err = parseAction("defaultAction", cfg.DefaultAction, "defaultErrnoRet", cfg.DefaultErrnoRet); err != nil {
		return nil, err
	}
	for i, a := range cfg.Architectures {
		name := archName(a)
		if name == "" {
			return nil, invalid(fmt.Sprintf("architectures[%d]", i), "unknown architecture %q", a)
		}
		p.arches = append(p.arches, name)
	}
	for i, f := range cfg.Flags {
		switch f {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			p.flags |= FlagTSync
		case specs.LinuxSeccompFlagLog:
			p.flags |= FlagLog
		case specs.LinuxSeccompFlagSpecAllow:
			p.flags |= FlagSpecAllow
		case "SECCOMP_FILTER_FLAG_NEW_LISTENER", specs.LinuxSeccompFlagWaitKillableRecv:
			return nil, notImplemented(fmt.Sprintf("flags[%d]", i), "flag %q needs seccomp user notification, which is not supported", f)
		default:
			return nil, invalid(fmt.Sprintf("flags[%d]", i), "unknown flag %q", f)
		}
	}
	for i, sc := range cfg.Syscalls {
		field := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return nil, invalid(field+".names", "no syscall names")
		}
		for j, n := range sc.Names {
			if n == "" {
				return nil, invalid(fmt.Sprintf("%s.names[%d]", field, j), "empty syscall name")
			}
		}
		r := rule{field: field, names: sc.Names}
		if r.act, err = parseAction(field+".action", sc.Action, field+".errnoRet", sc.ErrnoRet); err != nil {
			return nil, err
		}
		var seen [maxArgs]bool
		for j, a := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", field, j)
			if a.Index >= maxArgs {
				return nil, invalid(af+".index", "index %d out of range, a syscall has %d arguments", a.Index, maxArgs)
			}
			c := cond{index: a.Index, value: a.Value}
			if c.op = parseOp(a.Op); c.op == 0 {
				return nil, invalid(af+".op", "unknown operator %q", a.Op)
			}
			if c.op == opMaskedEQ {
				c.valueTwo = a.ValueTwo
			}
			if seen[a.Index] {
				r.split = true
			}
			seen[a.Index] = true
			r.conds = append(r.conds, c)
		}
		p.names = append(p.names, sc.Names...)
		if r.act == p.def {
			continue // libseccomp refuses rules that repeat the default action
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func parseAction(field string, a specs.LinuxSeccompAction, retField string, ret *uint) (action, error) {
	var act action
	switch a {
	case specs.ActKill, specs.ActKillThread:
		act.kind = actKillThread
	case specs.ActKillProcess:
		act.kind = actKillProcess
	case specs.ActTrap:
		act.kind = actTrap
	case specs.ActErrno:
		act.kind, act.data = actErrno, eperm
	case specs.ActTrace:
		act.kind, act.data = actTrace, eperm
	case specs.ActAllow:
		act.kind = actAllow
	case specs.ActLog:
		act.kind = actLog
	case specs.ActNotify:
		return act, notImplemented(field, "action %q is not supported", a)
	case "":
		return act, invalid(field, "missing action")
	default:
		return act, invalid(field, "unknown action %q", a)
	}
	if ret == nil {
		return act, nil
	}
	switch {
	case act.kind == actErrno && *ret <= maxErrno, act.kind == actTrace && *ret <= 0xffff:
		act.data = uint16(*ret)
	case act.kind == actErrno:
		return act, invalid(retField, "errno %d out of range 0 to %d", *ret, maxErrno)
	case act.kind == actTrace:
		return act, invalid(retField, "value %d out of range 0 to 65535", *ret)
	default:
		return act, invalid(retField, "only allowed with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not %s", a)
	}
	return act, nil
}

func parseOp(op specs.LinuxSeccompOperator) compareOp {
	switch op {
	case specs.OpNotEqual:
		return opNE
	case specs.OpLessThan:
		return opLT
	case specs.OpLessEqual:
		return opLE
	case specs.OpEqualTo:
		return opEQ
	case specs.OpGreaterEqual:
		return opGE
	case specs.OpGreaterThan:
		return opGT
	case specs.OpMaskedEqual:
		return opMaskedEQ
	}
	return 0
}

// archName maps a spec architecture to libseccomp's name for it, or "".
func archName(a specs.Arch) string {
	switch a {
	case specs.ArchX86:
		return "x86"
	case specs.ArchX86_64:
		return "amd64"
	case specs.ArchX32:
		return "x32"
	case specs.ArchARM:
		return "arm"
	case specs.ArchAARCH64:
		return "arm64"
	case specs.ArchMIPS:
		return "mips"
	case specs.ArchMIPS64:
		return "mips64"
	case specs.ArchMIPS64N32:
		return "mips64n32"
	case specs.ArchMIPSEL:
		return "mipsel"
	case specs.ArchMIPSEL64:
		return "mipsel64"
	case specs.ArchMIPSEL64N32:
		return "mipsel64n32"
	case specs.ArchPPC:
		return "ppc"
	case specs.ArchPPC64:
		return "ppc64"
	case specs.ArchPPC64LE:
		return "ppc64le"
	case specs.ArchS390:
		return "s390"
	case specs.ArchS390X:
		return "s390x"
	case specs.ArchPARISC:
		return "parisc"
	case specs.ArchPARISC64:
		return "parisc64"
	case specs.ArchRISCV64:
		return "riscv64"
	case specs.ArchLOONGARCH64:
		return "loongarch64"
	case specs.ArchM68K:
		return "m68k"
	case specs.ArchSH:
		return "sh"
	case specs.ArchSHEB:
		return "sheb"
	}
	return ""
}
