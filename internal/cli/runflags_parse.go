package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// Values of --pull.
const (
	pullAlways  = "always"
	pullMissing = "missing"
	pullNever   = "never"
)

// parse turns the flags plus the positional args (IMAGE [COMMAND] [ARG...])
// into a createRequest. Checks run in the order docker runs them, so that a
// command line with several mistakes reports the one docker would.
func (f *runFlags) parse(fs *pflag.FlagSet, args []string) (*createRequest, error) {
	if len(args) == 0 {
		return nil, errors.New("requires at least 1 argument: the image to run")
	}
	if err := validatePull(f.pull); err != nil {
		return nil, err
	}
	req := &createRequest{
		Name:       f.name,
		Image:      args[0],
		Platform:   f.platform,
		Pull:       f.pull,
		Config:     f.baseConfig(args),
		HostConfig: f.baseHostConfig(),
		Detach:     f.detach,
		SigProxy:   f.sigProxy,
		DetachKeys: f.detachKeys,
		Quiet:      f.quiet,
	}
	if req.Pull == "" {
		req.Pull = pullMissing
	}
	steps := []func(*pflag.FlagSet, *createRequest) error{
		f.applyMacAddress,
		f.applySwappiness,
		f.applyVolumes,
		f.applyEntrypoint,
		f.applyPorts,
		f.applyDevices,
		f.applyEnv,
		f.applyLabels,
		f.applyNamespaces,
		f.applyRestart,
		f.applyLogging,
		f.applySecurity,
		f.applyStorageOpts,
		f.applyHealthcheck,
		f.applyResources,
		f.applyFlagsSetOnly,
		f.applyNetworks,
		f.applyDetach,
	}
	for _, step := range steps {
		if err := step(fs, req); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// baseConfig fills the Config fields that need no checking.
func (f *runFlags) baseConfig(args []string) *container.Config {
	cfg := &container.Config{
		Hostname:     f.hostname,
		Domainname:   f.domainname,
		User:         f.user,
		Tty:          f.tty,
		OpenStdin:    f.stdin,
		AttachStdin:  f.stdin || f.attach.has("stdin"),
		AttachStdout: f.attach.has("stdout"),
		AttachStderr: f.attach.has("stderr"),
		Image:        args[0],
		WorkingDir:   f.workdir,
		StopSignal:   f.stopSignal,
	}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	// Without -a, docker attaches stdout and stderr.
	if len(f.attach.values) == 0 {
		cfg.AttachStdout = true
		cfg.AttachStderr = true
	}
	// Attached stdin closes when the client disconnects.
	cfg.StdinOnce = cfg.OpenStdin && cfg.AttachStdin
	return cfg
}

// baseHostConfig fills the HostConfig fields that need no checking.
func (f *runFlags) baseHostConfig() *container.HostConfig {
	return &container.HostConfig{
		ContainerIDFile: f.cidfile,
		OomScoreAdj:     f.res.oomScoreAdj,
		AutoRemove:      f.autoRemove,
		Privileged:      f.privileged,
		Links:           f.net.links.values,
		PublishAllPorts: f.net.publishAll,
		DNS:             addrs(f.net.dns.values),
		DNSSearch:       f.net.dnsSearch.orEmpty(),
		DNSOptions:      f.net.dnsOptions.orEmpty(),
		ExtraHosts:      f.net.extraHosts.values,
		VolumesFrom:     f.volumesFrom.values,
		CapAdd:          f.capAdd.values,
		CapDrop:         f.capDrop.values,
		GroupAdd:        f.groupAdd.values,
		ReadonlyRootfs:  f.readOnly,
		VolumeDriver:    f.volumeDriver,
		Isolation:       container.Isolation(f.isolation),
		ShmSize:         int64(f.shmSize),
		Sysctls:         f.sysctls.all(),
		Runtime:         f.runtime,
		Mounts:          f.mounts.values,
		Annotations:     f.annotations.all(),
		CgroupnsMode:    container.CgroupnsMode(f.cgroupnsMode),
	}
}

func validatePull(v string) error {
	switch v {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", v, pullAlways, pullMissing, pullNever)
}

func (f *runFlags) applyMacAddress(_ *pflag.FlagSet, req *createRequest) error {
	mac := f.net.macAddress
	if mac == "" {
		return nil
	}
	if _, err := net.ParseMAC(strings.TrimSpace(mac)); err != nil {
		return fmt.Errorf("%s is not a valid mac address", mac)
	}
	req.MacAddress = mac
	return nil
}

func (f *runFlags) applySwappiness(_ *pflag.FlagSet, _ *createRequest) error {
	s := f.res.swappiness
	if s != -1 && (s < 0 || s > 100) {
		return fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", s)
	}
	return nil
}

// applyVolumes splits -v into binds (a source is given) and anonymous
// volumes (only a container path), and collects --tmpfs.
func (f *runFlags) applyVolumes(_ *pflag.FlagSet, req *createRequest) error {
	volumes := map[string]struct{}{}
	for _, spec := range f.volumes.values {
		bind, isBind, err := parseVolumeSpec(spec)
		if err != nil {
			return err
		}
		if isBind {
			req.HostConfig.Binds = append(req.HostConfig.Binds, bind)
		} else {
			volumes[spec] = struct{}{}
		}
	}
	req.Config.Volumes = volumes
	tmpfs := map[string]string{}
	for _, t := range f.tmpfs.values {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}
	req.HostConfig.Tmpfs = tmpfs
	return nil
}

// parseVolumeSpec checks a -v value ([SOURCE:]TARGET[:OPTIONS]) and reports
// whether it names a source. A relative host path ("./data") is made
// absolute here, because the engine does not run in the user's directory.
func parseVolumeSpec(spec string) (string, bool, error) {
	if spec == "" {
		return "", false, errors.New("invalid empty volume spec")
	}
	if len(spec) <= 2 {
		return spec, false, nil
	}
	parts := strings.Split(spec, ":")
	for _, p := range parts {
		if p == "" {
			return "", false, fmt.Errorf("invalid spec: %s: empty section between colons", spec)
		}
	}
	if len(parts) > 3 {
		return "", false, fmt.Errorf("invalid spec: %s: too many colons", spec)
	}
	if len(parts) == 1 {
		return spec, false, nil
	}
	src, rest, _ := strings.Cut(spec, ":")
	if !filepath.IsAbs(src) && strings.HasPrefix(src, ".") {
		if abs, err := filepath.Abs(src); err == nil {
			return abs + ":" + rest, true, nil
		}
	}
	return spec, true, nil
}

func (f *runFlags) applyEntrypoint(fs *pflag.FlagSet, req *createRequest) error {
	switch {
	case f.entrypoint != "":
		req.Config.Entrypoint = []string{f.entrypoint}
	case fs.Changed("entrypoint"):
		// --entrypoint="" clears the image's entrypoint.
		req.Config.Entrypoint = []string{""}
	}
	return nil
}

func (f *runFlags) applyPorts(_ *pflag.FlagSet, req *createRequest) error {
	exposed, bindings, err := parsePublish(f.net.publish.values)
	if err != nil {
		return err
	}
	for _, e := range f.net.expose.values {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}
	req.Config.ExposedPorts = exposed
	req.HostConfig.PortBindings = bindings
	return nil
}

// parsePublish turns -p values into the exposed ports and their bindings.
// A container port published twice keeps both bindings.
func parsePublish(specs []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		short, err := publishShortForm(spec)
		if err != nil {
			return nil, nil, err
		}
		mappings, err := parsePortSpec(short)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range mappings {
			exposed[m.port] = struct{}{}
			if bindings[m.port] == nil {
				bindings[m.port] = []network.PortBinding{}
			}
			bindings[m.port] = append(bindings[m.port], m.binding)
		}
	}
	return exposed, bindings, nil
}

// publishShortForm rewrites the long form (published=8080,target=80,
// protocol=udp) into [HOST:]CONTAINER/PROTO.
func publishShortForm(spec string) (string, error) {
	if !strings.Contains(spec, "=") {
		return spec, nil
	}
	params := map[string]string{"protocol": "tcp"}
	for _, param := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(param, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", param)
		}
		params[k] = v
	}
	return params["published"] + ":" + params["target"] + "/" + params["protocol"], nil
}

type portMapping struct {
	port    network.Port
	binding network.PortBinding
}

// parsePortSpec parses [IP:][HOSTPORT[-END]:]PORT[-END][/PROTO]. An IPv6
// host address may be bracketed. A single container port with a host range
// keeps the range: the engine picks a free host port from it.
func parsePortSpec(raw string) ([]portMapping, error) {
	ip, hostPort, containerPort := splitPortSpec(raw)
	proto, containerPort := splitProto(containerPort)
	hostIP, err := parseHostIP(ip)
	if err != nil {
		return nil, err
	}
	if containerPort == "" {
		return nil, fmt.Errorf("no port specified: %s<empty>", raw)
	}
	start, end, err := parsePortNumbers(containerPort)
	if err != nil {
		return nil, errors.New("invalid containerPort: " + containerPort)
	}
	var hStart, hEnd uint64
	if hostPort != "" {
		if hStart, hEnd, err = parsePortNumbers(hostPort); err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != hEnd-hStart && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", containerPort, hostPort)
		}
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, errors.New("invalid proto: " + proto)
	}
	count := end - start + 1
	out := make([]portMapping, 0, count)
	for i := uint64(0); i < count; i++ {
		p, err := network.ParsePort(strconv.FormatUint(start+i, 10) + "/" + proto)
		if err != nil {
			return nil, err
		}
		b := network.PortBinding{HostIP: hostIP}
		if hostPort != "" {
			b.HostPort = strconv.FormatUint(hStart+i, 10)
			if count == 1 && hStart != hEnd {
				b.HostPort += "-" + strconv.FormatUint(hEnd, 10)
			}
		}
		out = append(out, portMapping{port: p, binding: b})
	}
	return out, nil
}

