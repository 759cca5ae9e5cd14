package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/seccomp"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func setCaps(spec *specs.Spec, caps []string) {
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
}

func withCap(caps []string, extra string) []string {
	return append(append([]string{}, caps...), extra)
}

// runSh runs `sh -c script` in a fresh container whose spec edit changed,
// and returns the result.
func (r *runtimeEnv) runSh(script string, edit func(*specs.Spec)) result {
	r.t.Helper()
	id := r.newID()
	b := r.bundle(id, "sh", "-c", script)
	if edit != nil {
		edit(b.Spec)
	}
	b.Save(r.t)
	return r.run(b, id)
}

func TestRuntimeSeccompDefaultProfileBlocksUnshareAndMount(t *testing.T) {
	r := newRuntimeEnv(t)
	const script = `unshare -n true && echo unshare=ok; mkdir -p /tmp/m && mount -t tmpfs tmpfs /tmp/m && echo mount=ok; true`
	// CAP_SYS_ADMIN is granted, so capabilities allow both; the profile is
	// made for Docker's default set (without it), so seccomp refuses them.
	caps := withCap(dockerCaps, "CAP_SYS_ADMIN")
	profile, err := seccomp.DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	writableTmp := func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	}

	control := r.runSh(script, func(s *specs.Spec) { setCaps(s, caps); writableTmp(s) })
	if !strings.Contains(control.stdout, "unshare=ok") || !strings.Contains(control.stdout, "mount=ok") {
		t.Fatalf("without seccomp, unshare and mount should work with CAP_SYS_ADMIN: stdout %q stderr %q", control.stdout, control.stderr)
	}

	res := r.runSh(script, func(s *specs.Spec) {
		setCaps(s, caps)
		writableTmp(s)
		s.Linux.Seccomp = profile
	})
	if res.code != 0 || strings.Contains(res.stdout, "=ok") {
		t.Fatalf("with the default profile: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	// busybox mount words EPERM as "permission denied (are you root?)".
	for _, want := range []string{"unshare(0x40000000): Operation not permitted", "mount: permission denied"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("want %q in stderr %q", want, res.stderr)
		}
	}
}

func TestRuntimeSeccompCustomProfile(t *testing.T) {
	r := newRuntimeEnv(t)
	eacces := uint(unix.EACCES)
	for _, nnp := range []bool{true, false} {
		res := r.runSh(`mkdir /tmp/d && echo mkdir=ok; touch /tmp/f && echo touch=ok; grep Seccomp: /proc/self/status`, func(s *specs.Spec) {
			s.Process.NoNewPrivileges = nnp
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"mode=1777"}})
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces},
				},
			}
		})
		if res.stdout != "touch=ok\nSeccomp:\t2\n" || !strings.Contains(res.stderr, "Permission denied") {
			t.Errorf("noNewPrivileges %v: stdout %q stderr %q, want mkdir refused with EACCES", nnp, res.stdout, res.stderr)
		}
	}
}

func TestRuntimeDroppedNetAdmin(t *testing.T) {
	r := newRuntimeEnv(t)
	// The permission check comes before the link type lookup, so the
	// result does not depend on the dummy module.
	const script = `ip link add dummy0 type dummy; ip link set lo up && echo lo=up`
	res := r.runSh(script, func(s *specs.Spec) { setCaps(s, dockerCaps) })
	if strings.Contains(res.stdout, "lo=up") || strings.Count(res.stderr, "Operation not permitted") != 2 {
		t.Fatalf("without CAP_NET_ADMIN: stdout %q stderr %q, want two EPERM failures", res.stdout, res.stderr)
	}
	res = r.runSh(script, func(s *specs.Spec) { setCaps(s, withCap(dockerCaps, "CAP_NET_ADMIN")) })
	if !strings.Contains(res.stdout, "lo=up") || strings.Contains(res.stderr, "Operation not permitted") {
		t.Fatalf("with CAP_NET_ADMIN: stdout %q stderr %q", res.stdout, res.stderr)
	}
}

