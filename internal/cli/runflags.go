package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"
)

// createRequest is what `run` and `create` hand to the engine: the same
// Config and HostConfig that the docker CLI would send to dockerd, plus the
// client-side options that never reach the daemon.
type createRequest struct {
	Name       string
	Image      string
	Platform   string
	Pull       string // "missing" (default), "always", "never"
	Config     *container.Config
	HostConfig *container.HostConfig
	Networks   []string // --network values beyond the first (the first is HostConfig.NetworkMode)
	Aliases    []string // --network-alias, for the first network

	// Endpoint settings of the first network (--ip, --ip6, --mac-address);
	// docker sends them in NetworkingConfig, which the request does not model.
	IPv4Address netip.Addr
	IPv6Address netip.Addr
	MacAddress  string

	// Attach behaviour (run only; create ignores it).
	Detach     bool
	SigProxy   bool
	DetachKeys string
	Quiet      bool // -q/--quiet: suppress pull output
}

// runFlags holds the flags of run and create (docker's names, shorthands,
// defaults and help texts).
type runFlags struct {
	// Client-side options.
	detach     bool
	sigProxy   bool
	detachKeys string
	name       string
	platform   string
	pull       string
	quiet      bool

	// General.
	attach        listValue
	env           listValue
	envFile       listValue
	labels        listValue
	labelFile     listValue
	entrypoint    string
	groupAdd      listValue
	hostname      string
	domainname    string
	stdin         bool
	tty           bool
	readOnly      bool
	restart       string
	stopSignal    string
	stopTimeout   int
	sysctls       mapValue
	ulimits       ulimitValue
	user          string
	workdir       string
	autoRemove    bool
	cidfile       string
	init          bool
	annotations   mapValue
	devices       listValue
	deviceRules   listValue
	gpus          listValue
	runtime       string
	isolation     string
	disableTrust  bool
	kernelMemory  memValue
	storageOpts   listValue
	securityOpts  listValue
	capAdd        listValue
	capDrop       listValue
	privileged    bool
	usernsMode    string
	cgroupnsMode  string
	pidMode       string
	ipcMode       string
	utsMode       string
	cgroupParent  string
	shmSize       memValue
	logDriver     string
	logOpts       listValue
	volumeDriver  string
	volumes       listValue
	mounts        mountValue
	tmpfs         listValue
	volumesFrom   listValue
	noHealthcheck bool
	health        healthFlags
	net           netFlags
	res           resourceFlags
}

// healthFlags are the --health-* flags.
type healthFlags struct {
	cmd           string
	interval      time.Duration
	timeout       time.Duration
	startPeriod   time.Duration
	startInterval time.Duration
	retries       int
}

// netFlags are the network and port publishing flags.
type netFlags struct {
	networks   networkValue
	aliases    listValue
	links      listValue
	ip         net.IP
	ip6        net.IP
	macAddress string
	extraHosts listValue
	dns        listValue
	dnsSearch  listValue
	dnsOptions listValue
	publish    listValue
	publishAll bool
	expose     listValue
}

// resourceFlags are the cgroup resource flags.
type resourceFlags struct {
	memory            memValue
	memorySwap        memSwapValue
	memoryReservation memValue
	swappiness        int64
	oomKillDisable    bool
	oomScoreAdj       int
	cpus              cpusValue
	cpuShares         int64
	cpuPeriod         int64
	cpuQuota          int64
	cpuRtPeriod       int64
	cpuRtRuntime      int64
	cpusetCpus        string
	cpusetMems        string
	pidsLimit         int64
	blkioWeight       uint16
}

// addRunFlags registers docker run's flags on fs and returns where their
// values land. Flags parse up to the image name only: what follows is the
// container's command, even when it looks like a flag.
func addRunFlags(fs *pflag.FlagSet) *runFlags {
	f := &runFlags{}
	fs.SetInterspersed(false)
	f.addClientFlags(fs)
	f.addGeneralFlags(fs)
	f.addSecurityFlags(fs)
	f.net.addFlags(fs)
	f.addStorageFlags(fs)
	f.health.addFlags(fs, &f.noHealthcheck)
	f.res.addFlags(fs)
	f.addExecutionFlags(fs)
	return f
}