// splitPortSpec splits on colons from the right: the last field is the
// container port, the one before it the host port, the rest the address.
func splitPortSpec(raw string) (ip, hostPort, containerPort string) {
	parts := strings.Split(raw, ":")
	n := len(parts)
	switch n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

// splitProto splits PORT[/PROTO]; the protocol defaults to tcp.
func splitProto(s string) (proto, port string) {
	port, proto, _ = strings.Cut(s, "/")
	if port == "" {
		return "", ""
	}
	proto, _, _ = strings.Cut(proto, "/")
	if proto == "" {
		proto = "tcp"
	}
	return proto, port
}

func parseHostIP(ip string) (netip.Addr, error) {
	if ip == "" {
		return netip.Addr{}, nil
	}
	if strings.HasPrefix(ip, "[") {
		host, _, err := net.SplitHostPort(ip + ":")
		if err != nil {
			return netip.Addr{}, fmt.Errorf("invalid IP address %v: %w", ip, err)
		}
		ip = host
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}, errors.New("invalid IP address: " + ip)
	}
	return addr, nil
}

// parsePortNumbers parses PORT or START-END.
func parsePortNumbers(s string) (uint64, uint64, error) {
	if s == "" {
		return 0, 0, errors.New("empty string specified for ports")
	}
	a, b, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(a, 10, 16)
	if err != nil || !isRange {
		return start, start, err
	}
	end, err := strconv.ParseUint(b, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if end < start {
		return 0, 0, errors.New("invalid range specified for port: " + s)
	}
	return start, end, nil
}

// applyDevices parses --device HOST[:CONTAINER][:PERMS]; CDI names
// (vendor.com/class=name) become a device request for the "cdi" driver.
func (f *runFlags) applyDevices(fs *pflag.FlagSet, req *createRequest) error {
	if fs.Changed("gpus") {
		return errors.New("--gpus is not supported: berth has no GPU device driver; use --device to pass device nodes")
	}
	res := &req.HostConfig.Resources
	res.Devices = []container.DeviceMapping{}
	var cdi []string
	for _, d := range f.devices.values {
		if isCDIName(d) {
			cdi = append(cdi, d)
			continue
		}
		if err := validateDevicePath(d); err != nil {
			return err
		}
		m, err := parseDevice(d)
		if err != nil {
			return err
		}
		res.Devices = append(res.Devices, m)
	}
	if len(cdi) > 0 {
		res.DeviceRequests = append(res.DeviceRequests, container.DeviceRequest{Driver: "cdi", DeviceIDs: cdi})
	}
	return nil
}

func isCDIName(d string) bool {
	kind, name, ok := strings.Cut(d, "=")
	if !ok || name == "" || strings.ContainsAny(d, ":") {
		return false
	}
	vendor, class, ok := strings.Cut(kind, "/")
	return ok && vendor != "" && class != "" && !strings.Contains(class, "/")
}

// validateDevicePath checks HOST[:CONTAINER][:PERMS]: the container path
// must be absolute and the permissions a subset of "rwm".
func validateDevicePath(val string) error {
	if strings.Count(val, ":") > 2 {
		return fmt.Errorf("bad format for path: %s", val)
	}
	parts := strings.Split(val, ":")
	if parts[0] == "" {
		return fmt.Errorf("bad format for path: %s", val)
	}
	containerPath := parts[0]
	switch len(parts) {
	case 2:
		if !validDeviceMode(parts[1]) {
			containerPath = parts[1]
		}
	case 3:
		containerPath = parts[1]
		if !validDeviceMode(parts[2]) {
			return fmt.Errorf("bad mode specified: %s", parts[2])
		}
	}
	if !path.IsAbs(containerPath) {
		return fmt.Errorf("%s is not an absolute path", containerPath)
	}
	return nil
}

func parseDevice(d string) (container.DeviceMapping, error) {
	parts := strings.Split(d, ":")
	m := container.DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if validDeviceMode(parts[1]) {
			m.CgroupPermissions = parts[1]
		} else {
			m.PathInContainer = parts[1]
		}
	case 3:
		m.PathInContainer, m.CgroupPermissions = parts[1], parts[2]
	default:
		return container.DeviceMapping{}, fmt.Errorf("invalid device specification: %s", d)
	}
	if m.PathInContainer == "" {
		m.PathInContainer = m.PathOnHost
	}
	return m, nil
}

