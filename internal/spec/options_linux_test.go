package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func ptrTo[T any](v T) *T { return &v }

func TestResources(t *testing.T) {
	tests := []struct {
		name  string
		r     container.Resources
		check func(t *testing.T, r *specs.LinuxResources)
		err   string
	}{
		{name: "memory below 6MB", r: container.Resources{Memory: 4 << 20}, err: "Minimum memory limit allowed is 6MB"},
		{name: "swap below memory", r: container.Resources{Memory: 100 << 20, MemorySwap: 50 << 20},
			err: "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{name: "swap without memory", r: container.Resources{MemorySwap: 50 << 20},
			err: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "reservation above memory", r: container.Resources{Memory: 100 << 20, MemoryReservation: 200 << 20},
			err: "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{name: "swappiness", r: container.Resources{MemorySwappiness: ptrTo(int64(101))},
			err: "Invalid value: 101, valid memory swappiness range is 0-100"},
		{name: "too many cpus", r: container.Resources{NanoCPUs: 5e9},
			err: "range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"},
		{name: "cpus and period", r: container.Resources{NanoCPUs: 1e9, CPUPeriod: 50000},
			err: "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{name: "cpus and quota", r: container.Resources{NanoCPUs: 1e9, CPUQuota: 50000},
			err: "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{name: "period range", r: container.Resources{CPUPeriod: 500},
			err: "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{name: "cpuset", r: container.Resources{CpusetCpus: "0-x"}, err: "Invalid value 0-x for cpuset cpus"},
		{name: "blkio weight", r: container.Resources{BlkioWeight: 5}, err: "Range of blkio weight is from 10 to 1000"},
		{name: "memory with default swap", r: container.Resources{Memory: 100 << 20, MemoryReservation: 50 << 20},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.Memory.Limit != 100<<20 || *r.Memory.Swap != 200<<20 || *r.Memory.Reservation != 50<<20 {
					t.Errorf("memory = %d swap %d reservation %d", *r.Memory.Limit, *r.Memory.Swap, *r.Memory.Reservation)
				}
			}},
		{name: "unlimited swap", r: container.Resources{Memory: 100 << 20, MemorySwap: -1, OomKillDisable: ptrTo(true), MemorySwappiness: ptrTo(int64(-1))},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.Memory.Swap != -1 || !*r.Memory.DisableOOMKiller || r.Memory.Swappiness != nil {
					t.Errorf("memory = %+v", r.Memory)
				}
			}},
		{name: "cpus", r: container.Resources{NanoCPUs: 1500000000, CPUShares: 512, CpusetCpus: "0-1,3", CpusetMems: "0"},
			check: func(t *testing.T, r *specs.LinuxResources) {
				c := r.CPU
				if *c.Period != 100000 || *c.Quota != 150000 || *c.Shares != 512 || c.Cpus != "0-1,3" || c.Mems != "0" {
					t.Errorf("cpu = period %d quota %d shares %d cpus %q mems %q", *c.Period, *c.Quota, *c.Shares, c.Cpus, c.Mems)
				}
			}},
		{name: "period and quota", r: container.Resources{CPUPeriod: 50000, CPUQuota: 25000},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.CPU.Period != 50000 || *r.CPU.Quota != 25000 {
					t.Errorf("cpu = %+v", r.CPU)
				}
			}},
		{name: "all CPUs", r: container.Resources{NanoCPUs: 4e9},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.CPU.Quota != 400000 {
					t.Errorf("quota = %d", *r.CPU.Quota)
				}
			}},
		{name: "pids", r: container.Resources{PidsLimit: ptrTo(int64(100)), BlkioWeight: 300},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if *r.Pids.Limit != 100 || *r.BlockIO.Weight != 300 {
					t.Errorf("pids %d blkio %d", *r.Pids.Limit, *r.BlockIO.Weight)
				}
			}},
		{name: "pids unlimited", r: container.Resources{PidsLimit: ptrTo(int64(0))},
			check: func(t *testing.T, r *specs.LinuxResources) {
				if r.Pids != nil {
					t.Errorf("pids %d, want no limit set", *r.Pids.Limit)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.Resources = tt.r
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, s)
			tt.check(t, s.Linux.Resources)
		})
	}
}

