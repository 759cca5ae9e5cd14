package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/mount"
)

// LoadSpec reads and validates bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("bundle %s has no config.json", bundle))
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var spec specs.Spec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&spec); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s is not a valid config: %s", path, jsonErr(err)))
	}
	if err := validateSpec(&spec); err != nil {
		return nil, errdefs.InvalidArgument(err)
	}
	return &spec, nil
}

func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// procNSName is the name of each namespace under /proc/PID/ns.
var procNSName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

func validateSpec(spec *specs.Spec) error {
	if !strings.HasPrefix(spec.Version, "1.") {
		return fmt.Errorf("ociVersion: %q is not supported (berth runs 1.x configs)", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return errors.New("root.path: missing")
	}
	if spec.Process == nil {
		return errors.New("process: missing")
	}
	if len(spec.Process.Args) == 0 {
		return errors.New("process.args: empty")
	}
	if spec.Process.Cwd != "" && !filepath.IsAbs(spec.Process.Cwd) {
		return fmt.Errorf("process.cwd: %q is not absolute", spec.Process.Cwd)
	}
	if spec.Linux == nil {
		return errors.New("linux: missing")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range spec.Linux.Namespaces {
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return fmt.Errorf("linux.namespaces[%d].type: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d].type: %s namespace listed twice", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if err := checkNamespacePath(ns.Path, flag); err != nil {
				return fmt.Errorf("linux.namespaces[%d].path: %w", i, err)
			}
		}
	}
	if !seen[specs.MountNamespace] {
		return errors.New("linux.namespaces: a mount namespace is required (berth does not pivot the host's root)")
	}
	if (len(spec.Linux.UIDMappings) > 0 || len(spec.Linux.GIDMappings) > 0) && !seen[specs.UserNamespace] {
		return errors.New("linux.uidMappings: set, but there is no user namespace")
	}
	if spec.Hostname != "" && !newNamespace(spec, specs.UTSNamespace) {
		return errors.New("hostname: setting it needs a new UTS namespace")
	}
	if spec.Domainname != "" && !newNamespace(spec, specs.UTSNamespace) {
		return errors.New("domainname: setting it needs a new UTS namespace")
	}
	for key := range spec.Linux.Sysctl {
		if err := mount.ValidateSysctl(key, namespaceSet(spec)); err != nil {
			return err
		}
	}
	for i, rl := range spec.Process.Rlimits {
		if _, err := mount.ParseRlimitType(rl.Type); err != nil {
			return fmt.Errorf("process.rlimits[%d].type: unknown type %q", i, rl.Type)
		}
		if rl.Soft > rl.Hard {
			return fmt.Errorf("process.rlimits[%d]: soft limit %d exceeds hard limit %d for %s", i, rl.Soft, rl.Hard, rl.Type)
		}
	}
	for i, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination: %q is not absolute", i, m.Destination)
		}
	}
	return nil
}

func newNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path == ""
		}
	}
	return false
}

// namespaceSet maps each namespace type name ("ipc", "net", "uts", ...) to
// whether the container has a private one.
func namespaceSet(spec *specs.Spec) map[string]bool {
	set := map[string]bool{}
	for _, ns := range spec.Linux.Namespaces {
		set[procNSName[ns.Type]] = ns.Path == ""
		set[string(ns.Type)] = ns.Path == ""
	}
	return set
}

// checkNamespacePath opens path and asks the kernel which namespace it is.
func checkNamespacePath(path string, want uintptr) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace", path)
	}
	if uintptr(got) != want {
		return fmt.Errorf("%s is a %s namespace, not a %s namespace", path, flagName(uintptr(got)), flagName(want))
	}
	return nil
}

func flagName(flag uintptr) string {
	for t, f := range nsFlags {
		if f == flag {
			return string(t)
		}
	}
	return fmt.Sprintf("%#x", flag)
}