// validDeviceMode reports whether mode is a non-empty set of r, w and m,
// each at most once.
func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// applyEnv reads --env-file files in order, then -e values, which win.
func (f *runFlags) applyEnv(_ *pflag.FlagSet, req *createRequest) error {
	var env []string
	for _, file := range f.envFile.values {
		vars, err := readKVFile(file, os.LookupEnv)
		if err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
		env = append(env, vars...)
	}
	req.Config.Env = append(env, f.env.values...)
	return nil
}

func (f *runFlags) applyLabels(_ *pflag.FlagSet, req *createRequest) error {
	var kvs []string
	for _, file := range f.labelFile.values {
		// A bare KEY in a label file has no value to take, so docker drops it.
		vars, err := readKVFile(file, nil)
		if err != nil {
			return fmt.Errorf("--label-file: %w", err)
		}
		kvs = append(kvs, vars...)
	}
	kvs = append(kvs, f.labels.values...)
	labels := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	req.Config.Labels = labels
	return nil
}

// readKVFile reads docker's env-file format: KEY=VALUE lines, kept as
// written (no quotes, no expansion); blank lines and lines starting with #
// are skipped; a bare KEY takes its value from lookup, or is dropped.
func readKVFile(file string, lookup func(string) (string, bool)) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out, err := parseKVLines(data, lookup)
	if err != nil {
		return nil, fmt.Errorf("invalid env file (%s): %w", file, err)
	}
	return out, nil
}

