package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/linux/caps"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/spec"
)

// IsolationReport says what isolates a container's process: its
// namespaces, its cgroup with limits and usage, its seccomp filter,
// capabilities and user, and its root filesystem. `berth inspect
// --isolation` prints it. Namespaces, cgroup and the process's live
// security state are filled only while the container runs.
type IsolationReport struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Status  string `json:"status"`
	Running bool   `json:"running"`
	Pid     int    `json:"pid,omitempty"`
	// Note explains what is left out, e.g. for a stopped container.
	Note string `json:"note,omitempty"`
	// HostReference says whose namespaces stand for the host's: PID 1's,
	// or berth's own where PID 1's cannot be read.
	HostReference string          `json:"hostReference,omitempty"`
	Namespaces    []NamespaceInfo `json:"namespaces,omitempty"`
	Cgroup        *CgroupInfo     `json:"cgroup,omitempty"`
	Security      SecurityInfo    `json:"security"`
	Rootfs        RootfsInfo      `json:"rootfs"`
	// Warnings list what could not be read; the rest of the report holds.
	Warnings []string `json:"warnings,omitempty"`
}

// Namespace sharing, as NamespaceInfo.Sharing says it.
const (
	NSPrivate   = "private"
	NSHost      = "host"
	NSContainer = "container"
	NSUnknown   = "unknown"
)

// NamespaceInfo is one namespace of the container's init process.
type NamespaceInfo struct {
	Type  string `json:"type"` // mnt, uts, ipc, pid, net, user, cgroup, time
	Inode uint64 `json:"inode"`
	// Sharing is "private", "host" (the same namespace as the host's PID 1),
	// "container" (the same as other containers', listed in SharedWith) or
	// "unknown" (the host's could not be read).
	Sharing    string         `json:"sharing"`
	SharedWith []ContainerRef `json:"sharedWith,omitempty"`
}

// ContainerRef names a container.
type ContainerRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CgroupInfo is the container's cgroup, its limits and current usage.
type CgroupInfo struct {
	Version string `json:"version"` // "v1" (hybrid hosts too) or "v2"
	// Path is the cgroup's path: the unified one on v2, the memory
	// controller's (or the first one's) on v1.
	Path string `json:"path"`
	// Paths are v1's paths by controller.
	Paths  map[string]string `json:"paths,omitempty"`
	Memory *CgroupMemory     `json:"memory,omitempty"`
	CPU    *CgroupCPU        `json:"cpu,omitempty"`
	Pids   *CgroupPids       `json:"pids,omitempty"`
	Cpuset *CgroupCpuset     `json:"cpuset,omitempty"`
}

// CgroupMemory is in bytes; a nil Limit is no limit, a nil Peak one the
// kernel does not keep.
type CgroupMemory struct {
	Limit *uint64 `json:"limit"`
	Usage uint64  `json:"usage"`
	Peak  *uint64 `json:"peak,omitempty"`
}

// CgroupCPU is the CFS bandwidth limit (Quota -1: none) and the relative
// weight: Shares on v1, Weight on v2.
type CgroupCPU struct {
	Quota  int64   `json:"quota"`  // µs per period, -1 unlimited
	Period uint64  `json:"period"` // µs
	CPUs   float64 `json:"cpus,omitempty"`
	Shares uint64  `json:"shares,omitempty"`
	Weight uint64  `json:"weight,omitempty"`
}

// CgroupPids is the number of tasks and its limit (nil: none).
type CgroupPids struct {
	Current uint64  `json:"current"`
	Max     *uint64 `json:"max"`
}

// CgroupCpuset is the CPUs and memory nodes the container may use.
type CgroupCpuset struct {
	Cpus string `json:"cpus"`
	Mems string `json:"mems"`
}