func TestRuntimeMaskedPaths(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", `for f in /proc/timer_list /proc/keys /etc/secret; do echo "$f=$(wc -c < $f)"; done; echo dir=$(ls /etc/secrets | wc -l)`)
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "etc/secret"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.Rootfs(), "etc/secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "etc/secrets/key"), []byte("key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Spec.Linux.MaskedPaths = append(b.Spec.Linux.MaskedPaths, "/etc/secret", "/etc/secrets")
	b.Save(t)
	res := r.run(b, id)
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	for _, want := range []string{"/proc/timer_list=0", "/proc/keys=0", "/etc/secret=0", "dir=0"} {
		if !strings.Contains(res.stdout, want+"\n") {
			t.Errorf("want %s in %q", want, res.stdout)
		}
	}
}

func TestRuntimeReadonlyRootAndPaths(t *testing.T) {
	r := newRuntimeEnv(t)
	const script = `touch /newfile && echo root=rw; echo 1 > /proc/sys/net/ipv4/ip_forward && echo procsys=rw; touch /data/x && echo data=rw; touch /tmp/x && echo tmp=rw; true`
	edit := func(readonlyRoot bool) func(*specs.Spec) {
		return func(s *specs.Spec) {
			s.Root.Readonly = readonlyRoot
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/data")
		}
	}
	res := r.runSh(script, edit(true))
	if res.stdout != "tmp=rw\n" {
		t.Errorf("read-only root: stdout %q stderr %q, want only /tmp writable", res.stdout, res.stderr)
	}
	if n := strings.Count(res.stderr, "Read-only file system"); n != 3 {
		t.Errorf("want 3 EROFS errors, stderr %q", res.stderr)
	}

	res = r.runSh(script, edit(false))
	if res.stdout != "root=rw\ntmp=rw\n" {
		t.Errorf("writable root: stdout %q stderr %q", res.stdout, res.stderr)
	}
}

func TestRuntimeNoNewPrivileges(t *testing.T) {
	r := newRuntimeEnv(t)
	for _, nnp := range []bool{true, false} {
		res := r.runSh(`grep NoNewPrivs /proc/self/status`, func(s *specs.Spec) { s.Process.NoNewPrivileges = nnp })
		want := "NoNewPrivs:\t0"
		if nnp {
			want = "NoNewPrivs:\t1"
		}
		if strings.TrimSpace(res.stdout) != want {
			t.Errorf("noNewPrivileges %v: %q (stderr %q)", nnp, res.stdout, res.stderr)
		}
	}
}

func TestRuntimeProcessSettings(t *testing.T) {
	r := newRuntimeEnv(t)
	umask := uint32(0o027)
	res := r.runSh(`id -u; id -g; id -G; umask; pwd; echo "$FOO"; ulimit -Sn; ulimit -Hn; grep -E '^Cap(Eff|Bnd)' /proc/self/status`, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}, Umask: &umask}
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
		// A non-root program keeps only ambient capabilities across execve.
		kill := []string{"CAP_KILL"}
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding: withCap(kill, "CAP_CHOWN"), Effective: kill, Permitted: kill, Inheritable: kill, Ambient: kill,
		}
	})
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	want := []string{"1000", "1001", "1001 10 20", "0027", "/tmp", "bar baz", "100", "200",
		"CapEff:\t0000000000000020", "CapBnd:\t0000000000000021"}
	got := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("inside the container:\n got %q\nwant %q", got, want)
	}
}

func TestRuntimeRlimitAboveHardLimit(t *testing.T) {
	r := newRuntimeEnv(t)
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	hard := cur.Max + 1
	res := r.runSh(`ulimit -Hn`, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: hard}}
	})
	if hasCap(t, unix.CAP_SYS_RESOURCE) {
		if res.code != 0 || strings.TrimSpace(res.stdout) != strconv.FormatUint(hard, 10) {
			t.Fatalf("raising the hard limit with CAP_SYS_RESOURCE: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
		}
		return
	}
	if res.code == 0 || !strings.Contains(res.stderr, "process.rlimits") || !strings.Contains(res.stderr, "RLIMIT_NOFILE") ||
		strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 {
		t.Fatalf("raising the hard limit without CAP_SYS_RESOURCE: code %d stderr %q, want one line naming process.rlimits", res.code, res.stderr)
	}
}

// hasCap reports whether this process has capability c in its effective set.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:\t"); ok {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n&(1<<c) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}
