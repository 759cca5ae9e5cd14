// Package spec turns an image's config, the user's options (docker's
// container.Config and HostConfig) and berth's secure defaults into an OCI
// runtime spec (config.json). It reads the container's rootfs (for
// /etc/passwd and /etc/group) but changes nothing on disk.
package spec

import (
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/image"
)

// Input is everything Generate needs. The engine resolves names (volumes,
// other containers) into paths before calling it.
type Input struct {
	// ID is the container's full ID; Name its name without the slash.
	ID   string
	Name string
	// Rootfs is the absolute path of the mounted root filesystem.
	Rootfs string
	// Image is the image's run config; nil for none.
	Image *image.RunConfig
	// Config and HostConfig are the user's options as docker's API has
	// them, already merged with nothing: Generate applies the image's
	// defaults (Entrypoint, Cmd, Env, WorkingDir, User) itself.
	Config     *container.Config
	HostConfig *container.HostConfig
	// Mounts are the resolved mounts: binds, volumes (Source is the
	// volume's directory) and tmpfs, in the order given.
	Mounts []Mount
	// Joins maps a namespace the user asked to share ("pid", "ipc",
	// "uts", "cgroup", "network", "user") to the path to join, for
	// container:NAME modes (/proc/PID/ns/TYPE of that container's init).
	Joins map[string]string
	// InitBinary is the host path of the static binary bind-mounted at
	// /sbin/berth-init when HostConfig.Init asks for an init.
	InitBinary string
	// CgroupsPath is the container's cgroup ("/berth/<id>" by default).
	CgroupsPath string
	// Files are host files bind-mounted over /etc/hostname, /etc/hosts,
	// /etc/resolv.conf when set (the engine writes them per container).
	HostnamePath, HostsPath, ResolvConfPath string
	// ShmPath is a host directory (a tmpfs the engine made) bind-mounted at
	// /dev/shm, for --ipc shareable and container:NAME; "" gives a private
	// tmpfs of HostConfig.ShmSize (--ipc private, the default).
	ShmPath string
}

// Mount is one resolved mount of the container.
type Mount struct {
	// Type is "bind", "volume" or "tmpfs".
	Type        string
	Source      string // host path; "" for tmpfs
	Destination string // absolute path in the container
	ReadOnly    bool
	// Propagation is "", "private", "rprivate", "shared", "rshared",
	// "slave" or "rslave".
	Propagation string
	// NonRecursive makes a bind non-recursive (--mount bind-recursive=disabled).
	NonRecursive bool
	// TmpfsSize (bytes, 0 for the kernel's default) and TmpfsMode (0 for
	// 1777) for tmpfs mounts; Options are extra mount options.
	TmpfsSize int64
	TmpfsMode uint32
	Options   []string
}