// SecurityInfo is the container's configured security and, while it runs,
// the state of its init process.
type SecurityInfo struct {
	Privileged bool `json:"privileged"`
	// SeccompProfile is "default" (docker's), "unconfined" or "custom", as
	// configured.
	SeccompProfile string `json:"seccompProfile"`
	// SeccompMode is the kernel's: "disabled", "strict" or "filter".
	SeccompMode string `json:"seccompMode,omitempty"`
	// SeccompFilters counts the filters attached (-1: the kernel does not
	// say).
	SeccompFilters int      `json:"seccompFilters,omitempty"`
	NoNewPrivs     bool     `json:"noNewPrivs"`
	CapAdd         []string `json:"capAdd,omitempty"`
	CapDrop        []string `json:"capDrop,omitempty"`
	Caps           *CapSets `json:"caps,omitempty"`
	// ConfigUser is the user the container was asked to run as.
	ConfigUser string    `json:"configUser,omitempty"`
	User       *ProcUser `json:"user,omitempty"`
}

// CapSets are a process's capability sets, by kernel name.
type CapSets struct {
	Inheritable []string `json:"inheritable"`
	Permitted   []string `json:"permitted"`
	Effective   []string `json:"effective"`
	Bounding    []string `json:"bounding"`
	Ambient     []string `json:"ambient"`
}

// ProcUser is the process's effective user, group and supplementary groups.
type ProcUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// RootfsInfo is the container's root filesystem and mounts.
type RootfsInfo struct {
	Driver    string      `json:"driver"`
	Image     string      `json:"image"`
	ImageName string      `json:"imageName,omitempty"`
	Layers    []LayerInfo `json:"layers"` // bottom first
	// WritableDir is the writable layer's directory (overlay's upper).
	WritableDir string `json:"writableDir,omitempty"`
	// WritableSize is the bytes the writable layer holds, -1 if unknown.
	WritableSize  int64       `json:"writableSize"`
	ReadOnly      bool        `json:"readOnly"`
	MaskedPaths   int         `json:"maskedPaths"`
	ReadonlyPaths int         `json:"readonlyPaths"`
	Mounts        []MountInfo `json:"mounts,omitempty"`
}

// LayerInfo is one image layer under the container's root.
type LayerInfo struct {
	ChainID string `json:"chainID"`
	DiffID  string `json:"diffID"`
	Size    int64  `json:"size"`
}

// MountInfo is a volume, bind or tmpfs mount.
type MountInfo struct {
	Type        string `json:"type"`
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
}

// NotRunningNote is IsolationReport.Note for a container that is not running.
const NotRunningNote = "not running: namespaces and cgroup usage are shown only for a running container"

// nsTypes are the namespaces reported, in display order; time is left out
// where the kernel lacks it.
var nsTypes = [...]string{"mnt", "uts", "ipc", "pid", "net", "user", "cgroup", "time"}

// isoHost is where the report reads the machine; tests point it at fake
// trees.
type isoHost struct {
	proc   string // /proc
	cgroup string // /sys/fs/cgroup
}

var realHost = isoHost{proc: "/proc", cgroup: "/sys/fs/cgroup"}

// Isolation reports what isolates container ref.
func (e *Engine) Isolation(ctx context.Context, ref string) (*IsolationReport, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	r := &IsolationReport{
		ID:      rec.ID,
		Name:    rec.Name,
		Status:  rec.State.Status,
		Running: rec.Running() && rec.State.Pid > 0,
		Pid:     rec.State.Pid,
	}
	hc := rec.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	r.Security = configuredSecurity(rec, hc)
	r.Rootfs = e.rootfsInfo(ctx, rec, hc, r)

	if r.Running {
		e.liveIsolation(rec, r, realHost)
	}
	if !r.Running {
		r.Pid = 0
		r.Note = NotRunningNote
	}
	return r, nil
}