func parseKVLines(data []byte, lookup func(string) (string, bool)) ([]string, error) {
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	out := []string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if !utf8.Valid(sc.Bytes()) {
			return nil, fmt.Errorf("line %d: invalid utf8 bytes: %v", n, sc.Bytes())
		}
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("line %d: no variable name on line '%s'", n, line)
		}
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("line %d: variable '%s' contains whitespaces", n, key)
		}
		if hasValue {
			out = append(out, line)
		} else if lookup != nil {
			if v, ok := lookup(key); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// applyNamespaces checks the namespace modes as docker does.
func (f *runFlags) applyNamespaces(_ *pflag.FlagSet, req *createRequest) error {
	hc := req.HostConfig
	hc.PidMode = container.PidMode(f.pidMode)
	if !hc.PidMode.Valid() {
		return errors.New("--pid: invalid PID mode")
	}
	hc.UTSMode = container.UTSMode(f.utsMode)
	if !hc.UTSMode.Valid() {
		return errors.New("--uts: invalid UTS mode")
	}
	hc.UsernsMode = container.UsernsMode(f.usernsMode)
	if !hc.UsernsMode.Valid() {
		return errors.New("--userns: invalid USER mode")
	}
	if !hc.CgroupnsMode.Valid() {
		return errors.New("--cgroupns: invalid CGROUP mode")
	}
	hc.IpcMode = container.IpcMode(f.ipcMode)
	if !hc.IpcMode.Valid() {
		return fmt.Errorf("invalid IPC mode: %v", hc.IpcMode)
	}
	return nil
}

func (f *runFlags) applyRestart(_ *pflag.FlagSet, req *createRequest) error {
	p, err := parseRestartPolicy(f.restart)
	if err != nil {
		return err
	}
	if f.autoRemove && !p.IsNone() {
		return errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	// The daemon's own check, done here since berth has no daemon.
	if err := container.ValidateRestartPolicy(p); err != nil {
		return err
	}
	req.HostConfig.RestartPolicy = p
	return nil
}

// parseRestartPolicy parses NAME[:MAX-RETRIES]; the name is checked later.
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, hasColon := strings.Cut(s, ":")
	if hasColon && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

func (f *runFlags) applyLogging(_ *pflag.FlagSet, req *createRequest) error {
	if f.logDriver == "none" && len(f.logOpts.values) > 0 {
		return fmt.Errorf("invalid logging opts for driver %s", f.logDriver)
	}
	opts := make(map[string]string, len(f.logOpts.values))
	for _, o := range f.logOpts.values {
		k, v, _ := strings.Cut(o, "=")
		opts[k] = v
	}
	req.HostConfig.LogConfig = container.LogConfig{Type: f.logDriver, Config: opts}
	return nil
}

// applySecurity checks --security-opt values, inlines a seccomp profile
// file as compact JSON (the engine may not see the caller's files), and
// turns systempaths=unconfined into empty masked and read-only path lists.
func (f *runFlags) applySecurity(_ *pflag.FlagSet, req *createRequest) error {
	hc := req.HostConfig
	for _, opt := range f.securityOpts.values {
		v, err := securityOpt(opt)
		if err != nil {
			return err
		}
		if v == "systempaths=unconfined" {
			hc.MaskedPaths = []string{}
			hc.ReadonlyPaths = []string{}
			continue
		}
		hc.SecurityOpt = append(hc.SecurityOpt, v)
	}
	return nil
}

func securityOpt(opt string) (string, error) {
	k, v, ok := strings.Cut(opt, "=")
	if !ok && k != "no-new-privileges" {
		k, v, ok = strings.Cut(opt, ":")
	}
	if (!ok || v == "") && k != "no-new-privileges" {
		return "", fmt.Errorf("invalid --security-opt: %q", opt)
	}
	if k != "seccomp" || v == "builtin" || v == "unconfined" {
		return opt, nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return "", fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
	}
	return "seccomp=" + b.String(), nil
}

func (f *runFlags) applyStorageOpts(_ *pflag.FlagSet, req *createRequest) error {
	m := make(map[string]string, len(f.storageOpts.values))
	for _, o := range f.storageOpts.values {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return errors.New("invalid storage option")
		}
		m[k] = v
	}
	req.HostConfig.StorageOpt = m
	return nil
}

func (f *runFlags) applyHealthcheck(_ *pflag.FlagSet, req *createRequest) error {
	h := f.health
	set := h.cmd != "" || h.interval != 0 || h.timeout != 0 || h.startPeriod != 0 || h.retries != 0 || h.startInterval != 0
	if f.noHealthcheck {
		if set {
			return errors.New("--no-healthcheck conflicts with --health-* options")
		}
		req.Config.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return nil
	}
	if !set {
		return nil
	}
	for _, c := range []struct {
		name string
		neg  bool
	}{
		{"--health-interval", h.interval < 0},
		{"--health-timeout", h.timeout < 0},
		{"--health-retries", h.retries < 0},
		{"--health-start-period", h.startPeriod < 0},
		{"--health-start-interval", h.startInterval < 0},
	} {
		if c.neg {
			return errors.New(c.name + " cannot be negative")
		}
	}
	hc := &container.HealthConfig{
		Interval:      h.interval,
		Timeout:       h.timeout,
		StartPeriod:   h.startPeriod,
		StartInterval: h.startInterval,
		Retries:       h.retries,
	}
	if h.cmd != "" {
		hc.Test = []string{"CMD-SHELL", h.cmd}
	}
	req.Config.Healthcheck = hc
	return nil
}

// applyResources fills the cgroup limits. Pointer fields are always set,
// as docker sends them; --cpus with --cpu-period or --cpu-quota is refused
// with the daemon's message.
func (f *runFlags) applyResources(_ *pflag.FlagSet, req *createRequest) error {
	r := f.res
	res := &req.HostConfig.Resources
	res.CgroupParent = f.cgroupParent
	res.Memory = int64(r.memory)
	res.MemoryReservation = int64(r.memoryReservation)
	res.MemorySwap = int64(r.memorySwap)
	res.MemorySwappiness = &r.swappiness
	res.OomKillDisable = &r.oomKillDisable
	res.NanoCPUs = int64(r.cpus)
	res.CPUShares = r.cpuShares
	res.CPUPeriod = r.cpuPeriod
	res.CPUQuota = r.cpuQuota
	res.CPURealtimePeriod = r.cpuRtPeriod
	res.CPURealtimeRuntime = r.cpuRtRuntime
	res.CpusetCpus = r.cpusetCpus
	res.CpusetMems = r.cpusetMems
	res.PidsLimit = &r.pidsLimit
	res.BlkioWeight = r.blkioWeight
	res.Ulimits = f.ulimits.list()
	res.DeviceCgroupRules = f.deviceRules.values
	if res.NanoCPUs > 0 && res.CPUPeriod > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set") //nolint:staticcheck // docker's text
	}
	if res.NanoCPUs > 0 && res.CPUQuota > 0 {
		return errors.New("Conflicting options: Nano CPUs and CPU Quota cannot both be set") //nolint:staticcheck // docker's text
	}
	if !req.HostConfig.Isolation.IsDefault() {
		return fmt.Errorf("invalid isolation '%s' on linux", req.HostConfig.Isolation)
	}
	return nil
}

