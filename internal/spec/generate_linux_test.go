package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/linux/caps"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestDefaults(t *testing.T) {
	in := baseInput(t)
	s := mustGenerate(t, in, fakeHost())

	if got, want := s.Process.Args, []string{"/bin/sh"}; !slices.Equal(got, want) {
		t.Errorf("args = %q, want %q", got, want)
	}
	wantEnv := []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"}
	if !slices.Equal(s.Process.Env, wantEnv) {
		t.Errorf("env = %q, want %q", s.Process.Env, wantEnv)
	}
	if s.Process.Cwd != "/" || s.Process.Terminal || s.Process.NoNewPrivileges {
		t.Errorf("cwd %q terminal %v noNewPrivileges %v, want / false false", s.Process.Cwd, s.Process.Terminal, s.Process.NoNewPrivileges)
	}
	if u := s.Process.User; u.UID != 0 || u.GID != 0 || !slices.Equal(u.AdditionalGids, []uint32{10}) {
		t.Errorf("user = %+v, want 0:0 with group 10 (root is in wheel)", u)
	}
	c := s.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !slices.Equal(set, DefaultCapabilities()) {
			t.Errorf("%s = %q, want docker's defaults", name, set)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %q ambient %q, want none", c.Inheritable, c.Ambient)
	}
	if len(DefaultCapabilities()) != 14 {
		t.Errorf("docker has 14 default capabilities, got %d", len(DefaultCapabilities()))
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 0 {
		t.Errorf("oomScoreAdj = %v, want 0", s.Process.OOMScoreAdj)
	}

	wantMounts := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}
	if got := mountDests(s.Mounts); !slices.Equal(got, wantMounts) {
		t.Errorf("mounts = %q, want %q", got, wantMounts)
	}
	if m := findMount(s.Mounts, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=67108864") {
		t.Errorf("/dev/shm = %+v, want a 64 MiB tmpfs", m)
	}
	if m := findMount(s.Mounts, "/sys"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys options %q, want ro", m.Options)
	}
	if m := findMount(s.Mounts, "/sys/fs/cgroup"); !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys/fs/cgroup options %q, want ro", m.Options)
	}
	if m := findMount(s.Mounts, "/dev/pts"); !slices.Equal(m.Options, []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}) {
		t.Errorf("/dev/pts options %q", m.Options)
	}

	if s.Root.Path != in.Rootfs || s.Root.Readonly {
		t.Errorf("root = %+v", s.Root)
	}
	if s.Hostname != "0123456789ab" || s.Domainname != "" {
		t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
	}
	if got, want := nsTypes(s.Linux.Namespaces), []string{"mount", "network", "uts", "pid", "ipc"}; !slices.Equal(got, want) {
		t.Errorf("namespaces = %q, want %q (cgroup v1: the host's cgroup namespace)", got, want)
	}
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths()) || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if len(s.Linux.MaskedPaths) != 12 || len(s.Linux.ReadonlyPaths) != 5 {
		t.Errorf("docker masks 12 paths and makes 5 read-only; got %d and %d", len(s.Linux.MaskedPaths), len(s.Linux.ReadonlyPaths))
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("seccomp is not docker's default profile")
	}
	if s.Linux.CgroupsPath != in.CgroupsPath {
		t.Errorf("cgroupsPath = %q", s.Linux.CgroupsPath)
	}
	devs := s.Linux.Resources.Devices
	if len(devs) == 0 || devs[0].Allow || devs[0].Access != "rwm" || devs[0].Type != "" {
		t.Fatalf("first device rule %+v, want deny all", devs)
	}
	allowed := func(major, minor int64) bool {
		for _, d := range devs {
			if d.Allow && d.Type == "c" && d.Major != nil && *d.Major == major && (d.Minor == nil || *d.Minor == minor) {
				return true
			}
		}
		return false
	}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, 3}} {
		if !allowed(d[0], d[1]) {
			t.Errorf("device c %d:%d is not allowed", d[0], d[1])
		}
	}
	if allowed(10, 229) {
		t.Errorf("/dev/fuse is allowed by default")
	}
	if len(s.Linux.Devices) != 0 || s.Linux.Sysctl != nil || s.Linux.Resources.Memory != nil || s.Linux.Resources.CPU != nil {
		t.Errorf("unasked-for devices, sysctls or limits: %+v", s.Linux)
	}
}