// liveIsolation fills what only a running process shows. A process that
// ends meanwhile turns the report into a stopped container's.
func (e *Engine) liveIsolation(rec *store.Container, r *IsolationReport, h isoHost) {
	pid := rec.State.Pid
	own, err := readNamespaces(h.proc, pid)
	if errors.Is(err, fs.ErrNotExist) {
		r.Running = false
		return
	}
	if err != nil {
		r.Warnings = append(r.Warnings, err.Error())
	}
	hostNS, ref, err := hostNamespaces(h.proc)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("read the host's namespaces: %v", err))
	}
	r.HostReference = ref
	var peers []peerNS
	if all, err := e.containers.List(); err == nil {
		for _, c := range all {
			if c.ID == rec.ID || !c.Running() || c.State.Pid <= 0 {
				continue
			}
			// A dead pid has no ns links: nothing to compare, nothing lost.
			if ns, err := readNamespaces(h.proc, c.State.Pid); err == nil && runtime.ProcessAlive(c.State.Pid, c.State.PidStart) {
				peers = append(peers, peerNS{ref: ContainerRef{ID: c.ID, Name: c.Name}, ns: ns})
			}
		}
	} else {
		r.Warnings = append(r.Warnings, fmt.Sprintf("list containers: %v", err))
	}
	r.Namespaces = compareNamespaces(own, hostNS, peers)

	if data, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "cgroup")); err == nil {
		r.Cgroup = readCgroup(h.cgroup, parseProcCgroup(data))
	} else {
		r.Warnings = append(r.Warnings, fmt.Sprintf("read cgroup of pid %d: %v", pid, err))
	}

	data, err := os.ReadFile(filepath.Join(h.proc, strconv.Itoa(pid), "status"))
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("read status of pid %d: %v", pid, err))
		return
	}
	st, err := parseProcStatus(data)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("read status of pid %d: %v", pid, err))
		return
	}
	st.apply(&r.Security)
}

// configuredSecurity is what the container's config asks for.
func configuredSecurity(rec *store.Container, hc *container.HostConfig) SecurityInfo {
	s := SecurityInfo{
		Privileged:     hc.Privileged,
		SeccompProfile: seccompProfileName(hc),
		NoNewPrivs:     noNewPrivsOpt(hc.SecurityOpt),
		CapAdd:         slices.Clone(hc.CapAdd),
		CapDrop:        slices.Clone(hc.CapDrop),
	}
	if rec.Config != nil {
		s.ConfigUser = rec.Config.User
	}
	if s.ConfigUser == "" && rec.ImageConfig != nil {
		s.ConfigUser = rec.ImageConfig.User
	}
	return s
}

// seccompProfileName names the profile --security-opt seccomp= chose:
// docker's default unless unconfined or a profile of the user's. A
// privileged container runs without one, as with docker.
func seccompProfileName(hc *container.HostConfig) string {
	if hc.Privileged {
		return "unconfined"
	}
	name := "default"
	for _, opt := range hc.SecurityOpt {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok || k != "seccomp" {
			continue
		}
		switch v {
		case "", "builtin":
			name = "default"
		case "unconfined":
			name = "unconfined"
		default:
			name = "custom"
		}
	}
	return name
}

// noNewPrivsOpt reports whether --security-opt asked for no-new-privileges.
func noNewPrivsOpt(opts []string) bool {
	on := false
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			on = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if ok && k == "no-new-privileges" {
			on, _ = strconv.ParseBool(v)
		}
	}
	return on
}

