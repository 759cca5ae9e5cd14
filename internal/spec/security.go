package spec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// securityOpts is what --security-opt asked for.
type securityOpts struct {
	noNewPrivileges bool
	// seccomp is "" (the default profile), "builtin", "unconfined", a
	// profile's JSON, or the path of a profile file.
	seccomp string
	// unconfinedPaths drops the masked and read-only paths
	// (systempaths=unconfined).
	unconfinedPaths bool
	// writableCgroups mounts /sys/fs/cgroup read-write.
	writableCgroups bool
}

// parseSecurityOpts reads docker's --security-opt values. "key=value" is
// the form; "key:value" is docker's old one and still accepted. AppArmor
// and SELinux labels are accepted and ignored: berth applies neither.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		if opt == "disable" { // label=disable in its old short form
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return s, errdefs.InvalidArgument(fmt.Errorf("invalid --security-opt 1: %q", opt))
		}
		switch k {
		case "label", "apparmor":
		case "seccomp":
			s.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.InvalidArgument(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			s.noNewPrivileges = b
		case "systempaths":
			if v != "unconfined" {
				return s, errdefs.InvalidArgument(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			s.unconfinedPaths = true
		case "writable-cgroups":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, errdefs.InvalidArgument(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			s.writableCgroups = b
		default:
			return s, errdefs.InvalidArgument(fmt.Errorf("invalid --security-opt 2: %q", opt))
		}
	}
	return s, nil
}

// DefaultMaskedPaths are the paths docker hides from a container (an empty
// file or tmpfs over them).
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths are the paths docker remounts read-only.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}
