// Package caps turns the capability names of an OCI spec
// (process.capabilities) into kernel capability sets, applies them to the
// calling thread in the order runc uses, and reads a process's current sets.
//
// Nothing here does work at package init: the name table is a static array
// and the kernel's last capability is read on first use.
package caps

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Cap is a capability number as the kernel numbers them (CAP_CHOWN is 0).
type Cap int

// names is indexed by Cap. A static array: no work at init.
var names = [...]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// MaxKnown is the highest capability berth has a name for.
const MaxKnown = Cap(len(names) - 1)

// String returns the kernel's name ("CAP_NET_ADMIN"), or "CAP_<n>" for a
// number berth has no name for.
func (c Cap) String() string {
	if c >= 0 && c <= MaxKnown {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// ParseName maps a name as the OCI spec writes it ("CAP_SYS_ADMIN": upper
// case, with the prefix, as runc requires) to its number.
func ParseName(name string) (Cap, bool) {
	for i, n := range names {
		if n == name {
			return Cap(i), true
		}
	}
	return 0, false
}

// Set is a set of capabilities, bit n for Cap n: the layout of the masks in
// /proc/PID/status and of capset(2)'s two 32-bit words.
type Set uint64

// All is the set of every capability from 0 to last.
func All(last Cap) Set {
	if last < 0 {
		return 0
	}
	if last >= 63 {
		return ^Set(0)
	}
	return Set(1)<<(last+1) - 1
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c >= 0 && c < 64 && s&(1<<c) != 0 }

// With returns s with c added.
func (s Set) With(c Cap) Set {
	if c < 0 || c >= 64 {
		return s
	}
	return s | 1<<c
}

// Without returns s with c removed.
func (s Set) Without(c Cap) Set {
	if c < 0 || c >= 64 {
		return s
	}
	return s &^ (1 << c)
}

// Names lists the capabilities in s by name, in number order, for display.
func (s Set) Names() []string {
	if s == 0 {
		return nil
	}
	out := make([]string, 0, popcount(s))
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			out = append(out, c.String())
		}
	}
	return out
}

func popcount(s Set) int {
	n := 0
	for ; s != 0; s &= s - 1 {
		n++
	}
	return n
}

// Parse converts names to a set. Names it does not know are left out of the
// set and returned in unknown (in order, without repeats), so the caller can
// warn and go on, as runc does, or refuse.
func Parse(names []string) (s Set, unknown []string) {
	return parse(names, MaxKnown, nil)
}

// parse is Parse with capabilities above last counted as unknown, appending
// to unknown.
func parse(list []string, last Cap, unknown []string) (Set, []string) {
	var s Set
	for _, n := range list {
		c, ok := ParseName(n)
		if !ok || c > last {
			if !contains(unknown, n) {
				unknown = append(unknown, n)
			}
			continue
		}
		s = s.With(c)
	}
	return s, unknown
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Config holds the five capability sets of a process.
type Config struct {
	Bounding    Set
	Effective   Set
	Inheritable Set
	Permitted   Set
	Ambient     Set
}

// FromSpec converts process.capabilities into sets. Names that are unknown,
// or that the kernel does not have (above last, normally LastCap()), are
// skipped and returned once each in unknown, for the caller to warn about
// ("ignoring unknown or unsupported capabilities"). A nil c gives empty sets:
// the process keeps no capabilities at all, as with runc.
func FromSpec(c *specs.LinuxCapabilities, last Cap) (cfg Config, unknown []string) {
	if c == nil {
		return Config{}, nil
	}
	cfg.Bounding, unknown = parse(c.Bounding, last, unknown)
	cfg.Effective, unknown = parse(c.Effective, last, unknown)
	cfg.Inheritable, unknown = parse(c.Inheritable, last, unknown)
	cfg.Permitted, unknown = parse(c.Permitted, last, unknown)
	cfg.Ambient, unknown = parse(c.Ambient, last, unknown)
	return cfg, unknown
}