// rootfsInfo describes the container's root: its driver, image layers,
// writable layer, masked paths and mounts.
func (e *Engine) rootfsInfo(ctx context.Context, rec *store.Container, hc *container.HostConfig, r *IsolationReport) RootfsInfo {
	out := RootfsInfo{
		Driver:       rec.Driver,
		Image:        rec.Image,
		ImageName:    rec.ImageName,
		Layers:       []LayerInfo{},
		WritableSize: -1,
		ReadOnly:     hc.ReadonlyRootfs,
	}
	out.MaskedPaths, out.ReadonlyPaths = e.protectedPaths(rec, hc, &out.ReadOnly)
	for _, m := range rec.Mounts {
		out.Mounts = append(out.Mounts, MountInfo{Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination, RW: m.RW})
	}
	st, err := e.images.layersIfCreated()
	if err != nil || st == nil {
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("open the layer store: %v", err))
		}
		return out
	}
	if out.Driver == "" {
		out.Driver = st.Driver().Name()
	}
	c, err := st.Container(rec.ID)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("writable layer: %v", err))
		return out
	}
	out.WritableDir = st.Driver().Dir(c.CacheID)
	// The layer graph, not the image store: the image may be gone while
	// the container keeps its layers.
	for chain := c.Image; chain != ""; {
		l, err := st.Layer(chain)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("image layer %s: %v", chain, err))
			break
		}
		out.Layers = append(out.Layers, LayerInfo{ChainID: l.ChainID.String(), DiffID: l.DiffID.String(), Size: l.Size})
		chain = l.Parent
	}
	slices.Reverse(out.Layers)
	if n, err := st.ContainerSize(ctx, rec.ID); err == nil {
		out.WritableSize = n
	} else {
		r.Warnings = append(r.Warnings, fmt.Sprintf("size of the writable layer: %v", err))
	}
	return out
}

// protectedPaths counts the masked and read-only paths: from the bundle's
// config.json when the container was started (what the runtime applied),
// else as spec would generate them.
func (e *Engine) protectedPaths(rec *store.Container, hc *container.HostConfig, readOnly *bool) (masked, ro int) {
	if data, err := os.ReadFile(filepath.Join(e.bundleDir(rec.ID), "config.json")); err == nil {
		var s specs.Spec
		if json.Unmarshal(data, &s) == nil && s.Linux != nil {
			if s.Root != nil {
				*readOnly = s.Root.Readonly
			}
			return len(s.Linux.MaskedPaths), len(s.Linux.ReadonlyPaths)
		}
	}
	if hc.Privileged || slices.ContainsFunc(hc.SecurityOpt, func(o string) bool {
		return o == "systempaths=unconfined" || o == "systempaths:unconfined"
	}) {
		return 0, 0
	}
	masked, ro = len(spec.DefaultMaskedPaths()), len(spec.DefaultReadonlyPaths())
	if hc.MaskedPaths != nil {
		masked = len(hc.MaskedPaths)
	}
	if hc.ReadonlyPaths != nil {
		ro = len(hc.ReadonlyPaths)
	}
	return masked, ro
}

// readNamespaces reads the inode of each namespace of pid under proc. A
// namespace the kernel lacks (time before 5.6) is left out; a process
// that is gone is fs.ErrNotExist.
func readNamespaces(proc string, pid int) (map[string]uint64, error) {
	dir := filepath.Join(proc, strconv.Itoa(pid), "ns")
	if _, err := os.Lstat(dir); err != nil {
		return nil, fmt.Errorf("namespaces of pid %d: %w", pid, err)
	}
	out := make(map[string]uint64, len(nsTypes))
	var errs []error
	for _, typ := range nsTypes {
		link, err := os.Readlink(filepath.Join(dir, typ))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s of pid %d: %w", typ, pid, err))
			continue
		}
		ino, err := parseNSLink(typ, link)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s of pid %d: %w", typ, pid, err))
			continue
		}
		out[typ] = ino
	}
	return out, errors.Join(errs...)
}

// hostNamespaces are the host's namespaces: PID 1's, or, where a sandbox
// hides PID 1's (EACCES even to root), those of berth's own process, which
// runs in the host's namespaces as a daemonless CLI. ref says which.
func hostNamespaces(proc string) (ns map[string]uint64, ref string, err error) {
	ns, err = readNamespaces(proc, 1)
	if err == nil && len(ns) > 0 {
		return ns, "pid 1", nil
	}
	self, serr := readNamespaces(proc, os.Getpid())
	if serr != nil {
		return ns, "pid 1", errors.Join(err, serr)
	}
	if ns == nil {
		ns = map[string]uint64{}
	}
	for typ, ino := range self {
		if _, ok := ns[typ]; !ok {
			ns[typ] = ino
		}
	}
	return ns, "berth's own namespaces (pid 1's are not readable)", nil
}

