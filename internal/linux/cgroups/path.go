package cgroups

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// cgroupPath turns a runtime's cgroupsPath into a clean path below the
// hierarchy root. "/a/b" and "a/b" both name root/a/b (berth does not nest
// relative paths under its own cgroup). With systemd, "slice:prefix:name"
// becomes "/<expanded slice>/prefix-name.scope", as runc names it.
func cgroupPath(p string, systemd bool) (string, error) {
	if p == "" {
		return "", errdefs.InvalidArgument(fmt.Errorf("cgroups path is empty"))
	}
	if systemd {
		return systemdPath(p)
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return "", errdefs.InvalidArgument(fmt.Errorf("cgroups path %q is the root cgroup; a container needs its own", p))
	}
	return c, nil
}

func systemdPath(p string) (string, error) {
	parts := strings.Split(p, ":")
	if len(parts) != 3 {
		return "", errdefs.InvalidArgument(fmt.Errorf("systemd cgroups path %q is not of the form slice:prefix:name", p))
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if name == "" || strings.Contains(name, "/") || strings.Contains(prefix, "/") {
		return "", errdefs.InvalidArgument(fmt.Errorf("systemd cgroups path %q: bad unit name", p))
	}
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", errdefs.InvalidArgument(fmt.Errorf("systemd cgroups path %q: %w", p, err))
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
	}
	return path.Join(dir, unit), nil
}

// expandSlice turns a systemd slice name into its cgroup path:
// "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice", "-.slice" → "/".
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	if !strings.HasSuffix(slice, suffix) || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	if slice == "-.slice" {
		return "/", nil
	}
	name := strings.TrimSuffix(slice, suffix)
	if name == "" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(name, "-") {
		b.WriteString("/" + prefix + comp + suffix)
		prefix += comp + "-"
	}
	return b.String(), nil
}
