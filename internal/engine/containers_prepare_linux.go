package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/storage"
)

// prepare gets container rec ready for its runtime: the rootfs mounted,
// volumes mounted, the per-container /etc files written and config.json
// generated. It returns the bundle directory.
func (e *Engine) prepare(ctx context.Context, rec *store.Container) (string, error) {
	pt := NewPhaseTimer()
	defer pt.Done("prepare")
	st, err := e.images.Layers()
	if err != nil {
		return "", err
	}
	pt.Mark("layers")
	rootfs, err := st.Mount(rec.ID)
	pt.Mark("mount")
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", rec.Name, err)
	}
	bundle := e.bundleDir(rec.ID)
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		return "", err
	}
	mounts, err := e.mountVolumes(rec, rootfs)
	if err != nil {
		return "", err
	}
	pt.Mark("volumes")
	joins, err := e.namespaceJoins(rec.HostConfig)
	if err != nil {
		return "", err
	}
	// --tmpfs mounts are among mounts already (resolveMounts): handing the
	// spec HostConfig.Tmpfs too would mount each twice.
	hc := *rec.HostConfig
	hc.Tmpfs = nil
	in := spec.Input{
		ID:          rec.ID,
		Name:        rec.Name,
		Rootfs:      rootfs,
		Image:       rec.ImageConfig,
		Config:      rec.Config,
		HostConfig:  &hc,
		Mounts:      mounts,
		Joins:       joins,
		InitBinary:  e.opts.Binary,
		CgroupsPath: cgroupsPath(rec, e.opts.CgroupParent),
	}
	if err := e.writeEtcFiles(rec, bundle, &in); err != nil {
		return "", err
	}
	if in.ShmPath, err = e.shmFor(rec); err != nil {
		return "", err
	}
	pt.Mark("etc")
	s, err := spec.Generate(in)
	pt.Mark("generate")
	if err != nil {
		return "", errdefs.InvalidArgument(err)
	}
	if rec.Runtime != "berth" {
		// Older crun refuses any version but 1.0.x; the fields used
		// here are all 1.0's.
		s.Version = "1.0.2-dev"
	}
	if err := makeWorkdir(rootfs, s.Process); err != nil {
		return "", fmt.Errorf("working directory of %s: %w", rec.Name, err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	pt.Mark("workdir+marshal")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return "", fmt.Errorf("write config.json of %s: %w", rec.Name, err)
	}
	pt.Mark("write")
	return bundle, nil
}

