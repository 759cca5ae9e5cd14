package spec

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DefaultShmSize is /dev/shm's size when --shm-size is not given: docker's.
const DefaultShmSize = 64 << 20

// mountPlan is what decides the container's mount table besides its mounts.
type mountPlan struct {
	privileged      bool
	writableCgroups bool
	readonlyRootfs  bool
	ipcMode         string
	shmSize         int64
	shmPath         string
	// etc maps /etc/hostname, /etc/hosts and /etc/resolv.conf to the host
	// files the engine wrote.
	etc map[string]string
}

// buildMounts returns the container's mounts as docker orders them: its
// defaults (less those the user's mounts replace) first, then the user's
// mounts sorted so that a parent is mounted before what is mounted under it.
func buildMounts(p mountPlan, user []Mount, tmpfs map[string]string) ([]specs.Mount, error) {
	var ms []specs.Mount
	dests := map[string]bool{}
	addUser := func(m specs.Mount) error {
		if dests[m.Destination] {
			return errdefs.InvalidArgument(fmt.Errorf("Duplicate mount point: %s", m.Destination))
		}
		dests[m.Destination] = true
		ms = append(ms, m)
		return nil
	}
	for _, u := range user {
		m, err := convertMount(u)
		if err != nil {
			return nil, err
		}
		if err := addUser(m); err != nil {
			return nil, err
		}
	}
	for _, dst := range sortedKeys(tmpfs) {
		if !path.IsAbs(dst) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid mount config for type \"tmpfs\": invalid mount path: '%s' mount path must be absolute", dst))
		}
		var data []string
		if tmpfs[dst] != "" {
			data = strings.Split(tmpfs[dst], ",")
		}
		m, err := tmpfsMount(path.Clean(dst), data)
		if err != nil {
			return nil, err
		}
		if err := addUser(m); err != nil {
			return nil, err
		}
	}
	// The engine's per-container files, unless the user mounted their own.
	for _, dst := range []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"} {
		if src := p.etc[dst]; src != "" && !dests[dst] {
			opts := []string{"rbind"}
			if p.readonlyRootfs {
				opts = append(opts, "ro")
			}
			opts = append(opts, "rprivate")
			ms = append(ms, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts})
		}
	}
	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].Destination) < depth(ms[j].Destination) })

	var out []specs.Mount
	for _, d := range defaultMounts(p) {
		if dests[d.Destination] || (dests["/dev"] && strings.HasPrefix(d.Destination, "/dev/")) {
			continue
		}
		out = append(out, d)
	}
	return append(out, ms...), nil
}

// defaultMounts are docker's: proc, a tmpfs /dev with devpts, mqueue and
// shm, sysfs and cgroupfs read-only (read-write when privileged).
func defaultMounts(p mountPlan) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if p.privileged {
		sysOpts = sysOpts[:3]
	}
	cgOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if p.privileged || p.writableCgroups {
		cgOpts = cgOpts[1:]
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch {
	case p.ipcMode == "none":
		// No /dev/shm at all, as docker.
	case p.ipcMode == "host":
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	case p.shmPath != "":
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: p.shmPath, Options: []string{"rbind", "rprivate"}})
	default:
		size := p.shmSize
		if size == 0 {
			size = DefaultShmSize
		}
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(size, 10)}})
	}
	return ms
}

