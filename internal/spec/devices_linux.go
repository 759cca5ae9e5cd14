package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errNotDevice = errors.New("not a device node")

// deviceAt stats the host node at p (following no symlink at its end) and
// describes it as a spec device at dest.
func deviceAt(p, dest string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: dest, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// devicesFromPath is one --device: the node at onHost (symlinks resolved,
// so /dev/disk/by-id/... works), or every node under it when it is a
// directory, placed at inContainer, with an allow rule each.
func devicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	fail := func(err error) error {
		return errdefs.InvalidArgument(fmt.Errorf("error gathering device information while adding custom device %q: %w", onHost, err))
	}
	resolved, err := filepath.EvalSymlinks(onHost)
	if err != nil {
		return nil, nil, fail(unwrapPathError(err))
	}
	rule := func(d specs.LinuxDevice) specs.LinuxDeviceCgroup {
		major, minor := d.Major, d.Minor
		return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms}
	}
	d, err := deviceAt(resolved, inContainer)
	if err == nil {
		return []specs.LinuxDevice{d}, []specs.LinuxDeviceCgroup{rule(d)}, nil
	}
	if !errors.Is(err, errNotDevice) {
		return nil, nil, fail(unwrapPathError(err))
	}
	if st, serr := os.Stat(resolved); serr != nil || !st.IsDir() {
		return nil, nil, fail(err)
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	err = filepath.WalkDir(resolved, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil // unreadable or not a node: skip it, as docker does
		}
		dest := filepath.Join(inContainer, strings.TrimPrefix(p, resolved))
		d, err := deviceAt(p, dest)
		if err != nil {
			return nil
		}
		devs = append(devs, d)
		rules = append(rules, rule(d))
		return nil
	})
	if err != nil {
		return nil, nil, fail(err)
	}
	return devs, rules, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostDevices lists the device nodes under root (the host's /dev) for a
// privileged container, leaving out the directories a container mounts
// itself (pts, shm, mqueue), the host's console, and ptmx (the runtime
// links it to the container's devpts).
func hostDevices(root string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				if p != root {
					return fs.SkipDir
				}
			}
			return nil
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || filepath.Dir(p) == root && (e.Name() == "console" || e.Name() == "ptmx") {
			return nil
		}
		rel := strings.TrimPrefix(p, root)
		d, err := deviceAt(p, filepath.Join("/dev", rel))
		if err != nil {
			return nil // gone or changed since the walk saw it
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the host's devices under %s: %w", root, err)
	}
	return out, nil
}