// makeWorkdir creates the process's working directory inside rootfs when
// the image lacks it, owned by root, as docker does.
func makeWorkdir(rootfs string, p *specs.Process) error {
	if p == nil || p.Cwd == "" || p.Cwd == "/" {
		return nil
	}
	dir, err := securejoin.SecureJoin(rootfs, p.Cwd)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

// shmFor gives a shareable container its own /dev/shm tmpfs in its
// bundle, which containers joining its IPC namespace bind too, as docker
// does; "" leaves the spec's private /dev/shm.
func (e *Engine) shmFor(rec *store.Container) (string, error) {
	mode := string(rec.HostConfig.IpcMode)
	if ref, ok := strings.CutPrefix(mode, "container:"); ok {
		donor, err := e.containers.Find(ref)
		if err != nil {
			return "", errdefs.InvalidArgument(err)
		}
		shm := filepath.Join(e.bundleDir(donor.ID), "shm")
		if mounted, _ := storage.IsMountPoint(shm); !mounted {
			return "", errdefs.InvalidArgument(fmt.Errorf("cannot join IPC of container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", ref))
		}
		return shm, nil
	}
	if mode != "shareable" {
		return "", nil
	}
	shm := filepath.Join(e.bundleDir(rec.ID), "shm")
	if mounted, _ := storage.IsMountPoint(shm); mounted {
		return shm, nil
	}
	if err := os.MkdirAll(shm, 0o1777); err != nil {
		return "", err
	}
	size := rec.HostConfig.ShmSize
	if size <= 0 {
		size = spec.DefaultShmSize
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return "", fmt.Errorf("mount /dev/shm of %s: %w", rec.Name, err)
	}
	return shm, nil
}

// unmountShm unmounts a shareable container's /dev/shm.
func (e *Engine) unmountShm(rec *store.Container) {
	shm := filepath.Join(e.bundleDir(rec.ID), "shm")
	if mounted, _ := storage.IsMountPoint(shm); mounted {
		_ = unix.Unmount(shm, unix.MNT_DETACH)
	}
}

// cgroupsPath is where the container's cgroup goes: under
// --cgroup-parent, else the engine's parent (/berth).
func cgroupsPath(rec *store.Container, defaultParent string) string {
	parent := rec.HostConfig.CgroupParent
	if parent == "" {
		parent = defaultParent
	}
	if parent == "" {
		parent = "/berth"
	}
	if !strings.HasPrefix(parent, "/") {
		parent = "/" + parent
	}
	return filepath.Join(parent, rec.ID)
}

// namespaceJoins resolves container:NAME modes to the namespace files of
// that container's init.
func (e *Engine) namespaceJoins(hc *container.HostConfig) (map[string]string, error) {
	joins := map[string]string{}
	modes := map[string]string{
		"pid":     string(hc.PidMode),
		"ipc":     string(hc.IpcMode),
		"uts":     string(hc.UTSMode),
		"cgroup":  string(hc.CgroupnsMode),
		"network": string(hc.NetworkMode),
	}
	nsFile := map[string]string{"pid": "pid", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup", "network": "net"}
	for typ, mode := range modes {
		ref, ok := strings.CutPrefix(mode, "container:")
		if !ok {
			continue
		}
		other, err := e.containers.Find(ref)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("joining %s namespace of container %s: %w", typ, ref, err))
		}
		other = e.refresh(other)
		if !other.Running() || other.State.Pid == 0 {
			return nil, errdefs.Conflict(fmt.Errorf("cannot join %s namespace of container %s: it is not running", typ, ref))
		}
		joins[typ] = fmt.Sprintf("/proc/%d/ns/%s", other.State.Pid, nsFile[typ])
		if typ == "network" {
			// Shared network: the same hostname, hosts and resolv.conf.
			joins["network-container"] = other.ID
		}
	}
	return joins, nil
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf into its bundle, as docker does, unless the network is
// the host's (then the image's own files stay... docker binds the host's).
func (e *Engine) writeEtcFiles(rec *store.Container, bundle string, in *spec.Input) error {
	hostname := rec.Config.Hostname
	if hostname == "" {
		hostname = ShortID(rec.ID)
	}
	mode := string(rec.HostConfig.NetworkMode)
	if mode == "host" {
		h, err := os.Hostname()
		if err == nil {
			hostname = h
		}
	}
	if other, ok := in.Joins["network-container"]; ok {
		dir := e.bundleDir(other)
		delete(in.Joins, "network-container")
		in.HostnamePath = filepath.Join(dir, "hostname")
		in.HostsPath = filepath.Join(dir, "hosts")
		in.ResolvConfPath = filepath.Join(dir, "resolv.conf")
		return nil
	}
	files := map[string]string{
		"hostname": hostname + "\n",
	}
	if mode == "host" {
		hosts, err := os.ReadFile("/etc/hosts")
		if err != nil {
			hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		}
		files["hosts"] = string(hosts)
	} else {
		var b strings.Builder
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		for _, h := range rec.HostConfig.ExtraHosts {
			name, ip, ok := strings.Cut(h, ":")
			if !ok {
				name, ip, ok = strings.Cut(h, "=")
			}
			if ok {
				fmt.Fprintf(&b, "%s\t%s\n", ip, name)
			}
		}
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
		files["hosts"] = b.String()
	}
	files["resolv.conf"] = resolvConf(rec.HostConfig)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(bundle, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s of %s: %w", name, rec.Name, err)
		}
	}
	in.HostnamePath = filepath.Join(bundle, "hostname")
	in.HostsPath = filepath.Join(bundle, "hosts")
	in.ResolvConfPath = filepath.Join(bundle, "resolv.conf")
	return nil
}

// resolvConf is the host's resolv.conf with --dns, --dns-search and
// --dns-option applied; loopback resolvers are dropped (they are not
// reachable from a private network namespace).
func resolvConf(hc *container.HostConfig) string {
	host, search, options := hostResolvConf()
	var servers []string
	for _, ns := range host {
		if hc.NetworkMode.IsHost() || !(strings.HasPrefix(ns, "127.") || ns == "::1") {
			servers = append(servers, ns)
		}
	}
	if len(hc.DNS) > 0 {
		servers = servers[:0]
		for _, ip := range hc.DNS {
			servers = append(servers, ip.String())
		}
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.String()
}

// hostResolvConf reads the host's /etc/resolv.conf: name servers, search
// domains, options.
func hostResolvConf() (servers, search, options []string) {
	data, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search":
			search = f[1:]
		case "options":
			options = f[1:]
		}
	}
	return servers, search, options
}