// convertMount turns one of the engine's resolved mounts into the spec's.
func convertMount(m Mount) (specs.Mount, error) {
	if !path.IsAbs(m.Destination) {
		return specs.Mount{}, errdefs.InvalidArgument(fmt.Errorf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Destination))
	}
	dst := path.Clean(m.Destination)
	switch m.Type {
	case "bind", "volume":
		if !path.IsAbs(m.Source) {
			return specs.Mount{}, errdefs.InvalidArgument(fmt.Errorf("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", m.Type, m.Source))
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		switch m.Propagation {
		case "":
			opts = append(opts, "rprivate")
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			opts = append(opts, m.Propagation)
		default:
			return specs.Mount{}, errdefs.InvalidArgument(fmt.Errorf("invalid propagation mode: %s", m.Propagation))
		}
		opts = append(opts, m.Options...)
		return specs.Mount{Destination: dst, Type: "bind", Source: m.Source, Options: opts}, nil
	case "tmpfs":
		var data []string
		if m.ReadOnly {
			data = append(data, "ro")
		}
		if m.TmpfsSize < 0 {
			return specs.Mount{}, errdefs.InvalidArgument(fmt.Errorf("invalid tmpfs size %d for %s", m.TmpfsSize, dst))
		}
		if m.TmpfsSize > 0 {
			data = append(data, "size="+sizeOption(m.TmpfsSize))
		}
		if m.TmpfsMode != 0 {
			data = append(data, "mode="+strconv.FormatUint(uint64(m.TmpfsMode&0o7777), 8))
		}
		return tmpfsMount(dst, append(data, m.Options...))
	}
	return specs.Mount{}, errdefs.InvalidArgument(fmt.Errorf("invalid mount config: mount type %q is not supported", m.Type))
}

// sizeOption writes a byte count in the largest unit that divides it, as
// docker does ("64m", not "67108864").
func sizeOption(n int64) string {
	for _, u := range []struct {
		div    int64
		suffix string
	}{{1 << 30, "g"}, {1 << 20, "m"}, {1 << 10, "k"}} {
		if n%u.div == 0 {
			return strconv.FormatInt(n/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// tmpfsMount is a tmpfs at dst with docker's defaults (noexec, nosuid,
// nodev, rprivate) overridden by data: a later option wins over an earlier
// one that sets the same flag or key.
func tmpfsMount(dst string, data []string) (specs.Mount, error) {
	opts, err := mergeTmpfsOptions(append([]string{"noexec", "nosuid", "nodev", "rprivate"}, data...))
	if err != nil {
		return specs.Mount{}, err
	}
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
}

// mergeTmpfsOptions keeps the last of each group of options that set the
// same thing, in their order; unknown options are refused.
func mergeTmpfsOptions(opts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := strings.TrimSpace(opts[i])
		if o == "" || o == "defaults" {
			continue
		}
		key := flagGroup(o)
		if key == "" {
			k, _, hasValue := strings.Cut(o, "=")
			if !tmpfsData(k, hasValue) {
				return nil, errdefs.InvalidArgument(fmt.Errorf("invalid tmpfs option %q", o))
			}
			key = "=" + k
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, o)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// tmpfsData reports whether k (with a value or without) is a tmpfs
// file-system option.
func tmpfsData(k string, hasValue bool) bool {
	switch k {
	case "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge":
		return hasValue
	case "noswap", "inode32", "inode64":
		return !hasValue
	}
	return false
}

// flagGroup names the mount flag an option sets or clears ("" for data).
func flagGroup(o string) string {
	switch o {
	case "ro", "rw":
		return "rdonly"
	case "suid", "nosuid":
		return "nosuid"
	case "dev", "nodev":
		return "nodev"
	case "exec", "noexec":
		return "noexec"
	case "sync", "async":
		return "sync"
	case "dirsync":
		return "dirsync"
	case "mand", "nomand":
		return "mand"
	case "atime", "noatime":
		return "noatime"
	case "diratime", "nodiratime":
		return "nodiratime"
	case "relatime", "norelatime":
		return "relatime"
	case "strictatime", "nostrictatime":
		return "strictatime"
	case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
		return "propagation"
	}
	return ""
}

func depth(p string) int { return len(strings.Split(path.Clean(p), "/")) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ipcModeOf is HostConfig.IpcMode with docker's default (private).
func ipcModeOf(hc *container.HostConfig) string {
	if hc.IpcMode == "" {
		return "private"
	}
	return string(hc.IpcMode)
}