// parseNSLink reads the inode out of a namespace link, "net:[4026531840]".
func parseNSLink(typ, link string) (uint64, error) {
	rest, ok := strings.CutPrefix(link, typ+":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, fmt.Errorf("unexpected link %q", link)
	}
	ino, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected link %q", link)
	}
	return ino, nil
}

// peerNS is another running container's namespaces.
type peerNS struct {
	ref ContainerRef
	ns  map[string]uint64
}

// compareNamespaces says of each of own's namespaces whether it is the
// host's, other containers', or private. The host wins: every container
// without a user namespace shares the host's, which is worth saying once.
func compareNamespaces(own, host map[string]uint64, peers []peerNS) []NamespaceInfo {
	var out []NamespaceInfo
	for _, typ := range nsTypes {
		ino, ok := own[typ]
		if !ok {
			continue
		}
		ni := NamespaceInfo{Type: typ, Inode: ino, Sharing: NSPrivate}
		switch h, known := host[typ]; {
		case known && h == ino:
			ni.Sharing = NSHost
		default:
			for _, p := range peers {
				if p.ns[typ] == ino {
					ni.SharedWith = append(ni.SharedWith, p.ref)
				}
			}
			switch {
			case len(ni.SharedWith) > 0:
				ni.Sharing = NSContainer
			case !known:
				ni.Sharing = NSUnknown
			}
		}
		out = append(out, ni)
	}
	return out
}

// cgroupEntry is a line of /proc/PID/cgroup: "4:memory:/berth/ID", or
// "0::/berth/ID" for the unified hierarchy.
type cgroupEntry struct {
	controllers []string // nil for the unified hierarchy
	path        string
}

// parseProcCgroup parses /proc/PID/cgroup. Named hierarchies
// (name=systemd) carry no limits and are skipped.
func parseProcCgroup(data []byte) []cgroupEntry {
	var out []cgroupEntry
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		e := cgroupEntry{path: parts[2]}
		if parts[1] != "" {
			for _, c := range strings.Split(parts[1], ",") {
				if !strings.HasPrefix(c, "name=") && c != "" {
					e.controllers = append(e.controllers, c)
				}
			}
			if len(e.controllers) == 0 {
				continue
			}
		} else if parts[0] != "0" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// readCgroup reads the limits and usage of the cgroup that entries name,
// under root (where cgroupfs is mounted). Any v1 controller makes it a v1
// read (a hybrid host's unified hierarchy holds no controllers); else v2.
func readCgroup(root string, entries []cgroupEntry) *CgroupInfo {
	paths := map[string]string{}
	mounts := map[string]string{}
	unified, hasUnified := "", false
	for _, e := range entries {
		if e.controllers == nil {
			unified, hasUnified = e.path, true
			continue
		}
		for _, c := range e.controllers {
			paths[c] = e.path
			mounts[c] = strings.Join(e.controllers, ",")
		}
	}
	if len(paths) == 0 {
		if !hasUnified {
			return nil
		}
		return readCgroupV2(root, unified)
	}
	return readCgroupV1(root, paths, mounts)
}

// readCgroupV2 reads the unified cgroup at root/path.
func readCgroupV2(root, path string) *CgroupInfo {
	dir := filepath.Join(root, path)
	info := &CgroupInfo{Version: "v2", Path: path}
	if cur, ok := readNum(dir, "memory.current"); ok {
		m := &CgroupMemory{Usage: cur}
		m.Limit, _ = readLimit(dir, "memory.max")
		if peak, ok := readNum(dir, "memory.peak"); ok {
			m.Peak = &peak
		}
		info.Memory = m
	}
	if s, ok := readStr(dir, "cpu.max"); ok { // "max 100000" or "50000 100000"
		c := &CgroupCPU{Quota: -1}
		f := strings.Fields(s)
		if len(f) == 2 {
			c.Period, _ = strconv.ParseUint(f[1], 10, 64)
			if q, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				c.Quota = q
			}
		}
		c.Weight, _ = readNum(dir, "cpu.weight")
		c.CPUs = cpusOf(c.Quota, c.Period)
		info.CPU = c
	}
	if cur, ok := readNum(dir, "pids.current"); ok {
		p := &CgroupPids{Current: cur}
		p.Max, _ = readLimit(dir, "pids.max")
		info.Pids = p
	}
	// An empty cpuset.cpus inherits the parent's: the effective files say
	// what applies.
	cpus, ok := readStr(dir, "cpuset.cpus")
	if eff, eok := readStr(dir, "cpuset.cpus.effective"); eok && cpus == "" {
		cpus, ok = eff, true
	}
	if ok {
		mems, _ := readStr(dir, "cpuset.mems")
		if eff, eok := readStr(dir, "cpuset.mems.effective"); eok && mems == "" {
			mems = eff
		}
		info.Cpuset = &CgroupCpuset{Cpus: cpus, Mems: mems}
	}
	return info
}