func TestProcessOptions(t *testing.T) {
	in := baseInput(t)
	umask := uint32(0o027)
	in.Config.Tty = true
	in.HostConfig.ConsoleSize = [2]uint{40, 120}
	in.HostConfig.Umask = &umask
	in.HostConfig.OomScoreAdj = 500
	in.HostConfig.ReadonlyRootfs = true
	in.HostConfig.Annotations = map[string]string{"a": "b"}
	in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "core", Soft: -1, Hard: -1}}
	s := mustGenerate(t, in, fakeHost())
	p := s.Process
	if p.ConsoleSize == nil || p.ConsoleSize.Height != 40 || p.ConsoleSize.Width != 120 {
		t.Errorf("console size = %+v", p.ConsoleSize)
	}
	if *p.User.Umask != 0o027 || *p.OOMScoreAdj != 500 || !s.Root.Readonly || s.Annotations["a"] != "b" {
		t.Errorf("umask %o oom %d readonly %v annotations %v", *p.User.Umask, *p.OOMScoreAdj, s.Root.Readonly, s.Annotations)
	}
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}}
	if !slices.Equal(p.Rlimits, want) {
		t.Errorf("rlimits = %+v, want %+v", p.Rlimits, want)
	}

	for _, tt := range []struct {
		mod func(hc *container.HostConfig)
		err string
	}{
		{func(hc *container.HostConfig) { hc.OomScoreAdj = 1001 }, "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{func(hc *container.HostConfig) { hc.ShmSize = -1 }, "SHM size can not be less than 0"},
		{func(hc *container.HostConfig) { hc.Ulimits = []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}} }, "invalid ulimit type: bogus"},
		{func(hc *container.HostConfig) { hc.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 10, Hard: 1}} },
			"ulimit soft limit must be less than or equal to hard limit: 10 > 1"},
	} {
		in := baseInput(t)
		tt.mod(in.HostConfig)
		_, err := generate(in, fakeHost())
		wantErr(t, err, tt.err)
	}
}

