package engine

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// statusDefault is /proc/PID/status of a process with docker's default
// capabilities, seccomp filter on, as root.
const statusDefault = `Name:	sh
Umask:	0022
State:	S (sleeping)
Pid:	4242
Uid:	0	0	0	0
Gid:	0	0	0	0
FDSize:	64
Groups:	0 10
NoNewPrivs:	0
CapInh:	0000000000000000
CapPrm:	00000000a80425fb
CapEff:	00000000a80425fb
CapBnd:	00000000a80425fb
CapAmb:	0000000000000000
Seccomp:	2
Seccomp_filters:	1
Speculation_Store_Bypass:	thread force mitigated
`

func TestParseProcStatus(t *testing.T) {
	st, err := parseProcStatus([]byte(statusDefault))
	if err != nil {
		t.Fatal(err)
	}
	if st.uid != 0 || st.gid != 0 || !slices.Equal(st.groups, []uint32{0, 10}) {
		t.Errorf("user = %d:%d %v", st.uid, st.gid, st.groups)
	}
	if st.seccomp != 2 || st.seccompFilters != 1 || st.noNewPrivs {
		t.Errorf("seccomp %d filters %d nnp %v", st.seccomp, st.seccompFilters, st.noNewPrivs)
	}
	var s SecurityInfo
	st.apply(&s)
	if s.SeccompMode != "filter" || s.SeccompFilters != 1 {
		t.Errorf("seccomp = %q, %d filters", s.SeccompMode, s.SeccompFilters)
	}
	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
		"CAP_AUDIT_WRITE", "CAP_SETFCAP"}
	if !slices.Equal(s.Caps.Effective, want) {
		t.Errorf("CapEff = %v, want docker's 14: %v", s.Caps.Effective, want)
	}
	if !slices.Equal(s.Caps.Bounding, want) || !slices.Equal(s.Caps.Permitted, want) {
		t.Errorf("CapBnd = %v, CapPrm = %v", s.Caps.Bounding, s.Caps.Permitted)
	}
	if s.Caps.Inheritable == nil || len(s.Caps.Inheritable) != 0 || len(s.Caps.Ambient) != 0 {
		t.Errorf("CapInh = %#v, CapAmb = %#v, want empty lists", s.Caps.Inheritable, s.Caps.Ambient)
	}

	t.Run("user and old kernel", func(t *testing.T) {
		in := strings.NewReplacer("Uid:\t0\t0", "Uid:\t1000\t1001", "Gid:\t0\t0", "Gid:\t5\t6",
			"NoNewPrivs:\t0", "NoNewPrivs:\t1", "Seccomp_filters:\t1\n", "", "Seccomp:\t2", "Seccomp:\t0").Replace(statusDefault)
		st, err := parseProcStatus([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var s SecurityInfo
		st.apply(&s)
		if s.User.UID != 1001 || s.User.GID != 6 || !s.NoNewPrivs || s.SeccompMode != "disabled" || s.SeccompFilters != -1 {
			t.Errorf("got %+v user %+v", s, s.User)
		}
	})

	for name, in := range map[string]string{
		"no CapBnd":  strings.Replace(statusDefault, "CapBnd:", "CapXyz:", 1),
		"no Uid":     strings.Replace(statusDefault, "Uid:", "Xid:", 1),
		"bad hex":    strings.Replace(statusDefault, "CapEff:\t00000000a80425fb", "CapEff:\tzz", 1),
		"bad Uid":    strings.Replace(statusDefault, "Uid:\t0\t0\t0\t0", "Uid:\t0", 1),
		"bad Groups": strings.Replace(statusDefault, "Groups:\t0 10", "Groups:\tx", 1),
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseProcStatus([]byte(in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseNSLink(t *testing.T) {
	for _, tc := range []struct {
		typ, link string
		want      uint64
		ok        bool
	}{
		{"net", "net:[4026531840]", 4026531840, true},
		{"cgroup", "cgroup:[4026531835]", 4026531835, true},
		{"net", "mnt:[4026531840]", 0, false},
		{"net", "net:[abc]", 0, false},
		{"net", "net:[1", 0, false},
		{"net", "", 0, false},
	} {
		got, err := parseNSLink(tc.typ, tc.link)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseNSLink(%q, %q) = %d, %v", tc.typ, tc.link, got, err)
		}
	}
}

// fakeNS makes proc/PID/ns with links for inodes (type → inode link text).
func fakeNS(t *testing.T, proc, pid string, links map[string]string) {
	t.Helper()
	dir := filepath.Join(proc, pid, "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for typ, l := range links {
		if err := os.Symlink(l, filepath.Join(dir, typ)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadNamespaces(t *testing.T) {
	proc := t.TempDir()
	fakeNS(t, proc, "1", map[string]string{
		"mnt": "mnt:[1]", "uts": "uts:[2]", "ipc": "ipc:[3]", "pid": "pid:[4]", "net": "net:[5]",
		"user": "user:[6]", "cgroup": "cgroup:[7]", "time": "time:[8]",
		"pid_for_children": "pid:[4]", // not reported
	})
	// The container: no time namespace (an old kernel), its own mnt, uts
	// and net, pid and ipc shared with a peer, the host's user and cgroup.
	fakeNS(t, proc, "100", map[string]string{
		"mnt": "mnt:[11]", "uts": "uts:[12]", "ipc": "ipc:[13]", "pid": "pid:[14]", "net": "net:[5]",
		"user": "user:[6]", "cgroup": "cgroup:[7]",
	})
	fakeNS(t, proc, "200", map[string]string{"mnt": "mnt:[21]", "pid": "pid:[14]", "ipc": "ipc:[13]"})
	fakeNS(t, proc, "300", map[string]string{"mnt": "mnt:[31]", "ipc": "ipc:[13]"})

	read := func(pid string) map[string]uint64 {
		t.Helper()
		n, _ := strconv.Atoi(pid)
		ns, err := readNamespaces(proc, n)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	own, host := read("100"), read("1")
	if len(own) != 7 || own["mnt"] != 11 || len(host) != 8 || host["time"] != 8 {
		t.Fatalf("own %v host %v", own, host)
	}
	peers := []peerNS{
		{ref: ContainerRef{ID: "b", Name: "first"}, ns: read("200")},
		{ref: ContainerRef{ID: "c", Name: "other"}, ns: read("300")},
	}
	got := compareNamespaces(own, host, peers)
	want := []NamespaceInfo{
		{Type: "mnt", Inode: 11, Sharing: NSPrivate},
		{Type: "uts", Inode: 12, Sharing: NSPrivate},
		{Type: "ipc", Inode: 13, Sharing: NSContainer, SharedWith: []ContainerRef{{"b", "first"}, {"c", "other"}}},
		{Type: "pid", Inode: 14, Sharing: NSContainer, SharedWith: []ContainerRef{{"b", "first"}}},
		{Type: "net", Inode: 5, Sharing: NSHost},
		{Type: "user", Inode: 6, Sharing: NSHost},
		{Type: "cgroup", Inode: 7, Sharing: NSHost},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("compareNamespaces:\n got %+v\nwant %+v", got, want)
	}

	// The host's unreadable: private namespaces cannot be told from host ones.
	got = compareNamespaces(map[string]uint64{"net": 5, "pid": 14}, nil, peers)
	if got[0].Sharing != NSContainer || got[1].Sharing != NSUnknown {
		t.Errorf("without the host's: %+v", got)
	}

	if _, err := readNamespaces(proc, 999); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a gone pid: %v, want not exist", err)
	}
	fakeNS(t, proc, "400", map[string]string{"net": "garbage"})
	if _, err := readNamespaces(proc, 400); err == nil {
		t.Error("a bad link: no error")
	}
}

func TestReadNamespacesSelf(t *testing.T) {
	ns, err := readNamespaces("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"mnt", "uts", "ipc", "pid", "net", "user"} {
		if ns[typ] == 0 {
			t.Errorf("no %s namespace in %v", typ, ns)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	hybrid := "12:hugetlb:/berth/abc\n11:cpu,cpuacct:/berth/abc\n4:memory:/berth/abc\n" +
		"1:name=systemd:/user.slice\n0::/berth/abc\n\ngarbage\n"
	got := parseProcCgroup([]byte(hybrid))
	want := []cgroupEntry{
		{controllers: []string{"hugetlb"}, path: "/berth/abc"},
		{controllers: []string{"cpu", "cpuacct"}, path: "/berth/abc"},
		{controllers: []string{"memory"}, path: "/berth/abc"},
		{path: "/berth/abc"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hybrid:\n got %+v\nwant %+v", got, want)
	}
	got = parseProcCgroup([]byte("0::/system.slice/berth-abc.scope\n"))
	if len(got) != 1 || got[0].controllers != nil || got[0].path != "/system.slice/berth-abc.scope" {
		t.Errorf("v2: %+v", got)
	}
	if readCgroup(t.TempDir(), nil) != nil {
		t.Error("no entries: want no cgroup")
	}
}

// writeTree writes files (path → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func u64(n uint64) *uint64 { return &n }

func TestReadCgroupV2(t *testing.T) {
	root := t.TempDir()
	const cg = "berth/abc"
	writeTree(t, root, map[string]string{
		"cgroup.controllers":              "cpuset cpu io memory pids\n",
		cg + "/memory.max":                "67108864\n",
		cg + "/memory.current":            "3354624\n",
		cg + "/memory.peak":               "3565158\n",
		cg + "/cpu.max":                   "50000 100000\n",
		cg + "/cpu.weight":                "100\n",
		cg + "/pids.max":                  "100\n",
		cg + "/pids.current":              "12\n",
		cg + "/cpuset.cpus":               "\n",
		cg + "/cpuset.cpus.effective":     "0-3\n",
		cg + "/cpuset.mems":               "0\n",
		cg + "/cpuset.mems.effective":     "0\n",
		"berth/def/memory.max":            "max\n",
		"berth/def/memory.current":        "4096\n",
		"berth/def/cpu.max":               "max 100000\n",
		"berth/def/cpu.weight":            "79\n",
		"berth/def/pids.max":              "max\n",
		"berth/def/pids.current":          "1\n",
		"berth/def/cpuset.cpus.effective": "0-7\n",
	})
	got := readCgroup(root, parseProcCgroup([]byte("0::/"+cg+"\n")))
	want := &CgroupInfo{
		Version: "v2",
		Path:    "/" + cg,
		Memory:  &CgroupMemory{Limit: u64(64 << 20), Usage: 3354624, Peak: u64(3565158)},
		CPU:     &CgroupCPU{Quota: 50000, Period: 100000, CPUs: 0.5, Weight: 100},
		Pids:    &CgroupPids{Current: 12, Max: u64(100)},
		Cpuset:  &CgroupCpuset{Cpus: "0-3", Mems: "0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("limited:\n got %s\nwant %s", dump(got), dump(want))
	}

	got = readCgroupV2(root, "/berth/def")
	want = &CgroupInfo{
		Version: "v2",
		Path:    "/berth/def",
		Memory:  &CgroupMemory{Usage: 4096}, // no peak before Linux 5.19
		CPU:     &CgroupCPU{Quota: -1, Period: 100000, Weight: 79},
		Pids:    &CgroupPids{Current: 1},
		Cpuset:  &CgroupCpuset{Cpus: "0-7"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unlimited:\n got %s\nwant %s", dump(got), dump(want))
	}

	// Controllers not enabled: nothing to show but the path.
	got = readCgroupV2(root, "/gone")
	if got.Memory != nil || got.CPU != nil || got.Pids != nil || got.Cpuset != nil {
		t.Errorf("missing cgroup: %s", dump(got))
	}
}

func TestReadCgroupV1(t *testing.T) {
	root := t.TempDir()
	const cg = "berth/abc"
	writeTree(t, root, map[string]string{
		"memory/" + cg + "/memory.limit_in_bytes":     "67108864\n",
		"memory/" + cg + "/memory.usage_in_bytes":     "3354624\n",
		"memory/" + cg + "/memory.max_usage_in_bytes": "3565158\n",
		// Co-mounted, without the cpu and cpuacct links.
		"cpu,cpuacct/" + cg + "/cpu.cfs_quota_us":  "150000\n",
		"cpu,cpuacct/" + cg + "/cpu.cfs_period_us": "100000\n",
		"cpu,cpuacct/" + cg + "/cpu.shares":        "512\n",
		"pids/" + cg + "/pids.max":                 "max\n",
		"pids/" + cg + "/pids.current":             "2\n",
		"cpuset/" + cg + "/cpuset.cpus":            "0-1\n",
		"cpuset/" + cg + "/cpuset.mems":            "0\n",
		// Another container, unlimited.
		"memory/berth/def/memory.limit_in_bytes": "9223372036854771712\n",
		"memory/berth/def/memory.usage_in_bytes": "8192\n",
		"cpu/berth/def/cpu.cfs_quota_us":         "-1\n",
		"cpu/berth/def/cpu.cfs_period_us":        "100000\n",
		"cpu/berth/def/cpu.shares":               "1024\n",
	})
	procCgroup := func(p string) []byte {
		return []byte("9:name=systemd:/x\n8:pids:" + p + "\n4:memory:" + p + "\n3:cpuset:" + p +
			"\n2:cpu,cpuacct:" + p + "\n0::" + p + "\n")
	}
	got := readCgroup(root, parseProcCgroup(procCgroup("/"+cg)))
	p := "/" + cg
	want := &CgroupInfo{
		Version: "v1",
		Path:    p,
		Paths:   map[string]string{"pids": p, "memory": p, "cpuset": p, "cpu": p, "cpuacct": p},
		Memory:  &CgroupMemory{Limit: u64(64 << 20), Usage: 3354624, Peak: u64(3565158)},
		CPU:     &CgroupCPU{Quota: 150000, Period: 100000, CPUs: 1.5, Shares: 512},
		Pids:    &CgroupPids{Current: 2},
		Cpuset:  &CgroupCpuset{Cpus: "0-1", Mems: "0"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("limited:\n got %s\nwant %s", dump(got), dump(want))
	}

	got = readCgroupV1(root, map[string]string{"memory": "/berth/def", "cpu": "/berth/def", "pids": "/berth/def"}, nil)
	if got.Memory == nil || got.Memory.Limit != nil || got.Memory.Usage != 8192 || got.Memory.Peak != nil {
		t.Errorf("unlimited memory: %s", dump(got.Memory))
	}
	if got.CPU == nil || got.CPU.Quota != -1 || got.CPU.CPUs != 0 || got.CPU.Shares != 1024 {
		t.Errorf("unlimited cpu: %s", dump(got.CPU))
	}
	if got.Pids != nil {
		t.Errorf("no pids cgroup: %s", dump(got.Pids))
	}

	// Without a memory controller the path is the first controller's.
	got = readCgroupV1(root, map[string]string{"pids": "/p", "cpuset": "/c"}, nil)
	if got.Path != "/c" {
		t.Errorf("path = %q, want the first controller's", got.Path)
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSeccompProfileName(t *testing.T) {
	for _, tc := range []struct {
		hc   container.HostConfig
		want string
	}{
		{container.HostConfig{}, "default"},
		{container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, "unconfined"},
		{container.HostConfig{SecurityOpt: []string{"seccomp:unconfined"}}, "unconfined"},
		{container.HostConfig{SecurityOpt: []string{"seccomp=builtin"}}, "default"},
		{container.HostConfig{SecurityOpt: []string{"label=disable", `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}}, "custom"},
		{container.HostConfig{SecurityOpt: []string{"seccomp=/etc/profile.json"}}, "custom"},
		{container.HostConfig{Privileged: true}, "unconfined"},
	} {
		if got := seccompProfileName(&tc.hc); got != tc.want {
			t.Errorf("%v privileged=%v: %q, want %q", tc.hc.SecurityOpt, tc.hc.Privileged, got, tc.want)
		}
	}
	for _, tc := range []struct {
		opts []string
		want bool
	}{
		{nil, false},
		{[]string{"no-new-privileges"}, true},
		{[]string{"no-new-privileges=true"}, true},
		{[]string{"no-new-privileges:false"}, false},
		{[]string{"no-new-privileges", "no-new-privileges=false"}, false},
	} {
		if got := noNewPrivsOpt(tc.opts); got != tc.want {
			t.Errorf("noNewPrivsOpt(%v) = %v", tc.opts, got)
		}
	}
}

// A sandbox may hide PID 1's namespaces even from root: berth's own stand
// for the host's then.
func TestHostNamespacesFallback(t *testing.T) {
	proc := t.TempDir()
	self := strconv.Itoa(os.Getpid())
	fakeNS(t, proc, self, map[string]string{"net": "net:[5]", "user": "user:[6]"})
	ns, ref, err := hostNamespaces(proc)
	if err != nil || ns["net"] != 5 || ns["user"] != 6 || !strings.Contains(ref, "berth's own") {
		t.Errorf("without pid 1: %v %q %v", ns, ref, err)
	}
	fakeNS(t, proc, "1", map[string]string{"net": "net:[7]"})
	ns, ref, err = hostNamespaces(proc)
	if err != nil || ns["net"] != 7 || ref != "pid 1" {
		t.Errorf("with pid 1: %v %q %v", ns, ref, err)
	}
	if _, _, err := hostNamespaces(t.TempDir()); err == nil {
		t.Error("neither readable: no error")
	}
}
