package mount

import (
	"errors"
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// rlimitNames is indexed by resource number. A static array: no init work.
var rlimitNames = [...]string{
	"RLIMIT_CPU",
	"RLIMIT_FSIZE",
	"RLIMIT_DATA",
	"RLIMIT_STACK",
	"RLIMIT_CORE",
	"RLIMIT_RSS",
	"RLIMIT_NPROC",
	"RLIMIT_NOFILE",
	"RLIMIT_MEMLOCK",
	"RLIMIT_AS",
	"RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE",
	"RLIMIT_NICE",
	"RLIMIT_RTPRIO",
	"RLIMIT_RTTIME",
}

// ParseRlimitType maps an OCI process.rlimits type ("RLIMIT_NOFILE") to the
// kernel's resource number.
func ParseRlimitType(name string) (int, error) {
	for i, n := range rlimitNames {
		if n == name {
			return i, nil
		}
	}
	return 0, errdefs.InvalidArgument(fmt.Errorf("process.rlimits: unknown type %q", name))
}

// SetRlimits sets each limit on the calling process (limits belong to the
// whole process, not a thread). It uses prlimit(2) through x/sys, which
// also tells the Go runtime not to put back its own RLIMIT_NOFILE at exec.
// Raising a hard limit needs CAP_SYS_RESOURCE in the user namespace that
// owns the process; without it the error says which limit and by how much.
func SetRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, err := ParseRlimitType(l.Type)
		if err != nil {
			return err
		}
		if l.Soft > l.Hard {
			return errdefs.InvalidArgument(fmt.Errorf("process.rlimits: %s soft limit %s exceeds its hard limit %s",
				l.Type, limitString(l.Soft), limitString(l.Hard)))
		}
		want := unix.Rlimit{Cur: l.Soft, Max: l.Hard}
		err = unix.Prlimit(0, res, &want, nil)
		if err == nil {
			continue
		}
		var cur unix.Rlimit
		if errors.Is(err, unix.EPERM) && unix.Prlimit(0, res, nil, &cur) == nil && l.Hard > cur.Max {
			return errdefs.Permission(fmt.Errorf("process.rlimits: %s hard limit %s exceeds the current %s and raising it needs CAP_SYS_RESOURCE: %w",
				l.Type, limitString(l.Hard), limitString(cur.Max), err))
		}
		return fmt.Errorf("process.rlimits: set %s to soft %s, hard %s: %w", l.Type, limitString(l.Soft), limitString(l.Hard), err)
	}
	return nil
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}