func TestNamespaces(t *testing.T) {
	tests := []struct {
		name     string
		hc       container.HostConfig
		hostname string
		joins    map[string]string
		v2       bool
		want     []string
		wantHost string // spec hostname
		wantEnv  string // $HOSTNAME
		err      string
	}{
		{name: "v2 gets a cgroup namespace", v2: true,
			want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "cgroupns private on v1", hc: container.HostConfig{CgroupnsMode: "private"},
			want: []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "cgroupns host on v2", v2: true, hc: container.HostConfig{CgroupnsMode: "host"},
			want: []string{"mount", "network", "uts", "pid", "ipc"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "host pid and ipc", hc: container.HostConfig{PidMode: "host", IpcMode: "host"},
			want: []string{"mount", "network", "uts"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "network host", hc: container.HostConfig{NetworkMode: "host"},
			want: []string{"mount", "uts", "pid", "ipc"}, wantHost: "testhost", wantEnv: "testhost"},
		{name: "network none and user-defined", hc: container.HostConfig{NetworkMode: "mynet"},
			want: []string{"mount", "network", "uts", "pid", "ipc"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "uts host", hc: container.HostConfig{UTSMode: "host"},
			want: []string{"mount", "network", "pid", "ipc"}, wantEnv: "testhost"},
		{name: "uts host with a hostname", hc: container.HostConfig{UTSMode: "host"}, hostname: "x",
			err: "conflicting options: hostname and the UTS mode"},
		{name: "network container with a hostname", hc: container.HostConfig{NetworkMode: "container:db"}, hostname: "x",
			joins: map[string]string{"network": "/proc/self/ns/net"}, err: "conflicting options: hostname and the network mode"},
		{name: "join", hc: container.HostConfig{NetworkMode: "container:db", PidMode: "container:db", IpcMode: "container:db"},
			joins:    map[string]string{"network": "/proc/self/ns/net", "pid": "/proc/self/ns/pid", "ipc": "/proc/self/ns/ipc"},
			want:     []string{"mount", "network=/proc/self/ns/net", "uts", "pid=/proc/self/ns/pid", "ipc=/proc/self/ns/ipc"},
			wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "join without a path", hc: container.HostConfig{PidMode: "container:db"},
			err: "join the pid namespace of container db"},
		{name: "ipc modes", hc: container.HostConfig{IpcMode: "shareable"},
			want: []string{"mount", "network", "uts", "pid", "ipc"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
		{name: "bad ipc", hc: container.HostConfig{IpcMode: "weird"}, err: "invalid IPC mode: weird"},
		{name: "bad pid", hc: container.HostConfig{PidMode: "weird"}, err: "invalid PID mode: weird"},
		{name: "bad cgroupns", hc: container.HostConfig{CgroupnsMode: "weird"}, err: "invalid cgroup namespace mode: weird"},
		{name: "userns", hc: container.HostConfig{UsernsMode: "private"}, err: "unsupported userns mode"},
		{name: "userns host", hc: container.HostConfig{UsernsMode: "host"},
			want: []string{"mount", "network", "uts", "pid", "ipc"}, wantHost: "0123456789ab", wantEnv: "0123456789ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig = &tt.hc
			in.Config.Hostname = tt.hostname
			in.Joins = tt.joins
			h := fakeHost()
			h.cgroupV2 = func() bool { return tt.v2 }
			s, err := generate(in, h)
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, s)
			if got := nsTypes(s.Linux.Namespaces); !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %q, want %q", got, tt.want)
			}
			if s.Hostname != tt.wantHost || !slices.Contains(s.Process.Env, "HOSTNAME="+tt.wantEnv) {
				t.Errorf("hostname %q env %q, want %q and HOSTNAME=%s", s.Hostname, s.Process.Env, tt.wantHost, tt.wantEnv)
			}
		})
	}
}

func TestHostnameAndDomainname(t *testing.T) {
	in := baseInput(t)
	in.Config.Hostname, in.Config.Domainname = "web", "example.com"
	s := mustGenerate(t, in, fakeHost())
	if s.Hostname != "web" || s.Domainname != "example.com" {
		t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
	}
}

func TestSysctls(t *testing.T) {
	tests := []struct {
		key string
		hc  container.HostConfig
		err string
	}{
		{key: "net.ipv4.ip_forward"},
		{key: "net/ipv4/ip_forward"},
		{key: "kernel.shmmax"},
		{key: "kernel.msgmax"},
		{key: "kernel.sem"},
		{key: "fs.mqueue.msg_max"},
		{key: "kernel.domainname"},
		{key: "kernel.shmmax", hc: container.HostConfig{IpcMode: "none"}},
		{key: "net.ipv4.ip_forward", hc: container.HostConfig{NetworkMode: "host"}, err: `sysctl "net.ipv4.ip_forward" is not allowed in the host's network namespace`},
		{key: "net.ipv4.ip_forward", hc: container.HostConfig{NetworkMode: "container:x"}, err: `sysctl "net.ipv4.ip_forward" is not allowed when sharing another container's network namespace`},
		{key: "kernel.shmmax", hc: container.HostConfig{IpcMode: "host"}, err: `sysctl "kernel.shmmax" is not allowed in the host's ipc namespace`},
		{key: "fs.mqueue.msg_max", hc: container.HostConfig{IpcMode: "host"}, err: `sysctl "fs.mqueue.msg_max" is not allowed`},
		{key: "kernel.domainname", hc: container.HostConfig{UTSMode: "host"}, err: `sysctl "kernel.domainname" is not allowed in the host's uts namespace`},
		{key: "kernel.hostname", err: `sysctl "kernel.hostname" is not allowed`},
		{key: "vm.swappiness", err: `sysctl "vm.swappiness" is not allowed`},
		{key: "kernel.pid_max", err: `sysctl "kernel.pid_max" is not allowed`},
		{key: "net..x", err: `sysctl "net..x" is not a valid sysctl name`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s%s%s", tt.key, tt.hc.NetworkMode, tt.hc.IpcMode, tt.hc.UTSMode), func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig = &tt.hc
			in.HostConfig.Sysctls = map[string]string{tt.key: "1"}
			in.Joins = map[string]string{"network": "/proc/self/ns/net"}
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, s)
			if s.Linux.Sysctl[tt.key] != "1" {
				t.Errorf("sysctl = %v", s.Linux.Sysctl)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	in := baseInput(t)
	in.HostConfig.Devices = []container.DeviceMapping{
		{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"},
		{PathOnHost: "/dev/zero"},
	}
	in.HostConfig.DeviceCgroupRules = []string{"c 1:3 mr", "a *:* rwm", "b 8:* r"}
	s := mustGenerate(t, in, fakeHost())
	devs := s.Linux.Devices
	if len(devs) != 2 || devs[0].Path != "/dev/mynull" || devs[0].Type != "c" || devs[0].Major != 1 || devs[0].Minor != 3 ||
		devs[1].Path != "/dev/zero" || devs[1].Minor != 5 || devs[0].FileMode == nil || devs[0].UID == nil {
		t.Fatalf("devices = %+v", devs)
	}
	rules := s.Linux.Resources.Devices
	tail := rules[len(defaultDeviceRules()):]
	str := func(r specs.LinuxDeviceCgroup) string {
		n := func(p *int64) string {
			if p == nil {
				return "*"
			}
			return fmt.Sprint(*p)
		}
		return fmt.Sprintf("%v %s %s:%s %s", r.Allow, r.Type, n(r.Major), n(r.Minor), r.Access)
	}
	var got []string
	for _, r := range tail {
		got = append(got, str(r))
	}
	want := []string{"true c 1:3 rw", "true c 1:5 rwm", "true c 1:3 mr", "true a *:* rwm", "true b 8:* r"}
	if !slices.Equal(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}

	for _, tt := range []struct {
		dev  container.DeviceMapping
		rule string
		err  string
	}{
		{dev: container.DeviceMapping{PathOnHost: "/dev/nope"}, err: `error gathering device information while adding custom device "/dev/nope": no such file or directory`},
		{dev: container.DeviceMapping{PathOnHost: "/etc/hostname"}, err: `error gathering device information while adding custom device "/etc/hostname": not a device node`},
		{dev: container.DeviceMapping{PathOnHost: "/dev/null", CgroupPermissions: "rwx"}, err: "invalid device mode: rwx"},
		{rule: "c 1:3", err: "invalid device cgroup format 'c 1:3'"},
		{rule: "x 1:3 r", err: "invalid device cgroup format 'x 1:3 r'"},
		{rule: "c 1:-3 r", err: "invalid device cgroup format 'c 1:-3 r'"},
		{rule: "c 1:3 rwmr", err: "invalid device cgroup format 'c 1:3 rwmr'"},
	} {
		in := baseInput(t)
		if tt.dev.PathOnHost != "" {
			in.HostConfig.Devices = []container.DeviceMapping{tt.dev}
		}
		if tt.rule != "" {
			in.HostConfig.DeviceCgroupRules = []string{tt.rule}
		}
		_, err := generate(in, fakeHost())
		wantErr(t, err, tt.err)
	}
}

// A directory given to --device brings every node under it.
func TestDeviceDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a", "sub/b"} {
		if err := unix.Mknod(filepath.Join(dir, name), unix.S_IFCHR|0o600, int(unix.Mkdev(1, uint32(3+2*i)))); err != nil {
			t.Skipf("cannot make device nodes here (needs root and a dev-enabled filesystem): %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(t.TempDir(), "link")); err != nil {
		t.Fatal(err)
	}
	in := baseInput(t)
	in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: dir, PathInContainer: "/dev/mine", CgroupPermissions: "r"}}
	s := mustGenerate(t, in, fakeHost())
	var got []string
	for _, d := range s.Linux.Devices {
		got = append(got, fmt.Sprintf("%s %d:%d %o", d.Path, d.Major, d.Minor, *d.FileMode))
	}
	if want := []string{"/dev/mine/a 1:3 600", "/dev/mine/sub/b 1:5 600"}; !slices.Equal(got, want) {
		t.Errorf("devices = %q, want %q", got, want)
	}
}

func TestInit(t *testing.T) {
	in := baseInput(t)
	in.HostConfig.Init = ptrTo(true)
	in.InitBinary = "/usr/libexec/berth-init"
	in.Mounts = []Mount{{Type: "bind", Source: "/srv", Destination: "/srv"}}
	s := mustGenerate(t, in, fakeHost())
	if want := []string{InitPath, "--", "/bin/sh"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("args = %q, want %q", s.Process.Args, want)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != InitPath || last.Source != in.InitBinary || last.Type != "bind" || !slices.Equal(last.Options, []string{"bind", "ro"}) {
		t.Errorf("last mount = %+v", last)
	}

	in.InitBinary = ""
	_, err := generate(in, fakeHost())
	wantErr(t, err, "no init binary")

	in.HostConfig.Init = ptrTo(false)
	if s := mustGenerate(t, in, fakeHost()); s.Process.Args[0] != "/bin/sh" {
		t.Errorf("--init=false wraps: %q", s.Process.Args)
	}
}

func TestMounts(t *testing.T) {
	tests := []struct {
		name   string
		mounts []Mount
		tmpfs  map[string]string
		hc     container.HostConfig
		shm    string
		etc    bool
		want   []string // destination type source options, after the defaults unless full
		full   bool
		prop   string
		err    string
	}{
		{name: "bind, volume, tmpfs", mounts: []Mount{
			{Type: "bind", Source: "/srv/a", Destination: "/a", ReadOnly: true},
			{Type: "volume", Source: "/var/lib/berth/volumes/v/_data", Destination: "/data/"},
			{Type: "bind", Source: "/srv/b", Destination: "/b", NonRecursive: true, Propagation: "rslave"},
			{Type: "tmpfs", Destination: "/scratch", TmpfsSize: 64 << 20, TmpfsMode: 0o1770, Options: []string{"exec"}},
		}, want: []string{
			"/a bind /srv/a rbind,ro,rprivate",
			"/data bind /var/lib/berth/volumes/v/_data rbind,rprivate",
			"/b bind /srv/b bind,rslave",
			"/scratch tmpfs tmpfs nosuid,nodev,rprivate,size=64m,mode=1770,exec",
		}, prop: "rslave"},
		{name: "shared bind", mounts: []Mount{{Type: "bind", Source: "/mnt", Destination: "/mnt", Propagation: "rshared"}},
			want: []string{"/mnt bind /mnt rbind,rshared"}, prop: "shared"},
		{name: "tmpfs flag", tmpfs: map[string]string{"/run": "rw,exec,size=65536k", "/tmp": ""}, want: []string{
			"/run tmpfs tmpfs nosuid,nodev,rprivate,rw,exec,size=65536k",
			"/tmp tmpfs tmpfs noexec,nosuid,nodev,rprivate",
		}},
		{name: "parents first", mounts: []Mount{
			{Type: "bind", Source: "/s/3", Destination: "/x/y/z"},
			{Type: "bind", Source: "/s/2", Destination: "/x/y"},
			{Type: "bind", Source: "/s/1", Destination: "/x"},
			{Type: "bind", Source: "/s/4", Destination: "/w"},
		}, want: []string{
			"/x bind /s/1 rbind,rprivate",
			"/w bind /s/4 rbind,rprivate",
			"/x/y bind /s/2 rbind,rprivate",
			"/x/y/z bind /s/3 rbind,rprivate",
		}},
		{name: "user mount replaces a default", mounts: []Mount{{Type: "bind", Source: "/hostshm", Destination: "/dev/shm"}}, full: true, want: []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
			"/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
			"/sys sysfs sysfs nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup cgroup cgroup ro,nosuid,noexec,nodev",
			"/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
			"/dev/shm bind /hostshm rbind,rprivate",
		}},
		{name: "user /dev replaces /dev and below", mounts: []Mount{{Type: "bind", Source: "/dev", Destination: "/dev"}}, full: true, want: []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/sys sysfs sysfs nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup cgroup cgroup ro,nosuid,noexec,nodev",
			"/dev bind /dev rbind,rprivate",
		}},
		{name: "etc files", etc: true, mounts: []Mount{{Type: "bind", Source: "/my/hosts", Destination: "/etc/hosts"}}, want: []string{
			"/etc/hosts bind /my/hosts rbind,rprivate",
			"/etc/hostname bind /run/c/hostname rbind,rprivate",
			"/etc/resolv.conf bind /run/c/resolv.conf rbind,rprivate",
		}},
		{name: "etc files read-only with the rootfs", etc: true, hc: container.HostConfig{ReadonlyRootfs: true}, want: []string{
			"/etc/hostname bind /run/c/hostname rbind,ro,rprivate",
			"/etc/hosts bind /run/c/hosts rbind,ro,rprivate",
			"/etc/resolv.conf bind /run/c/resolv.conf rbind,ro,rprivate",
		}},
		{name: "ipc none", hc: container.HostConfig{IpcMode: "none"}, full: true, want: []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
			"/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
			"/sys sysfs sysfs nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup cgroup cgroup ro,nosuid,noexec,nodev",
			"/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
		}},
		{name: "ipc host", hc: container.HostConfig{IpcMode: "host"}, want: []string{"/dev/shm bind /dev/shm rbind,rprivate"}},
		{name: "ipc shareable", hc: container.HostConfig{IpcMode: "shareable"}, shm: "/run/berth/c/shm", want: []string{"/dev/shm bind /run/berth/c/shm rbind,rprivate"}},
		{name: "shm size", hc: container.HostConfig{ShmSize: 1 << 30}, want: []string{"/dev/shm tmpfs shm nosuid,noexec,nodev,mode=1777,size=1073741824"}},
		{name: "writable cgroups", hc: container.HostConfig{SecurityOpt: []string{"writable-cgroups=true"}}, full: true, want: []string{
			"/proc proc proc nosuid,noexec,nodev",
			"/dev tmpfs tmpfs nosuid,strictatime,mode=755,size=65536k",
			"/dev/pts devpts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
			"/sys sysfs sysfs nosuid,noexec,nodev,ro",
			"/sys/fs/cgroup cgroup cgroup nosuid,noexec,nodev",
			"/dev/mqueue mqueue mqueue nosuid,noexec,nodev",
			"/dev/shm tmpfs shm nosuid,noexec,nodev,mode=1777,size=67108864",
		}},
		{name: "duplicate", mounts: []Mount{{Type: "bind", Source: "/a", Destination: "/x"}}, tmpfs: map[string]string{"/x": ""}, err: "Duplicate mount point: /x"},
		{name: "relative destination", mounts: []Mount{{Type: "bind", Source: "/a", Destination: "x"}}, err: "mount path must be absolute"},
		{name: "relative tmpfs", tmpfs: map[string]string{"x": ""}, err: "mount path must be absolute"},
		{name: "bad tmpfs option", tmpfs: map[string]string{"/x": "bogus"}, err: `invalid tmpfs option "bogus"`},
		{name: "bad propagation", mounts: []Mount{{Type: "bind", Source: "/a", Destination: "/x", Propagation: "weird"}}, err: "invalid propagation mode: weird"},
		{name: "bad type", mounts: []Mount{{Type: "npipe", Source: "/a", Destination: "/x"}}, err: `mount type "npipe" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig = &tt.hc
			in.HostConfig.Tmpfs = tt.tmpfs
			in.Mounts = tt.mounts
			in.ShmPath = tt.shm
			if tt.etc {
				in.HostnamePath, in.HostsPath, in.ResolvConfPath = "/run/c/hostname", "/run/c/hosts", "/run/c/resolv.conf"
			}
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLoads(t, s)
			var got []string
			for _, m := range s.Mounts {
				got = append(got, strings.Join([]string{m.Destination, m.Type, m.Source, strings.Join(m.Options, ",")}, " "))
			}
			if !tt.full {
				var defaults []string
				for _, d := range defaultMounts(mountPlan{}) {
					defaults = append(defaults, strings.Join([]string{d.Destination, d.Type, d.Source, strings.Join(d.Options, ",")}, " "))
				}
				got = slices.DeleteFunc(got, func(m string) bool { return slices.Contains(defaults, m) })
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("mounts =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if s.Linux.RootfsPropagation != tt.prop {
				t.Errorf("rootfsPropagation = %q, want %q", s.Linux.RootfsPropagation, tt.prop)
			}
		})
	}
}

func TestMaskedPathsFromHostConfig(t *testing.T) {
	in := baseInput(t)
	in.HostConfig.MaskedPaths = []string{"/proc/x"}
	in.HostConfig.ReadonlyPaths = []string{}
	s := mustGenerate(t, in, fakeHost())
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/x"}) || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestInputChecks(t *testing.T) {
	in := baseInput(t)
	in.Rootfs = "relative"
	_, err := generate(in, fakeHost())
	wantErr(t, err, "not an absolute path")

	// nil Config and HostConfig mean no options.
	in = baseInput(t)
	in.Config, in.HostConfig = nil, nil
	if s := mustGenerate(t, in, fakeHost()); s.Process.Args[0] != "/bin/sh" {
		t.Errorf("args = %q", s.Process.Args)
	}
}

// Generate on this host: the real host facts work and the result loads.
func TestGenerateOnThisHost(t *testing.T) {
	s, err := Generate(baseInput(t))
	if err != nil {
		t.Fatal(err)
	}
	checkLoads(t, s)
}
