package spec

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// nsMode is how the container gets one kind of namespace.
type nsMode int

const (
	nsNew  nsMode = iota // a new one
	nsHost               // the host's: no entry in the spec
	nsJoin               // another container's, by path
)

// namespaces lists the container's namespaces in docker's order. Modes are
// docker's: "host" shares the host's, "container:NAME" joins the path the
// engine put in joins, anything else valid gets a new one. cgroupV2 picks
// the cgroup namespace default as docker does: private on a cgroup v2
// host, the host's on v1.
func namespaces(hc *container.HostConfig, joins map[string]string, cgroupV2 bool) ([]specs.LinuxNamespace, error) {
	var out []specs.LinuxNamespace
	add := func(t specs.LinuxNamespaceType, key, mode string) error {
		m, err := modeOf(mode)
		if err != nil {
			return err
		}
		switch m {
		case nsNew:
			out = append(out, specs.LinuxNamespace{Type: t})
		case nsJoin:
			p := joins[key]
			if p == "" {
				return fmt.Errorf("join the %s namespace of container %s: the engine gave no namespace path", key, strings.TrimPrefix(mode, "container:"))
			}
			out = append(out, specs.LinuxNamespace{Type: t, Path: p})
		}
		return nil
	}

	out = append(out, specs.LinuxNamespace{Type: specs.MountNamespace})

	net := string(hc.NetworkMode)
	switch {
	case net == "host", strings.HasPrefix(net, "container:"):
	default: // "", "default", "bridge", "none", a user-defined network: a new one; the engine wires it
		net = ""
	}
	if err := add(specs.NetworkNamespace, "network", net); err != nil {
		return nil, err
	}

	uts := string(hc.UTSMode)
	if uts != "" && uts != "host" && !isContainerMode(uts) {
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid UTS mode: %v", uts))
	}
	if err := add(specs.UTSNamespace, "uts", uts); err != nil {
		return nil, err
	}

	pid := string(hc.PidMode)
	if pid != "" && pid != "host" && !isContainerMode(pid) {
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid PID mode: %v", pid))
	}
	if err := add(specs.PIDNamespace, "pid", pid); err != nil {
		return nil, err
	}

	ipc := string(hc.IpcMode)
	switch {
	case ipc == "", ipc == "private", ipc == "shareable", ipc == "none":
		ipc = ""
	case ipc == "host", isContainerMode(ipc):
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid IPC mode: %v", ipc))
	}
	if err := add(specs.IPCNamespace, "ipc", ipc); err != nil {
		return nil, err
	}

	switch hc.CgroupnsMode {
	case container.CgroupnsModePrivate:
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case container.CgroupnsModeHost:
	case container.CgroupnsModeEmpty:
		if cgroupV2 {
			out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid cgroup namespace mode: %v", hc.CgroupnsMode))
	}

	switch hc.UsernsMode {
	case "", "host":
	default:
		return nil, errdefs.NotImplemented(fmt.Errorf("unsupported userns mode %q: berth runs containers in the host's user namespace", hc.UsernsMode))
	}
	return out, nil
}

func modeOf(mode string) (nsMode, error) {
	switch {
	case mode == "host":
		return nsHost, nil
	case isContainerMode(mode):
		return nsJoin, nil
	case strings.HasPrefix(mode, "container:"):
		return 0, errdefs.InvalidArgument(fmt.Errorf("invalid namespace mode %q: no container named", mode))
	}
	return nsNew, nil
}

func isContainerMode(mode string) bool {
	name, ok := strings.CutPrefix(mode, "container:")
	return ok && name != ""
}

// nsState says whether the spec gives t a new namespace, joins one, or
// leaves the host's.
func nsState(list []specs.LinuxNamespace, t specs.LinuxNamespaceType) nsMode {
	for _, ns := range list {
		if ns.Type == t {
			if ns.Path != "" {
				return nsJoin
			}
			return nsNew
		}
	}
	return nsHost
}

// checkSysctls refuses sysctls that would change more than this container:
// ones the kernel does not namespace, and namespaced ones whose namespace
// is the host's or another container's.
func checkSysctls(sysctls map[string]string, list []specs.LinuxNamespace) error {
	for key := range sysctls {
		k := strings.ReplaceAll(key, "/", ".")
		for _, part := range strings.Split(k, ".") {
			if part == "" {
				return errdefs.InvalidArgument(fmt.Errorf("sysctl %q is not a valid sysctl name", key))
			}
		}
		var t specs.LinuxNamespaceType
		var what string
		switch {
		case strings.HasPrefix(k, "kernel.msg"), k == "kernel.sem", k == "kernel.sem_next_id",
			strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "fs.mqueue."):
			t, what = specs.IPCNamespace, "ipc"
		case strings.HasPrefix(k, "net."):
			t, what = specs.NetworkNamespace, "network"
		case k == "kernel.domainname":
			t, what = specs.UTSNamespace, "uts"
		case k == "kernel.hostname":
			return errdefs.InvalidArgument(fmt.Errorf("sysctl %q is not allowed: set the hostname with --hostname", key))
		default:
			return errdefs.InvalidArgument(fmt.Errorf("sysctl %q is not allowed: it is not namespaced, so setting it would change the host", key))
		}
		switch nsState(list, t) {
		case nsHost:
			return errdefs.InvalidArgument(fmt.Errorf("sysctl %q is not allowed in the host's %s namespace", key, what))
		case nsJoin:
			return errdefs.InvalidArgument(fmt.Errorf("sysctl %q is not allowed when sharing another container's %s namespace", key, what))
		}
	}
	return nil
}
