package cgroups

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// New returns a Manager for cgroupsPath on the host's layout (see Mode). It
// only looks: nothing is created before Create.
func New(cgroupsPath string, opts Options) (Manager, error) {
	root := opts.Root
	if root == "" {
		root = DefaultRoot
	}
	p, err := cgroupPath(cgroupsPath, opts.Systemd)
	if err != nil {
		return nil, err
	}
	mode, err := Mode(root)
	if err != nil {
		return nil, err
	}
	if mode == ModeV2 {
		return newV2(root, p), nil
	}
	return newV1(root, p, mode == ModeHybrid)
}

// Load returns the Manager of an existing cgroup, as a later CLI call
// reopens a container's cgroup from its stored path. The error is
// errdefs.NotFound (and fs.ErrNotExist) if it is gone.
func Load(cgroupsPath string, opts Options) (Manager, error) {
	m, err := New(cgroupsPath, opts)
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *v2:
		if !isDir(m.dir) {
			return nil, notFound(m.path)
		}
	case *v1:
		if !m.exists() {
			return nil, notFound(m.path)
		}
	}
	return m, nil
}

// v1Names are the v1 hierarchies berth uses, each mounted at root/<name>
// (cpuset first: it must be filled before anything joins). "systemd" is the
// name=systemd hierarchy, joined as runc does.
var v1Names = [...]string{"cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
	"hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd"}

// Mode reports the cgroup layout at root ("" means /sys/fs/cgroup): "v2"
// when root is a cgroup2 hierarchy, "hybrid" when it holds v1 controller
// directories and a cgroup2 at unified/, "v1" when only the former. The
// filesystem type is a hint; the files decide, so fake trees work too.
func Mode(root string) (string, error) {
	if root == "" {
		root = DefaultRoot
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return "", classify(fmt.Errorf("detect cgroup layout at %s: %w", root, err), err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC || exists(filepath.Join(root, "cgroup.controllers")) {
		return ModeV2, nil
	}
	v1 := false
	for _, name := range v1Names {
		if isDir(filepath.Join(root, name)) {
			v1 = true
			break
		}
	}
	if !v1 {
		return "", errdefs.Unavailable(fmt.Errorf("detect cgroup layout at %s: no cgroup.controllers and no controller directories (is cgroupfs mounted?): %w", root, fs.ErrNotExist))
	}
	unified := filepath.Join(root, "unified")
	if err := unix.Statfs(unified, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC || exists(filepath.Join(unified, "cgroup.controllers")) {
		return ModeHybrid, nil
	}
	return ModeV1, nil
}