// TestGolden compares the whole config.json of a container with many
// options set against testdata (seccomp left out: it depends on the
// kernel). Run with -update to rewrite it.
func TestGolden(t *testing.T) {
	in := baseInput(t)
	in.Rootfs = "/var/lib/berth/rootfs"
	in.Image.Entrypoint = []string{"/docker-entrypoint.sh"}
	in.Image.Cmd = []string{"nginx", "-g", "daemon off;"}
	in.Image.Env = append(in.Image.Env, "NGINX_VERSION=1.27")
	in.Image.WorkingDir = "/srv"
	init := true
	pids := int64(100)
	in.Config = &container.Config{Tty: true, Env: []string{"A=1"}, Hostname: "web", Domainname: "example.com"}
	in.HostConfig = &container.HostConfig{
		CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"MKNOD"},
		Init: &init, ShmSize: 128 << 20, ReadonlyRootfs: true,
		Tmpfs:   map[string]string{"/run": "size=65536k"},
		Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
		Resources: container.Resources{
			Memory: 256 << 20, NanoCPUs: 1500000000, PidsLimit: &pids,
			Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
		},
		Annotations: map[string]string{"org.example": "yes"},
	}
	in.Mounts = []Mount{
		{Type: "volume", Source: "/var/lib/berth/volumes/data/_data", Destination: "/data"},
		{Type: "bind", Source: "/srv/conf", Destination: "/etc/nginx/conf.d", ReadOnly: true},
	}
	in.InitBinary = "/usr/libexec/berth/berth-init"
	in.HostnamePath, in.HostsPath, in.ResolvConfPath = "/run/berth/c/hostname", "/run/berth/c/hosts", "/run/berth/c/resolv.conf"
	rootfs := baseInput(t).Rootfs
	// Read passwd from a real rootfs but record a fixed path in the golden file.
	in2 := in
	in2.Rootfs = rootfs
	s, err := generate(in2, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	s.Root.Path = in.Rootfs
	s.Linux.Seccomp = nil
	got, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "nginx.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("config.json differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func TestCommand(t *testing.T) {
	img := &image.RunConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	tests := []struct {
		name       string
		img        *image.RunConfig
		entrypoint []string
		cmd        []string
		want       []string
		err        string
	}{
		{name: "image", img: img, want: []string{"/entry", "default"}},
		{name: "cmd replaces the image's", img: img, cmd: []string{"other"}, want: []string{"/entry", "other"}},
		{name: "entrypoint drops the image's cmd", img: img, entrypoint: []string{"/bin/sh"}, want: []string{"/bin/sh"}},
		{name: "entrypoint and cmd", img: img, entrypoint: []string{"/bin/sh"}, cmd: []string{"-c", "true"}, want: []string{"/bin/sh", "-c", "true"}},
		{name: "empty entrypoint keeps the image's cmd", img: img, entrypoint: []string{}, want: []string{"default"}},
		{name: "empty entrypoint with cmd", img: img, entrypoint: []string{}, cmd: []string{"ls"}, want: []string{"ls"}},
		{name: "no image", cmd: []string{"ls"}, want: []string{"ls"}},
		{name: "nothing", img: &image.RunConfig{}, err: "no command specified"},
		{name: "empty entrypoint, no cmd", img: &image.RunConfig{Entrypoint: []string{"/e"}}, entrypoint: []string{}, err: "no command specified"},
		{name: `--entrypoint "" with cmd`, img: img, entrypoint: []string{""}, cmd: []string{"ls"}, want: []string{"ls"}},
		{name: `--entrypoint "" drops the image's cmd`, img: img, entrypoint: []string{""}, err: "no command specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image = tt.img
			in.Config.Entrypoint, in.Config.Cmd = tt.entrypoint, tt.cmd
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				if !errdefs.Is(err, errdefs.KindInvalidArgument) {
					t.Errorf("error kind %v, want invalid argument", errdefs.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		imgEnv   []string
		userEnv  []string
		tty      bool
		hostname string
		want     []string
	}{
		{name: "no PATH anywhere", want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"}},
		{name: "image PATH replaces the default in place", imgEnv: []string{"PATH=/opt/bin", "LANG=C"},
			want: []string{"PATH=/opt/bin", "HOSTNAME=0123456789ab", "LANG=C", "HOME=/root"}},
		{name: "user before image", imgEnv: []string{"LANG=C", "X=image"}, userEnv: []string{"X=user", "A=1"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "X=user", "A=1", "LANG=C", "HOME=/root"}},
		{name: "bare name unsets", imgEnv: []string{"LANG=C"}, userEnv: []string{"LANG", "PATH"},
			want: []string{"HOSTNAME=0123456789ab", "HOME=/root"}},
		{name: "tty", tty: true, want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "TERM=xterm", "HOME=/root"}},
		{name: "user TERM and HOME", tty: true, userEnv: []string{"TERM=dumb", "HOME=/x"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "TERM=dumb", "HOME=/x"}},
		{name: "hostname", hostname: "box", want: []string{"PATH=" + DefaultPath, "HOSTNAME=box", "HOME=/root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.Image.Env = tt.imgEnv
			in.Config.Env, in.Config.Tty, in.Config.Hostname = tt.userEnv, tt.tty, tt.hostname
			s := mustGenerate(t, in, fakeHost())
			if !slices.Equal(s.Process.Env, tt.want) {
				t.Errorf("env = %q, want %q", s.Process.Env, tt.want)
			}
			if s.Process.Terminal != tt.tty {
				t.Errorf("terminal = %v", s.Process.Terminal)
			}
		})
	}
}

func TestWorkingDir(t *testing.T) {
	in := baseInput(t)
	in.Image.WorkingDir = "/srv"
	if s := mustGenerate(t, in, fakeHost()); s.Process.Cwd != "/srv" {
		t.Errorf("cwd = %q, want the image's /srv", s.Process.Cwd)
	}
	in.Config.WorkingDir = "/work/../tmp/"
	if s := mustGenerate(t, in, fakeHost()); s.Process.Cwd != "/tmp" {
		t.Errorf("cwd = %q, want the user's, cleaned", s.Process.Cwd)
	}
	in.Config.WorkingDir = "rel"
	_, err := generate(in, fakeHost())
	wantErr(t, err, "the working directory 'rel' is invalid, it needs to be an absolute path")
}

func TestUser(t *testing.T) {
	tests := []struct {
		user     string
		imgUser  string
		groupAdd []string
		uid, gid uint32
		groups   []uint32
		home     string
		err      string
	}{
		{user: "", uid: 0, gid: 0, groups: []uint32{10}, home: "/root"},
		{user: "app", uid: 1000, gid: 1000, groups: []uint32{10, 29}, home: "/home/app"},
		{user: "1000", uid: 1000, gid: 1000, groups: []uint32{10, 29}, home: "/home/app"},
		{imgUser: "app", uid: 1000, gid: 1000, groups: []uint32{10, 29}, home: "/home/app"},
		{user: "daemon", imgUser: "app", uid: 1, gid: 1, home: "/usr/sbin"},
		{user: "app:audio", uid: 1000, gid: 29, home: "/home/app"},
		{user: "app:29", uid: 1000, gid: 29, home: "/home/app"},
		{user: "app:5000", uid: 1000, gid: 5000, home: "/home/app"},
		{user: "4242", uid: 4242, gid: 0, home: "/"},
		{user: "4242:4343", uid: 4242, gid: 4343, home: "/"},
		{user: "app", groupAdd: []string{"audio", "777", "root"}, uid: 1000, gid: 1000, groups: []uint32{10, 29, 777, 0}, home: "/home/app"},
		{user: "nobody", err: "unable to find user nobody: no matching entries in passwd file"},
		{user: "broken", err: "unable to find user broken: no matching entries in passwd file"},
		{user: "app:nogroup", err: "unable to find group nogroup: no matching entries in group file"},
		{user: "app", groupAdd: []string{"nogroup"}, err: "unable to find group nogroup: no matching entries in group file"},
		{user: "4294967296", err: "uids and gids must be in range 0-2147483647"},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.imgUser, func(t *testing.T) {
			in := baseInput(t)
			in.Config.User, in.Image.User, in.HostConfig.GroupAdd = tt.user, tt.imgUser, tt.groupAdd
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := s.Process.User
			if u.UID != tt.uid || u.GID != tt.gid || !slices.Equal(u.AdditionalGids, tt.groups) {
				t.Errorf("user = %d:%d %v, want %d:%d %v", u.UID, u.GID, u.AdditionalGids, tt.uid, tt.gid, tt.groups)
			}
			if !slices.Contains(s.Process.Env, "HOME="+tt.home) {
				t.Errorf("env %q lacks HOME=%s", s.Process.Env, tt.home)
			}
		})
	}
}

func TestUserWithoutFiles(t *testing.T) {
	in := baseInput(t)
	in.Rootfs = newRootfs(t, nil)
	in.Config.User = "123:456"
	s := mustGenerate(t, in, fakeHost())
	if u := s.Process.User; u.UID != 123 || u.GID != 456 || !slices.Contains(s.Process.Env, "HOME=/") {
		t.Errorf("user %+v env %q", u, s.Process.Env)
	}
	in.Config.User = "root"
	_, err := generate(in, fakeHost())
	wantErr(t, err, "unable to find user root: no matching entries in passwd file")
}

// A rootfs's /etc/passwd that links out of the rootfs must be resolved
// inside it: the host's file is never read.
func TestUserSymlinkStaysInRootfs(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "host-passwd")
	if err := os.WriteFile(outside, []byte("evil:x:0:0::/evil:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/../../../../../../.." + outside, "../../../../../../../.." + outside} {
		t.Run(target, func(t *testing.T) {
			in := baseInput(t)
			in.Rootfs = newRootfs(t, nil)
			if err := os.MkdirAll(filepath.Join(in.Rootfs, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(in.Rootfs, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			in.Config.User = "evil"
			_, err := generate(in, fakeHost())
			wantErr(t, err, "unable to find user evil")
		})
	}
	// A link that stays inside the rootfs is followed.
	in := baseInput(t)
	if err := os.Rename(filepath.Join(in.Rootfs, "etc", "passwd"), filepath.Join(in.Rootfs, "passwd.real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/../passwd.real", filepath.Join(in.Rootfs, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	in.Config.User = "app"
	if s := mustGenerate(t, in, fakeHost()); s.Process.User.UID != 1000 {
		t.Errorf("uid = %d, want 1000 from the linked file", s.Process.User.UID)
	}
}

func TestUserFileNotRegular(t *testing.T) {
	in := baseInput(t)
	in.Rootfs = newRootfs(t, nil)
	if err := os.MkdirAll(filepath.Join(in.Rootfs, "etc", "passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := generate(in, fakeHost())
	wantErr(t, err, "/etc/passwd")
}

func TestCapabilities(t *testing.T) {
	without := func(drop ...string) []string {
		var out []string
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
		return out
	}
	all := allCapabilities(fakeHost().availableCaps())
	tests := []struct {
		name      string
		add, drop []string
		want      []string
		err       string
	}{
		{name: "add", add: []string{"NET_ADMIN"}, want: append(DefaultCapabilities(), "CAP_NET_ADMIN")},
		{name: "add any case and prefix", add: []string{"cap_sys_admin", "Sys_Ptrace"}, want: append(DefaultCapabilities(), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")},
		{name: "add a default", add: []string{"CHOWN"}, want: DefaultCapabilities()},
		{name: "drop", drop: []string{"chown", "CAP_NET_RAW"}, want: without("CAP_CHOWN", "CAP_NET_RAW")},
		{name: "drop all, add one", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop all", drop: []string{"all"}, want: []string{}},
		{name: "add all, drop one", add: []string{"ALL"}, drop: []string{"MKNOD"}, want: slices.DeleteFunc(slices.Clone(all), func(c string) bool { return c == "CAP_MKNOD" })},
		{name: "unknown add", add: []string{"FOO"}, err: `unknown capability: "CAP_FOO"`},
		{name: "unknown drop", drop: []string{"CAP_BAR"}, err: `unknown capability: "CAP_BAR"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.CapAdd, in.HostConfig.CapDrop = tt.add, tt.drop
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := s.Process.Capabilities
			if !slices.Equal(c.Bounding, tt.want) || !slices.Equal(c.Effective, tt.want) || !slices.Equal(c.Permitted, tt.want) {
				t.Errorf("caps = %q, want %q", c.Bounding, tt.want)
			}
			checkLoads(t, s)
		})
	}
	// A non-root user gets the same sets; the kernel drops the effective
	// and permitted ones at exec, as with docker and runc.
	in := baseInput(t)
	in.Config.User = "app"
	if s := mustGenerate(t, in, fakeHost()); !slices.Equal(s.Process.Capabilities.Effective, DefaultCapabilities()) || len(s.Process.Capabilities.Ambient) != 0 {
		t.Errorf("non-root caps = %+v", s.Process.Capabilities)
	}
}

func TestPrivileged(t *testing.T) {
	in := baseInput(t)
	in.HostConfig.Privileged = true
	in.HostConfig.CapDrop = []string{"CHOWN"} // ignored, as docker does
	s := mustGenerate(t, in, fakeHost())
	if got := s.Process.Capabilities.Bounding; len(got) != int(fakeHost().lastCap())+1 || !slices.Contains(got, "CAP_CHOWN") {
		t.Errorf("privileged caps = %q, want all", got)
	}
	// Where berth itself lacks one (CAP_SYS_RESOURCE = 24, here), all is
	// all but that one: asking for it would make capset fail.
	h := fakeHost()
	h.bounding = func() caps.Set { return caps.All(caps.MaxKnown).Without(24) }
	if got := mustGenerate(t, in, h).Process.Capabilities.Permitted; len(got) != int(caps.MaxKnown) || slices.Contains(got, "CAP_SYS_RESOURCE") {
		t.Errorf("privileged caps without CAP_SYS_RESOURCE in the bounding set = %q", got)
	}
	if s.Linux.Seccomp != nil {
		t.Errorf("privileged has a seccomp profile")
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged has masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, dest := range []string{"/sys", "/sys/fs/cgroup"} {
		if m := findMount(s.Mounts, dest); slices.Contains(m.Options, "ro") {
			t.Errorf("%s is read-only: %q", dest, m.Options)
		}
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" || d[0].Type != "" {
		t.Errorf("device rules = %+v, want allow all", d)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	if !slices.Contains(paths, "/dev/null") {
		t.Errorf("devices %q lack /dev/null", paths)
	}
	for _, p := range paths {
		if p == "/dev/console" || p == "/dev/ptmx" || filepath.Dir(p) == "/dev/pts" {
			t.Errorf("devices include %s", p)
		}
	}
}

func TestSecurityOpts(t *testing.T) {
	tests := []struct {
		opts    []string
		nnp     bool
		seccomp bool
		masked  bool
		err     string
	}{
		{opts: nil, seccomp: true, masked: true},
		{opts: []string{"no-new-privileges"}, nnp: true, seccomp: true, masked: true},
		{opts: []string{"no-new-privileges:true"}, nnp: true, seccomp: true, masked: true},
		{opts: []string{"no-new-privileges=false"}, seccomp: true, masked: true},
		{opts: []string{"apparmor=unconfined", "label=disable"}, seccomp: true, masked: true},
		{opts: []string{"seccomp=unconfined"}, masked: true},
		{opts: []string{"seccomp:unconfined"}, masked: true},
		{opts: []string{"seccomp=builtin"}, seccomp: true, masked: true},
		{opts: []string{"systempaths=unconfined"}, seccomp: true},
		{opts: []string{"no-new-privileges=maybe"}, err: `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{opts: []string{"bogus"}, err: `invalid --security-opt 1: "bogus"`},
		{opts: []string{"foo=bar"}, err: `invalid --security-opt 2: "foo=bar"`},
		{opts: []string{"seccomp=/nonexistent/profile.json"}, err: "opening seccomp profile (/nonexistent/profile.json) failed"},
		{opts: []string{"seccomp={not json"}, err: "seccomp profile"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.opts), func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.SecurityOpt = tt.opts
			s, err := generate(in, fakeHost())
			if tt.err != "" {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Process.NoNewPrivileges != tt.nnp || (s.Linux.Seccomp != nil) != tt.seccomp || (s.Linux.MaskedPaths != nil) != tt.masked || (s.Linux.ReadonlyPaths != nil) != tt.masked {
				t.Errorf("noNewPrivileges %v seccomp %v masked %q readonly %q", s.Process.NoNewPrivileges, s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
			}
		})
	}
}

const testProfile = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
  ],
  "syscalls": [
    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["chown"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}}
  ]
}`

func TestSeccompProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(file, []byte(testProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	names := func(s *specs.LinuxSeccomp) []string {
		var out []string
		for _, sc := range s.Syscalls {
			out = append(out, sc.Names...)
		}
		return out
	}
	tests := []struct {
		name   string
		opt    string
		capAdd []string
		want   []string
	}{
		{name: "file", opt: "seccomp=" + file, want: []string{"read", "write"}},
		{name: "old separator", opt: "seccomp:" + file, want: []string{"read", "write"}},
		{name: "inline, as the API sends it", opt: "seccomp=" + testProfile, want: []string{"read", "write"}},
		{name: "included by a capability", opt: "seccomp=" + file, capAdd: []string{"SYS_ADMIN"}, want: []string{"read", "write", "mount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(t)
			in.HostConfig.SecurityOpt = []string{tt.opt}
			in.HostConfig.CapAdd = tt.capAdd
			s := mustGenerate(t, in, fakeHost())
			p := s.Linux.Seccomp
			if p == nil {
				t.Fatal("no seccomp profile")
			}
			if got := names(p); !slices.Equal(got, tt.want) {
				t.Errorf("syscalls = %q, want %q", got, tt.want)
			}
			if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
				t.Errorf("default action %q errno %v", p.DefaultAction, p.DefaultErrnoRet)
			}
			switch goruntime.GOARCH {
			case "amd64":
				if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(p.Architectures, want) {
					t.Errorf("architectures = %q, want %q", p.Architectures, want)
				}
			case "arm64":
				if want := []specs.Arch{specs.ArchAARCH64, specs.ArchARM}; !slices.Equal(p.Architectures, want) {
					t.Errorf("architectures = %q, want %q", p.Architectures, want)
				}
			}
		})
	}
	// The default profile follows the capabilities too.
	in := baseInput(t)
	in.HostConfig.CapAdd = []string{"SYS_ADMIN"}
	s := mustGenerate(t, in, fakeHost())
	base := mustGenerate(t, baseInput(t), fakeHost())
	has := func(s *specs.LinuxSeccomp, name string) bool { return slices.Contains(names(s), name) }
	if !has(s.Linux.Seccomp, "mount") || has(base.Linux.Seccomp, "mount") {
		t.Errorf("default profile: mount allowed with SYS_ADMIN %v, without %v; want true, false", has(s.Linux.Seccomp, "mount"), has(base.Linux.Seccomp, "mount"))
	}
}