// applyFlagsSetOnly sets the fields docker leaves null unless the flag was
// given, so that the image's or daemon's default applies.
func (f *runFlags) applyFlagsSetOnly(fs *pflag.FlagSet, req *createRequest) error {
	if fs.Changed("stop-timeout") {
		t := f.stopTimeout
		req.Config.StopTimeout = &t
	}
	if fs.Changed("init") {
		b := f.init
		req.HostConfig.Init = &b
	}
	return nil
}

// applyNetworks sets the network mode from the first --network (docker
// sends "default" when none is given) and checks the endpoint options.
func (f *runFlags) applyNetworks(_ *pflag.FlagSet, req *createRequest) error {
	n := f.net
	nets := n.networks.values
	if len(nets) == 0 {
		nets = []netAttachment{{target: network.NetworkDefault}}
	}
	first := nets[0]
	if err := n.mergeInto(&first); err != nil {
		return err
	}
	seen := map[string]bool{}
	var userDefined, builtin bool
	for i, a := range nets {
		if i == 0 {
			a = first
		}
		if err := a.check(); err != nil {
			return err
		}
		if seen[a.target] {
			return fmt.Errorf("network %q is specified multiple times", a.target)
		}
		seen[a.target] = true
		if container.NetworkMode(a.target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i > 0 {
			req.Networks = append(req.Networks, a.target)
		}
	}
	if userDefined && builtin {
		return errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	req.HostConfig.NetworkMode = container.NetworkMode(first.target)
	req.Aliases = first.aliases
	req.IPv4Address, req.IPv6Address, req.MacAddress = first.ip, first.ip6, first.mac
	return nil
}

// mergeInto applies --network-alias, --ip, --ip6 and --mac-address to the
// first network, refusing them where its own options set the same thing.
func (n *netFlags) mergeInto(a *netAttachment) error {
	conflict := func(flag, what string) error {
		return fmt.Errorf("conflicting options: cannot specify both %s and per-network %s", flag, what)
	}
	if len(n.aliases.values) > 0 {
		if len(a.aliases) > 0 {
			return conflict("--network-alias", "alias")
		}
		a.aliases = append([]string(nil), n.aliases.values...)
	}
	if n.ip != nil {
		if a.ip.IsValid() {
			return conflict("--ip", "IPv4 address")
		}
		a.ip, _ = netip.AddrFromSlice(n.ip.To4())
	}
	if n.ip6 != nil {
		if a.ip6.IsValid() {
			return conflict("--ip6", "IPv6 address")
		}
		a.ip6, _ = netip.AddrFromSlice(n.ip6.To16())
	}
	if n.macAddress != "" {
		if a.mac != "" {
			return conflict("--mac-address", "MAC address")
		}
		a.mac = n.macAddress
	}
	return nil
}

func (a netAttachment) check() error {
	if strings.TrimSpace(a.target) == "" {
		return errors.New("no name set for network")
	}
	if len(a.aliases) > 0 && !container.NetworkMode(a.target).IsUserDefined() {
		return errors.New("network-scoped aliases are only supported for user-defined networks")
	}
	if a.mac != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(a.mac)); err != nil {
			return fmt.Errorf("%s is not a valid mac address", a.mac)
		}
	}
	return nil
}