// readCgroupV1 reads the v1 cgroups that paths (controller → path) name,
// each under its hierarchy at root/<controller>, or, for co-mounted
// controllers without the usual links, root/<mount> ("cpu,cpuacct").
func readCgroupV1(root string, paths, mounts map[string]string) *CgroupInfo {
	info := &CgroupInfo{Version: "v1", Paths: paths}
	info.Path = paths["memory"]
	if info.Path == "" {
		keys := sortedKeys(paths)
		info.Path = paths[keys[0]]
	}
	dir := func(c string) (string, bool) {
		p, ok := paths[c]
		if !ok {
			return "", false
		}
		d := filepath.Join(root, c, p)
		if !isDirPath(d) && mounts[c] != "" {
			d = filepath.Join(root, mounts[c], p)
		}
		return d, isDirPath(d)
	}
	if d, ok := dir("memory"); ok {
		if cur, ok := readNum(d, "memory.usage_in_bytes"); ok {
			m := &CgroupMemory{Usage: cur}
			m.Limit, _ = readLimit(d, "memory.limit_in_bytes")
			if peak, ok := readNum(d, "memory.max_usage_in_bytes"); ok {
				m.Peak = &peak
			}
			info.Memory = m
		}
	}
	if d, ok := dir("cpu"); ok {
		c := &CgroupCPU{Quota: -1}
		found := false
		if s, ok := readStr(d, "cpu.cfs_quota_us"); ok {
			found = true
			if q, err := strconv.ParseInt(s, 10, 64); err == nil {
				c.Quota = q
			}
			c.Period, _ = readNum(d, "cpu.cfs_period_us")
		}
		if sh, ok := readNum(d, "cpu.shares"); ok {
			found = true
			c.Shares = sh
		}
		if found {
			c.CPUs = cpusOf(c.Quota, c.Period)
			info.CPU = c
		}
	}
	if d, ok := dir("pids"); ok {
		if cur, ok := readNum(d, "pids.current"); ok {
			p := &CgroupPids{Current: cur}
			p.Max, _ = readLimit(d, "pids.max")
			info.Pids = p
		}
	}
	if d, ok := dir("cpuset"); ok {
		if cpus, ok := readStr(d, "cpuset.cpus"); ok {
			mems, _ := readStr(d, "cpuset.mems")
			info.Cpuset = &CgroupCpuset{Cpus: cpus, Mems: mems}
		}
	}
	return info
}

func cpusOf(quota int64, period uint64) float64 {
	if quota <= 0 || period == 0 {
		return 0
	}
	return float64(quota) / float64(period)
}