func (f *runFlags) addClientFlags(fs *pflag.FlagSet) {
	fs.BoolVarP(&f.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&f.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&f.name, "name", "", "Assign a name to the container")
	fs.StringVar(&f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.StringVar(&f.pull, "pull", pullMissing, `Pull image before running ("always", "missing", "never")`)
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "Suppress the pull output")
	fs.StringVar(&f.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.BoolVar(&f.disableTrust, "disable-content-trust", true, "Skip image verification (deprecated)")
	_ = fs.MarkDeprecated("disable-content-trust", "support for docker content trust was removed")
}

func (f *runFlags) addGeneralFlags(fs *pflag.FlagSet) {
	f.attach.validate = validateAttach
	f.env.validate = validateEnv
	f.labels.validate = validateLabel
	f.sysctls.validate = validateSysctl
	f.deviceRules.validate = validateDeviceCgroupRule

	fs.VarP(&f.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(&f.deviceRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(&f.devices, "device", "Add a host device to the container")
	fs.Var(&f.gpus, "gpus", "GPU devices to add to the container ('all' to pass all GPUs)")
	fs.VarP(&f.env, "env", "e", "Set environment variables")
	fs.Var(&f.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(&f.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&f.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&f.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(&f.labels, "label", "l", "Set meta data on a container")
	fs.Var(&f.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&f.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&f.restart, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(&f.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(&f.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&f.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&f.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
}

func (f *runFlags) addSecurityFlags(fs *pflag.FlagSet) {
	fs.Var(&f.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&f.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(&f.securityOpts, "security-opt", "Security Options")
	fs.StringVar(&f.usernsMode, "userns", "", "User namespace to use")
	fs.StringVar(&f.cgroupnsMode, "cgroupns", "", `Cgroup namespace to use (host|private)
'host':    Run the container in the host's cgroup namespace
'private': Run the container in its own private cgroup namespace
'':        Use the cgroup namespace as configured by the
           default-cgroupns-mode option on the daemon (default)`)
}

func (n *netFlags) addFlags(fs *pflag.FlagSet) {
	n.extraHosts.validate = validateExtraHost
	n.dns.validate = validateIPAddress
	n.dnsSearch.validate = validateDNSSearch
	n.links.validate = validateLink

	fs.Var(&n.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(&n.dns, "dns", "Set custom DNS servers")
	// --dns-opt and --net* are docker's older spellings, kept hidden.
	fs.Var(&n.dnsOptions, "dns-opt", "Set DNS options")
	fs.Var(&n.dnsOptions, "dns-option", "Set DNS options")
	_ = fs.MarkHidden("dns-opt")
	fs.Var(&n.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(&n.expose, "expose", "Expose a port or a range of ports")
	fs.IPVar(&n.ip, "ip", nil, "IPv4 address (e.g., 172.30.100.104)")
	fs.IPVar(&n.ip6, "ip6", nil, "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(&n.links, "link", "Add link to another container")
	fs.StringVar(&n.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(&n.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&n.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&n.networks, "net", "Connect a container to a network")
	fs.Var(&n.networks, "network", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	fs.Var(&n.aliases, "net-alias", "Add network-scoped alias for the container")
	fs.Var(&n.aliases, "network-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
}

func (f *runFlags) addStorageFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.logDriver, "log-driver", "", "Logging driver for the container")
	fs.StringVar(&f.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.Var(&f.logOpts, "log-opt", "Log driver options")
	fs.Var(&f.storageOpts, "storage-opt", "Storage driver options for the container")
	fs.Var(&f.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(&f.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(&f.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&f.mounts, "mount", "Attach a filesystem mount to the container")
}

func (h *healthFlags) addFlags(fs *pflag.FlagSet, none *bool) {
	fs.StringVar(&h.cmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&h.interval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&h.retries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&h.timeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&h.startPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&h.startInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.BoolVar(none, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
}

func (r *resourceFlags) addFlags(fs *pflag.FlagSet) {
	fs.Uint16Var(&r.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.StringVar(&r.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&r.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&r.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&r.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&r.cpuRtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fs.Int64Var(&r.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fs.Int64VarP(&r.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&r.cpus, "cpus", "Number of CPUs")
	fs.VarP(&r.memory, "memory", "m", "Memory limit")
	fs.Var(&r.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&r.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&r.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&r.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&r.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&r.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
}

func (f *runFlags) addExecutionFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.cidfile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&f.ipcMode, "ipc", "", "IPC mode to use")
	fs.StringVar(&f.isolation, "isolation", "", "Container isolation technology")
	fs.StringVar(&f.pidMode, "pid", "", "PID namespace to use")
	fs.Var(&f.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&f.utsMode, "uts", "", "UTS namespace to use")
	fs.StringVar(&f.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&f.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(&f.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	// Accepted and ignored, as docker does: cgroup v2 has no kernel memory limit.
	fs.Var(&f.kernelMemory, "kernel-memory", "Kernel memory limit (deprecated)")
	_ = fs.MarkDeprecated("kernel-memory", "and no longer supported by the kernel")
}

// listValue is a repeatable string flag; validate, when set, checks and
// normalises each value as it is given.
type listValue struct {
	values   []string
	validate func(string) (string, error)
}

func (l *listValue) Set(v string) error {
	if l.validate != nil {
		nv, err := l.validate(v)
		if err != nil {
			return err
		}
		v = nv
	}
	l.values = append(l.values, v)
	return nil
}

func (l *listValue) String() string { return fmt.Sprintf("%v", l.values) }
func (l *listValue) Type() string   { return "list" }

// has reports whether v was given (attach streams are compared lower-case).
func (l *listValue) has(v string) bool {
	for _, x := range l.values {
		if x == v {
			return true
		}
	}
	return false
}

// orEmpty returns the values, or an empty (non-nil) slice when none were
// given: docker sends [] rather than null for the DNS fields.
func (l *listValue) orEmpty() []string {
	if l.values == nil {
		return []string{}
	}
	return l.values
}

// mapValue is a repeatable KEY=VALUE flag collected into a map.
type mapValue struct {
	values   map[string]string
	validate func(string) (string, error)
}

func (m *mapValue) Set(v string) error {
	if m.validate != nil {
		nv, err := m.validate(v)
		if err != nil {
			return err
		}
		v = nv
	}
	k, val, _ := strings.Cut(v, "=")
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[k] = val
	return nil
}

func (m *mapValue) String() string { return fmt.Sprintf("%v", m.all()) }
func (m *mapValue) Type() string   { return "map" }

// all returns the map, never nil (docker always sends an object).
func (m *mapValue) all() map[string]string {
	if m.values == nil {
		return map[string]string{}
	}
	return m.values
}

// memValue is a size in bytes given as docker does (128m, 2g, 1024).
type memValue int64

func (m *memValue) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memValue(n)
	return err
}

func (m *memValue) String() string {
	// "0" keeps pflag from printing a default in the help text.
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memValue) Type() string { return "bytes" }

// memSwapValue is memValue that also accepts -1 (unlimited swap).
type memSwapValue int64

func (m *memSwapValue) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	n, err := units.RAMInBytes(v)
	*m = memSwapValue(n)
	return err
}

func (m *memSwapValue) String() string {
	mv := memValue(*m)
	return mv.String()
}

func (m *memSwapValue) Type() string { return "bytes" }

// cpusValue is a decimal number of CPUs stored as nano-CPUs.
type cpusValue int64

func (c *cpusValue) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return errors.New("value is too precise")
	}
	*c = cpusValue(nano.Num().Int64())
	return nil
}

func (c *cpusValue) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

func (c *cpusValue) Type() string { return "decimal" }

// ulimitValue collects --ulimit name=soft[:hard]; a later value for the same
// name replaces the earlier one.
type ulimitValue struct {
	values map[string]*container.Ulimit
}

func (u *ulimitValue) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	if u.values == nil {
		u.values = map[string]*container.Ulimit{}
	}
	u.values[l.Name] = l
	return nil
}

func (u *ulimitValue) String() string {
	out := make([]string, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l.String())
	}
	sort.Strings(out)
	return fmt.Sprintf("%v", out)
}

func (u *ulimitValue) Type() string { return "ulimit" }

// list returns the ulimits sorted by name, never nil, as docker sends them.
func (u *ulimitValue) list() []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(u.values))
	for _, l := range u.values {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Validators run as each flag value is given, as docker's do, so a bad value
// is reported by pflag with the flag's name.

func validateAttach(v string) (string, error) {
	s := strings.ToLower(v)
	switch s {
	case "stdin", "stdout", "stderr":
		return s, nil
	}
	return v, errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// validateEnv takes a bare NAME's value from the caller's environment; a
// NAME that is not set there is passed on bare, as docker does.
func validateEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" {
		return "", errors.New("invalid environment variable: " + v)
	}
	if hasValue {
		return v, nil
	}
	if val, ok := os.LookupEnv(k); ok {
		return k + "=" + val, nil
	}
	return v, nil
}

func validateLabel(v string) (string, error) {
	k, _, _ := strings.Cut(v, "=")
	k = strings.TrimLeft(k, " \t")
	if k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", v)
	}
	if strings.ContainsAny(k, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return v, nil
}

// validateSysctl allows only the namespaced sysctls that docker allows.
func validateSysctl(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if ok && k != "" {
		switch k {
		case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
			"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
			return v, nil
		}
		if strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.") {
			return v, nil
		}
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", v)
}

// validateDeviceCgroupRule checks "TYPE MAJOR:MINOR ACCESS", e.g. "c 1:3 rwm".
func validateDeviceCgroupRule(v string) (string, error) {
	bad := fmt.Errorf("invalid device cgroup format '%s'", v)
	f := strings.Split(v, " ")
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("acb", f[0]) {
		return v, bad
	}
	major, minor, ok := strings.Cut(f[1], ":")
	if !ok || !deviceNumber(major) || !deviceNumber(minor) {
		return v, bad
	}
	if len(f[2]) < 1 || len(f[2]) > 3 || strings.Trim(f[2], "rwm") != "" {
		return v, bad
	}
	return v, nil
}

func deviceNumber(s string) bool {
	if s == "*" {
		return true
	}
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validateExtraHost accepts HOST:IP, HOST=IP and a bracketed IPv6 address,
// and passes HOST:IP on, the only form the API takes.
func validateExtraHost(v string) (string, error) {
	k, ip, ok := strings.Cut(v, "=")
	if !ok {
		k, ip, ok = strings.Cut(v, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", v)
	}
	if ip != "host-gateway" {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := validateIPAddress(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return k + ":" + ip, nil
}

func validateIPAddress(v string) (string, error) {
	if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("IP address is not correctly formatted: %s", v)
}

// validateDNSSearch accepts a domain name, or "." for none.
func validateDNSSearch(v string) (string, error) {
	v = strings.Trim(v, " ")
	if v == "." {
		return v, nil
	}
	bad := fmt.Errorf("%s is not a valid domain", v)
	d := strings.TrimSuffix(strings.TrimRightFunc(v, unicode.IsSpace), ".")
	if d == "" || len(d) >= 255 || !strings.ContainsFunc(d, isASCIILetter) {
		return "", bad
	}
	for _, label := range strings.Split(d, ".") {
		if !validDomainLabel(label) {
			return "", bad
		}
	}
	return d, nil
}

func isASCIILetter(r rune) bool { return r < utf8.RuneSelf && unicode.IsLetter(r) }

func validDomainLabel(l string) bool {
	if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if !(c == '-' || c >= '0' && c <= '9' || c < utf8.RuneSelf && unicode.IsLetter(c)) {
			return false
		}
	}
	return true
}

// validateLink checks NAME[:ALIAS].
func validateLink(v string) (string, error) {
	if v == "" {
		return v, errors.New("empty string specified for links")
	}
	if strings.Count(v, ":") > 1 {
		return v, errors.New("bad format for links: " + v)
	}
	return v, nil
}

// netAttachment is one --network value: a name, or docker's long form
// name=NET,alias=A,ip=IP,ip6=IP,mac-address=MAC.
type netAttachment struct {
	target  string
	aliases []string
	ip      netip.Addr
	ip6     netip.Addr
	mac     string
}

// networkValue collects --network values.
type networkValue struct {
	values []netAttachment
}

func (n *networkValue) Set(v string) error {
	if !strings.Contains(v, "=") {
		n.values = append(n.values, netAttachment{target: v})
		return nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return err
	}
	var a netAttachment
	for _, field := range fields {
		if err := a.setField(field); err != nil {
			return err
		}
	}
	if a.target == "" {
		return errors.New("network name/id is not specified")
	}
	n.values = append(n.values, a)
	return nil
}

func (a *netAttachment) setField(field string) error {
	key, val, ok := strings.Cut(strings.ToLower(field), "=")
	if !ok || key == "" {
		return fmt.Errorf("invalid field %s", field)
	}
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	var err error
	switch key {
	case "name":
		a.target = val
	case "alias":
		a.aliases = append(a.aliases, val)
	case "ip":
		a.ip, err = netip.ParseAddr(val)
	case "ip6":
		a.ip6, err = netip.ParseAddr(val)
	case "mac-address":
		a.mac = val
	case "driver-opt", "gw-priority", "link-local-ip":
		return fmt.Errorf("network option %s is not supported", key)
	default:
		return errors.New("invalid field key " + key)
	}
	return err
}

func (n *networkValue) String() string { return "" }
func (n *networkValue) Type() string   { return "network" }

// mountValue collects --mount values (type=TYPE,source=SRC,target=DST,...).
type mountValue struct {
	values []mount.Mount
}

func (m *mountValue) Set(v string) error {
	mt, err := parseMount(v)
	if err != nil {
		return err
	}
	m.values = append(m.values, mt)
	return nil
}

func (m *mountValue) String() string {
	out := make([]string, 0, len(m.values))
	for _, mt := range m.values {
		out = append(out, fmt.Sprintf("%s %s %s", mt.Type, mt.Source, mt.Target))
	}
	return strings.Join(out, ", ")
}

func (m *mountValue) Type() string { return "mount" }

func parseMount(v string) (mount.Mount, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return mount.Mount{}, errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	mt := mount.Mount{Type: mount.TypeVolume}
	for _, field := range fields {
		if err := setMountField(&mt, field); err != nil {
			return mount.Mount{}, err
		}
	}
	if err := checkMount(&mt); err != nil {
		return mount.Mount{}, err
	}
	return mt, nil
}

// splitMountField splits KEY[=VALUE], refusing stray whitespace and keys
// that need a value but have none.
func splitMountField(field string) (key, val string, hasValue bool, err error) {
	key, val, hasValue = strings.Cut(field, "=")
	if k := strings.TrimSpace(key); k != key {
		return "", "", false, fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
	}
	if hasValue {
		tv := strings.TrimSpace(val)
		if tv == "" {
			return "", "", false, fmt.Errorf("invalid value for '%s': value is empty", key)
		}
		if tv != val {
			return "", "", false, fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
		}
	}
	key = strings.ToLower(key)
	if !hasValue {
		switch key {
		case "readonly", "ro", "volume-nocopy", "bind-nonrecursive", "bind-create-src":
		default:
			return "", "", false, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
	}
	return key, val, hasValue, nil
}

func setMountField(mt *mount.Mount, field string) error {
	key, val, hasValue, err := splitMountField(field)
	if err != nil {
		return err
	}
	switch key {
	case "type":
		mt.Type = mount.Type(strings.ToLower(val))
	case "source", "src":
		mt.Source = val
		if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
			if abs, err := filepath.Abs(val); err == nil {
				mt.Source = abs
			}
		}
	case "target", "dst", "destination":
		mt.Target = val
	case "readonly", "ro":
		mt.ReadOnly, err = mountBool(key, val, hasValue)
	case "consistency":
		mt.Consistency = mount.Consistency(strings.ToLower(val))
	default:
		return setMountTypeField(mt, key, val, hasValue, field)
	}
	return err
}

// setMountTypeField handles the bind-, volume-, image- and tmpfs- options.
func setMountTypeField(mt *mount.Mount, key, val string, hasValue bool, field string) error {
	var err error
	switch key {
	case "bind-propagation":
		bindOpts(mt).Propagation = mount.Propagation(strings.ToLower(val))
	case "bind-nonrecursive":
		return errors.New("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
	case "bind-recursive":
		return setBindRecursive(mt, key, val)
	case "bind-create-src":
		bindOpts(mt).CreateMountpoint, err = mountBool(key, val, hasValue)
	case "volume-subpath":
		volumeOpts(mt).Subpath = val
	case "volume-nocopy":
		volumeOpts(mt).NoCopy, err = mountBool(key, val, hasValue)
	case "volume-label":
		vo := volumeOpts(mt)
		vo.Labels = setKV(vo.Labels, val)
	case "volume-driver":
		volumeDriver(mt).Name = val
	case "volume-opt":
		d := volumeDriver(mt)
		d.Options = setKV(d.Options, val)
	case "image-subpath":
		if mt.ImageOptions == nil {
			mt.ImageOptions = &mount.ImageOptions{}
		}
		mt.ImageOptions.Subpath = val
	case "tmpfs-size":
		n, perr := units.RAMInBytes(val)
		if perr != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOpts(mt).SizeBytes = n
	case "tmpfs-mode":
		n, perr := strconv.ParseUint(val, 8, 32)
		if perr != nil {
			return fmt.Errorf("invalid value for %s: %s", key, val)
		}
		tmpfsOpts(mt).Mode = os.FileMode(n)
	default:
		return fmt.Errorf("unknown option '%s' in '%s'", key, field)
	}
	return err
}

func setBindRecursive(mt *mount.Mount, key, val string) error {
	switch val {
	case "enabled":
	case "disabled":
		bindOpts(mt).NonRecursive = true
	case "writable":
		bindOpts(mt).ReadOnlyNonRecursive = true
	case "readonly":
		bindOpts(mt).ReadOnlyForceRecursive = true
	default:
		return fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
	}
	return nil
}

// checkMount refuses options of one mount type on another, and the
// recursive read-only modes without what they require.
func checkMount(mt *mount.Mount) error {
	if mt.Type == "" {
		return errors.New("type is required")
	}
	for _, c := range []struct {
		prefix string
		typ    mount.Type
		set    bool
	}{
		{"bind", mount.TypeBind, mt.BindOptions != nil},
		{"volume", mount.TypeVolume, mt.VolumeOptions != nil},
		{"image", mount.TypeImage, mt.ImageOptions != nil},
		{"tmpfs", mount.TypeTmpfs, mt.TmpfsOptions != nil},
	} {
		if c.set && mt.Type != c.typ {
			return fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", c.prefix, mt.Type)
		}
	}
	b := mt.BindOptions
	if b == nil {
		return nil
	}
	if b.ReadOnlyNonRecursive && !mt.ReadOnly {
		return errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
	}
	if b.ReadOnlyForceRecursive {
		if !mt.ReadOnly {
			return errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
		}
		if b.Propagation != mount.PropagationRPrivate {
			return errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
		}
	}
	return nil
}

func mountBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

func bindOpts(mt *mount.Mount) *mount.BindOptions {
	if mt.BindOptions == nil {
		mt.BindOptions = &mount.BindOptions{}
	}
	return mt.BindOptions
}

func volumeOpts(mt *mount.Mount) *mount.VolumeOptions {
	if mt.VolumeOptions == nil {
		mt.VolumeOptions = &mount.VolumeOptions{}
	}
	return mt.VolumeOptions
}

func volumeDriver(mt *mount.Mount) *mount.Driver {
	vo := volumeOpts(mt)
	if vo.DriverConfig == nil {
		vo.DriverConfig = &mount.Driver{}
	}
	return vo.DriverConfig
}

func tmpfsOpts(mt *mount.Mount) *mount.TmpfsOptions {
	if mt.TmpfsOptions == nil {
		mt.TmpfsOptions = &mount.TmpfsOptions{}
	}
	return mt.TmpfsOptions
}

func setKV(m map[string]string, kv string) map[string]string {
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}
