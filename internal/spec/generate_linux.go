package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/berth-dev/berth/internal/linux/cgroups"
)

// host is what Generate asks of the machine it runs on. Tests give their
// own; building it does no work (the engine's start path stays fast).
type host struct {
	numCPU   func() int
	cgroupV2 func() bool
	lastCap  func() caps.Cap
	// bounding is berth's own bounding set, which no container can exceed;
	// nil: no limit.
	bounding func() caps.Set
	hostname func() (string, error)
	devRoot  string // the host's /dev, for privileged containers
}

var realHost = host{
	numCPU: runtime.NumCPU,
	cgroupV2: func() bool {
		mode, err := cgroups.Mode("")
		return err == nil && mode == cgroups.ModeV2
	},
	lastCap: caps.LastCap,
	bounding: func() caps.Set {
		c, err := caps.Current(0)
		if err != nil {
			return ^caps.Set(0)
		}
		return c.Bounding
	},
	hostname: os.Hostname,
	devRoot:  "/dev",
}

// PrivilegedCapabilities is what --privileged grants: every capability
// the kernel has that berth itself holds (exec --privileged uses it too).
func PrivilegedCapabilities() []string { return allCapabilities(realHost.availableCaps()) }

// Generate returns the OCI runtime spec that docker would hand runc for
// `docker run` with in's options over in's image: process, capabilities,
// seccomp, mounts, namespaces, devices, resources, with docker's defaults
// and docker's checks (and its error messages where users see them). It
// reads the rootfs's /etc/passwd and /etc/group (inside the rootfs, never
// following a link out of it) and, for --device and --privileged, the
// host's device nodes; it changes nothing.
func Generate(in Input) (*specs.Spec, error) {
	return generate(in, realHost)
}

func generate(in Input, h host) (*specs.Spec, error) {
	if in.Rootfs == "" || !filepath.IsAbs(in.Rootfs) {
		return nil, fmt.Errorf("generate the container's config: rootfs %q is not an absolute path", in.Rootfs)
	}
	cfg := in.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	hc := in.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	img := in.Image

	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	args, err := command(cfg, img)
	if err != nil {
		return nil, err
	}
	nss, err := namespaces(hc, in.Joins, h.cgroupV2())
	if err != nil {
		return nil, err
	}
	hostname, err := hostnameOf(in, cfg, hc, nss, h)
	if err != nil {
		return nil, err
	}

	userSpec := cfg.User
	if userSpec == "" && img != nil {
		userSpec = img.User
	}
	passwd, groups, err := readUserDBs(in.Rootfs)
	if err != nil {
		return nil, err
	}
	eu, err := resolveUser(userSpec, passwd, groups)
	if err != nil {
		return nil, err
	}
	extra, err := additionalGroups(hc.GroupAdd, groups)
	if err != nil {
		return nil, err
	}
	cwd, err := workingDir(cfg, img)
	if err != nil {
		return nil, err
	}
	capList, err := capabilityList(hc.CapAdd, hc.CapDrop, hc.Privileged, h.availableCaps)
	if err != nil {
		return nil, err
	}
	rl, err := rlimits(hc.Ulimits)
	if err != nil {
		return nil, err
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj))
	}
	if hc.ShmSize < 0 {
		return nil, errdefs.InvalidArgument(errors.New("SHM size can not be less than 0"))
	}

	oom := hc.OomScoreAdj
	proc := &specs.Process{
		Terminal: cfg.Tty,
		User:     specs.User{UID: uint32(eu.uid), GID: uint32(eu.gid), Umask: hc.Umask},
		Args:     args,
		Env:      environment(cfg, img, hostname, eu.home),
		Cwd:      cwd,
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  slices.Clone(capList),
			Effective: slices.Clone(capList),
			Permitted: slices.Clone(capList),
		},
		Rlimits:         rl,
		NoNewPrivileges: sec.noNewPrivileges,
		OOMScoreAdj:     &oom,
	}
	for _, g := range append(eu.sgids, extra...) {
		if !slices.Contains(proc.User.AdditionalGids, uint32(g)) {
			proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(g))
		}
	}
	if cfg.Tty && (hc.ConsoleSize[0] > 0 || hc.ConsoleSize[1] > 0) {
		proc.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}

	mounts, err := buildMounts(mountPlan{
		privileged:      hc.Privileged,
		writableCgroups: sec.writableCgroups,
		readonlyRootfs:  hc.ReadonlyRootfs,
		ipcMode:         ipcModeOf(hc),
		shmSize:         hc.ShmSize,
		shmPath:         in.ShmPath,
		etc: map[string]string{
			"/etc/hostname": in.HostnamePath, "/etc/hosts": in.HostsPath, "/etc/resolv.conf": in.ResolvConfPath,
		},
	}, in.Mounts, hc.Tmpfs)
	if err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init {
		if in.InitBinary == "" {
			return nil, errdefs.Unavailable(errors.New("--init was given, but no init binary is available"))
		}
		mounts = append(mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: in.InitBinary, Options: []string{"bind", "ro"}})
		proc.Args = append([]string{InitPath, "--"}, proc.Args...)
	}

	res, err := resources(&hc.Resources, h.numCPU())
	if err != nil {
		return nil, err
	}
	linux := &specs.Linux{
		Namespaces:  nss,
		Resources:   res,
		CgroupsPath: in.CgroupsPath,
	}
	if err := addDevices(linux, hc, h); err != nil {
		return nil, err
	}
	if !hc.Privileged && !sec.unconfinedPaths {
		linux.MaskedPaths = DefaultMaskedPaths()
		if hc.MaskedPaths != nil {
			linux.MaskedPaths = slices.Clone(hc.MaskedPaths)
		}
		linux.ReadonlyPaths = DefaultReadonlyPaths()
		if hc.ReadonlyPaths != nil {
			linux.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)
		}
	}
	if err := checkSysctls(hc.Sysctls, nss); err != nil {
		return nil, err
	}
	if len(hc.Sysctls) > 0 {
		linux.Sysctl = maps.Clone(hc.Sysctls)
	}
	if !hc.Privileged {
		if linux.Seccomp, err = seccompProfile(sec.seccomp, capList); err != nil {
			return nil, err
		}
	}
	linux.RootfsPropagation = rootfsPropagation(mounts)

	s := &specs.Spec{
		Version: specs.Version,
		Process: proc,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: hc.ReadonlyRootfs},
		Mounts:  mounts,
		Linux:   linux,
	}
	if nsState(nss, specs.UTSNamespace) == nsNew {
		s.Hostname = hostname
		s.Domainname = cfg.Domainname
	}
	if len(hc.Annotations) > 0 {
		s.Annotations = maps.Clone(hc.Annotations)
	}
	return s, nil
}