func isDirPath(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func readStr(dir, name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", false
	}
	return string(bytes.TrimSpace(b)), true
}

func readNum(dir, name string) (uint64, bool) {
	s, ok := readStr(dir, name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// unlimitedV1 is where v1 counts a limit as none: the kernel shows "no
// limit" as MaxInt64 rounded down to a page.
const unlimitedV1 = 1 << 62

// readLimit reads a limit file: nil for "max", -1 or v1's unlimited.
func readLimit(dir, name string) (*uint64, bool) {
	s, ok := readStr(dir, name)
	if !ok || s == "max" || s == "-1" {
		return nil, ok
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n >= unlimitedV1 {
		return nil, err == nil
	}
	return &n, true
}

// procStatus is what /proc/PID/status says about a process's security.
type procStatus struct {
	uid, gid       uint32
	groups         []uint32
	noNewPrivs     bool
	seccomp        int // 0 disabled, 1 strict, 2 filter; -1 not shown
	seccompFilters int // -1 not shown (before Linux 5.9)
	caps           caps.Config
}

// parseProcStatus reads the lines of /proc/PID/status that matter here.
// The capability and Uid/Gid lines are required.
func parseProcStatus(data []byte) (procStatus, error) {
	st := procStatus{seccomp: -1, seccompFilters: -1}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid", "Gid":
			f := strings.Fields(val) // real, effective, saved, filesystem
			if len(f) < 2 {
				return st, fmt.Errorf("bad %s line %q", key, line)
			}
			var n uint64
			if n, err = strconv.ParseUint(f[1], 10, 32); err == nil {
				if key == "Uid" {
					st.uid = uint32(n)
				} else {
					st.gid = uint32(n)
				}
			}
		case "Groups":
			for _, g := range strings.Fields(val) {
				var n uint64
				if n, err = strconv.ParseUint(g, 10, 32); err != nil {
					break
				}
				st.groups = append(st.groups, uint32(n))
			}
		case "NoNewPrivs":
			st.noNewPrivs = val == "1"
		case "Seccomp":
			st.seccomp, err = strconv.Atoi(val)
		case "Seccomp_filters":
			st.seccompFilters, err = strconv.Atoi(val)
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb":
			var v uint64
			if v, err = strconv.ParseUint(val, 16, 64); err == nil {
				set := caps.Set(v)
				switch key {
				case "CapInh":
					st.caps.Inheritable = set
				case "CapPrm":
					st.caps.Permitted = set
				case "CapEff":
					st.caps.Effective = set
				case "CapBnd":
					st.caps.Bounding = set
				case "CapAmb":
					st.caps.Ambient = set
				}
			}
		default:
			continue
		}
		if err != nil {
			return st, fmt.Errorf("bad %s line %q: %w", key, line, err)
		}
		seen[key] = true
	}
	for _, k := range [...]string{"Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd"} {
		if !seen[k] {
			return st, fmt.Errorf("no %s line", k)
		}
	}
	return st, nil
}

// apply puts the live state into s.
func (st procStatus) apply(s *SecurityInfo) {
	s.User = &ProcUser{UID: st.uid, GID: st.gid, Groups: st.groups}
	s.NoNewPrivs = st.noNewPrivs
	switch st.seccomp {
	case 0:
		s.SeccompMode = "disabled"
	case 1:
		s.SeccompMode = "strict"
	case 2:
		s.SeccompMode = "filter"
	}
	s.SeccompFilters = st.seccompFilters
	names := func(set caps.Set) []string {
		n := set.Names()
		if n == nil {
			n = []string{}
		}
		return n
	}
	s.Caps = &CapSets{
		Inheritable: names(st.caps.Inheritable),
		Permitted:   names(st.caps.Permitted),
		Effective:   names(st.caps.Effective),
		Bounding:    names(st.caps.Bounding),
		Ambient:     names(st.caps.Ambient),
	}
}
