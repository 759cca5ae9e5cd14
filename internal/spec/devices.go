package spec

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// defaultDeviceRules are docker's device cgroup rules for a container that
// is not privileged: deny everything, then allow the devices every
// container has, and mknod of any device (CAP_MKNOD is a default); using a
// device needs its own rule. (No explicit deny after the mknod wildcards:
// runc's cgroup v1 device emulation refuses to punch such a hole.)
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	allow := func(typ string, major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
		allow("c", 1, 5), // /dev/zero
		allow("c", 1, 3), // /dev/null
		allow("c", 1, 9), // /dev/urandom
		allow("c", 1, 8), // /dev/random
		allow("c", 5, 0), // /dev/tty
		allow("c", 5, 1), // /dev/console
		{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"}, // /dev/pts/*
		allow("c", 5, 2), // /dev/ptmx
	}
}

// parseDeviceRule parses a --device-cgroup-rule: "TYPE MAJOR:MINOR ACCESS"
// with TYPE a, b or c, numbers or "*", and ACCESS of r, w and m.
func parseDeviceRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.InvalidArgument(fmt.Errorf("invalid device cgroup format '%s'", rule))
	f := strings.Split(rule, " ")
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok || !validAccess(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	major, ok1 := deviceNumber(maj)
	minor, ok2 := deviceNumber(min)
	if !ok1 || !ok2 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: major, Minor: minor, Access: f[2]}, nil
}

// deviceNumber parses a major or minor number; "*" is nil, any.
func deviceNumber(s string) (*int64, bool) {
	if s == "*" {
		return nil, true
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return nil, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, false
	}
	return &n, true
}

// validAccess reports whether s is one to three of r, w and m.
func validAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c != 'r' && c != 'w' && c != 'm' {
			return false
		}
	}
	return true
}

// deviceTarget fills in a --device mapping's defaults: the container path
// is the host path and the access "rwm" unless given.
func deviceTarget(onHost, inContainer, perms string) (string, string, error) {
	if inContainer == "" {
		inContainer = onHost
	}
	if perms == "" {
		perms = "rwm"
	}
	if !validAccess(perms) {
		return "", "", errdefs.InvalidArgument(fmt.Errorf("invalid device mode: %s", perms))
	}
	if !strings.HasPrefix(inContainer, "/") {
		return "", "", errdefs.InvalidArgument(fmt.Errorf("%s is not an absolute path", inContainer))
	}
	return inContainer, perms, nil
}

func ptr[T any](v T) *T { return &v }