// applyDetach: with -d nothing is attached, so -a makes no sense.
func (f *runFlags) applyDetach(_ *pflag.FlagSet, req *createRequest) error {
	if err := validateDetachKeys(f.detachKeys); err != nil {
		return err
	}
	if !f.detach {
		return nil
	}
	if len(f.attach.values) > 0 {
		return errors.New("conflicting options: cannot specify both --attach and --detach")
	}
	c := req.Config
	c.AttachStdin, c.AttachStdout, c.AttachStderr, c.StdinOnce = false, false, false, false
	return nil
}

// validateDetachKeys checks a comma-separated key sequence: single
// characters or ctrl-<a-z, @, [, \, ], ^, _>.
func validateDetachKeys(keys string) error {
	if keys == "" {
		return nil
	}
	for _, k := range strings.Split(keys, ",") {
		if len(k) == 1 {
			continue
		}
		lk := strings.ToLower(k)
		if c, ok := strings.CutPrefix(lk, "ctrl-"); ok && len(c) == 1 && strings.Contains("abcdefghijklmnopqrstuvwxyz@[\\]^_", c) {
			continue
		}
		return fmt.Errorf("invalid detach keys (%s): Unknown character: '%s'", keys, k)
	}
	return nil
}

// addrs converts validated IP strings; nil when there are none.
func addrs(ips []string) []netip.Addr {
	if len(ips) == 0 {
		return nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}