// hostnameOf is --hostname, else the host's name when the container shares
// the host's network or UTS namespace, else the ID's first 12 characters,
// as docker does. It is also $HOSTNAME.
func hostnameOf(in Input, cfg *container.Config, hc *container.HostConfig, nss []specs.LinuxNamespace, h host) (string, error) {
	uts := nsState(nss, specs.UTSNamespace)
	if cfg.Hostname != "" {
		switch {
		case uts == nsHost:
			return "", errdefs.InvalidArgument(errors.New("conflicting options: hostname and the UTS mode"))
		case hc.NetworkMode.IsContainer():
			return "", errdefs.InvalidArgument(errors.New("conflicting options: hostname and the network mode"))
		}
		return cfg.Hostname, nil
	}
	if uts == nsHost || hc.NetworkMode.IsHost() {
		name, err := h.hostname()
		if err != nil {
			return "", fmt.Errorf("read the host's name: %w", err)
		}
		return name, nil
	}
	id := in.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return id, nil
}

// addDevices fills linux.devices and the device cgroup rules: docker's
// defaults plus --device and --device-cgroup-rule, or, privileged, every
// host device and every access.
func addDevices(linux *specs.Linux, hc *container.HostConfig, h host) error {
	if hc.Privileged {
		devs, err := hostDevices(h.devRoot)
		if err != nil {
			return err
		}
		for _, m := range hc.Devices {
			if m.PathInContainer == "" || m.PathInContainer == m.PathOnHost {
				continue // already there with the rest of /dev
			}
			d, _, err := devicesFromPath(m.PathOnHost, m.PathInContainer, "rwm")
			if err != nil {
				return err
			}
			devs = append(devs, d...)
		}
		linux.Devices = devs
		linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	rules := defaultDeviceRules()
	for _, m := range hc.Devices {
		dest, perms, err := deviceTarget(m.PathOnHost, m.PathInContainer, m.CgroupPermissions)
		if err != nil {
			return err
		}
		d, r, err := devicesFromPath(m.PathOnHost, dest, perms)
		if err != nil {
			return err
		}
		linux.Devices = append(linux.Devices, d...)
		rules = append(rules, r...)
	}
	for _, rule := range hc.DeviceCgroupRules {
		r, err := parseDeviceRule(rule)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	linux.Resources.Devices = rules
	return nil
}

// rootfsPropagation makes the root shared or slave when a bind mount asks
// for that propagation (it cannot be more shared than its parent), as
// docker does; "" keeps the runtime's default.
func rootfsPropagation(mounts []specs.Mount) string {
	p := ""
	for _, m := range mounts {
		for _, o := range m.Options {
			switch o {
			case "shared", "rshared":
				return "shared"
			case "slave", "rslave":
				p = "rslave"
			}
		}
	}
	return p
}

// availableCaps is what "all capabilities" means here: the kernel's, less
// those berth itself lacks.
func (h host) availableCaps() caps.Set {
	s := caps.All(h.lastCap())
	if h.bounding != nil {
		s &= h.bounding()
	}
	return s
}
