package mount

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ValidateSysctl checks that setting linux.sysctl key changes only the
// container, following runc's rules: kernel.msg*, kernel.sem,
// kernel.sem_next_id, kernel.shm* and fs.mqueue.* need an ipc namespace;
// net.* a network namespace; kernel.domainname a uts namespace;
// kernel.hostname is refused (the hostname field sets it); anything else is
// refused as not namespaced.
//
// namespaces is keyed by the spec's namespace types ("ipc", "network",
// "uts"): true when the container has its own namespace of that type, a new
// one or a joined one that is not the runtime's own (joining the host's
// network namespace by path counts as false: the caller checks that). Keys
// may use "/" as the separator, as sysctl(8) allows.
func ValidateSysctl(key string, namespaces map[string]bool) error {
	if _, err := sysctlPath(key); err != nil {
		return err
	}
	k := dotted(key)
	need := ""
	switch {
	case strings.HasPrefix(k, "kernel.msg"), k == "kernel.sem", k == "kernel.sem_next_id",
		strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "fs.mqueue."):
		need = "ipc"
	case strings.HasPrefix(k, "net."):
		need = "network"
	case k == "kernel.domainname":
		need = "uts"
	case k == "kernel.hostname":
		return errdefs.InvalidArgument(fmt.Errorf("linux.sysctl.%s: not allowed; set the hostname field instead", key))
	default:
		return errdefs.InvalidArgument(fmt.Errorf("linux.sysctl.%s: not namespaced, so setting it would change the host "+
			"(allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* with an ipc namespace; net.* with a network namespace; kernel.domainname with a uts namespace)", key))
	}
	if !namespaces[need] {
		return errdefs.InvalidArgument(fmt.Errorf("linux.sysctl.%s: needs the container's own %s namespace; with the host's it would change the host", key, need))
	}
	return nil
}

// WriteSysctl writes value to /proc/sys/<key>, with key's dots as slashes
// (and, in sysctl(8)'s way, a slash in a dotted key as a literal dot:
// "net.ipv4.conf.eth0/100.forwarding" is /proc/sys/net/ipv4/conf/eth0.100/forwarding).
// It writes to the namespaces of the calling thread; validate first.
func WriteSysctl(key, value string) error {
	rel, err := sysctlPath(key)
	if err != nil {
		return err
	}
	p := "/proc/sys/" + rel
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("linux.sysctl.%s: open %s: %w", key, p, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("linux.sysctl.%s: write %q to %s: %w", key, value, p, err)
	}
	return nil
}

// dotted returns key with "." as the separator: a key whose first
// separator is "/" is in the slash form, where a "." is part of a name.
func dotted(key string) string {
	if i := strings.IndexAny(key, "./"); i >= 0 && key[i] == '/' {
		return swapDotSlash(key)
	}
	return key
}

func swapDotSlash(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

// sysctlPath turns key into a path under /proc/sys, refusing anything that
// is not a plain relative path (empty parts, "." or "..").
func sysctlPath(key string) (string, error) {
	rel := swapDotSlash(dotted(key))
	if key == "" {
		return "", errdefs.InvalidArgument(fmt.Errorf("linux.sysctl: empty key"))
	}
	for part := range strings.SplitSeq(rel, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsRune(part, 0) {
			return "", errdefs.InvalidArgument(fmt.Errorf("linux.sysctl.%s: not a valid sysctl name", key))
		}
	}
	return rel, nil
}
