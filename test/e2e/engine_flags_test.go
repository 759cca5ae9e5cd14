package e2e

// docker run's flags, checked from inside the container where the
// container can see them: environment and image config, resources in the
// cgroup files, security settings in /proc/self/status, namespaces,
// --init and the stop settings, restart policies.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// forT is e for subtest t: its failures end t, not the parent.
func (e *engineEnv) forT(t *testing.T) *engineEnv {
	ie := *e.imageEnv
	ie.t = t
	c := *e
	c.imageEnv = &ie
	return &c
}

// removeAtEnd removes containers names when e's test ends, so that one
// failed subtest leaves nothing for the next to trip on.
func (e *engineEnv) removeAtEnd(names ...string) {
	e.t.Cleanup(func() { e.berth(append([]string{"rm", "-f", "-v"}, names...)...) })
}

// command is the exec.Cmd of `berth ARGS...` against e's root, with the
// environment e.berth gives it, for tests that must signal the CLI.
func (e *engineEnv) command(args ...string) *exec.Cmd {
	full := append([]string{"--root", e.root, "--runroot", e.runRoot}, e.flags...)
	cmd := exec.Command(e.bin, append(full, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_CONFIG="+e.root+"-config", "DOCKER_CONFIG="+e.root+"-docker-config")
	if e.cgroupParent != "" {
		cmd.Env = append(cmd.Env, "BERTH_CGROUP_PARENT="+e.cgroupParent)
	}
	cmd.Env = append(cmd.Env, e.extraEnv...)
	return cmd
}

// importImage imports a busybox root filesystem as name with the
// given --change instructions.
func (e *engineEnv) importImage(tar, name string, changes ...string) {
	e.t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	e.must(append(args, tar, name)...)
}

// statusField is the value of one "Key:\tvalue" line of a
// /proc/PID/status text.
func statusField(status, key string) string {
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitUntil polls cond every 20 ms for up to d.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Environment, working directory, user, entrypoint, hostname, labels and
// the image's config.
func TestEngineRunConfig(t *testing.T) {
	e := newEngineEnv(t)
	tar := busyboxTar(t)
	e.importImage(tar, "cfg", "ENV A=1", "WORKDIR /srv", `CMD ["sh","-c","echo $A"]`)
	e.importImage(tar, "ep", `ENTRYPOINT ["echo","ep"]`, `CMD ["default"]`)

	t.Run("env", func(t *testing.T) {
		e := e.forT(t)
		got := e.run("-e", "FOO=bar", "-e", "EMPTY=", "bb", "sh", "-c", `echo "$FOO|${EMPTY-unset}|$PATH|$HOME"`)
		if want := "bar||/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/root\n"; got != want {
			t.Errorf("-e: got %q, want %q", got, want)
		}
		// A bare NAME takes the caller's value, or is left out.
		t.Setenv("BERTH_E2E_FROM_HOST", "host value")
		os.Unsetenv("BERTH_E2E_NOT_SET")
		file := filepath.Join(t.TempDir(), "env")
		content := "# a comment\nA=1\n\nB=two words\nBERTH_E2E_FROM_HOST\nBERTH_E2E_NOT_SET\n"
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got = e.run("--env-file", file, "bb", "sh", "-c", `echo "$A|$B|$BERTH_E2E_FROM_HOST|${BERTH_E2E_NOT_SET-unset}"`)
		if want := "1|two words|host value|unset\n"; got != want {
			t.Errorf("--env-file: got %q, want %q", got, want)
		}
		got = e.run("-e", "BERTH_E2E_FROM_HOST", "-e", "BERTH_E2E_NOT_SET", "bb", "sh", "-c", `echo "$BERTH_E2E_FROM_HOST|${BERTH_E2E_NOT_SET-unset}"`)
		if want := "host value|unset\n"; got != want {
			t.Errorf("-e NAME: got %q, want %q", got, want)
		}
	})

	t.Run("workdir", func(t *testing.T) {
		e := e.forT(t)
		if got := e.run("-w", "/etc", "bb", "pwd"); got != "/etc\n" {
			t.Errorf("-w /etc: pwd %q", got)
		}
		// A directory the image lacks is created, as docker does.
		if got := e.run("-w", "/new/work/dir", "bb", "sh", "-c", "pwd; test -d /new/work/dir && echo dir"); got != "/new/work/dir\ndir\n" {
			t.Errorf("-w of a missing directory: %q", got)
		}
	})

	t.Run("user", func(t *testing.T) {
		e := e.forT(t)
		for _, tt := range []struct{ user, want string }{
			{"65534", "65534 65534 /nonexistent"},  // uid: gid and home from /etc/passwd
			{"nobody", "65534 65534 /nonexistent"}, // name from /etc/passwd
			{"1000:1001", "1000 1001 /"},           // not in passwd: docker's HOME is /
			{"nobody:0", "65534 0 /nonexistent"},   // user by name, group by number
			{"root", "0 0 /root"},                  // the default, named
			{"0:nogroup", "0 65534 /root"},         // group by name from /etc/group
			{"65534:65534", "65534 65534 /nonexistent"},
		} {
			got := strings.TrimSpace(e.run("-u", tt.user, "bb", "sh", "-c", `echo "$(id -u) $(id -g) $HOME"`))
			if got != tt.want {
				t.Errorf("-u %s: got %q, want %q", tt.user, got, tt.want)
			}
		}
		res := e.berth("run", "--rm", "-u", "nosuchuser", "bb", "true")
		if res.code == 0 || !strings.Contains(res.stderr, "nosuchuser") {
			t.Errorf("-u of an unknown user: code %d: %s", res.code, res.stderr)
		}
	})

	t.Run("entrypoint", func(t *testing.T) {
		e := e.forT(t)
		if got := e.run("--entrypoint", "echo", "bb", "hello", "world"); got != "hello world\n" {
			t.Errorf("--entrypoint echo: %q", got)
		}
		if got := e.run("ep"); got != "ep default\n" {
			t.Errorf("image entrypoint and cmd: %q", got)
		}
		if got := e.run("ep", "other"); got != "ep other\n" {
			t.Errorf("image entrypoint, user cmd: %q", got)
		}
		// An entrypoint from the user drops the image's cmd with it.
		if got := e.run("--entrypoint", "echo", "ep"); got != "\n" {
			t.Errorf("--entrypoint over the image's: %q", got)
		}
		// --entrypoint "" clears the image's entrypoint.
		if got := e.run("--entrypoint", "", "ep", "echo", "cleared"); got != "cleared\n" {
			t.Errorf(`--entrypoint "" with a cmd: %q`, got)
		}
		res := e.berth("run", "--rm", "--entrypoint", "", "ep")
		if res.code != 125 || !strings.Contains(strings.ToLower(res.stderr), "no command specified") {
			t.Errorf(`--entrypoint "" and no cmd: want 125 and "no command specified", got %d: %s`, res.code, res.stderr)
		}
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("failed runs left containers: %q", out)
		}
	})

	t.Run("hostname", func(t *testing.T) {
		e := e.forT(t)
		got := e.run("--hostname", "myhost", "bb", "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME")
		if got != "myhost\nmyhost\nmyhost\n" {
			t.Errorf("--hostname: %q", got)
		}
	})

	t.Run("labels", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("labelled")
		e.must("create", "--name", "labelled", "--label", "a=b", "--label", "c", "--label", "com.example.key=x=y", "bb", "true")
		got := e.inspect("labelled", "{{json .Config.Labels}}")
		if want := `{"a":"b","c":"","com.example.key":"x=y"}`; got != want {
			t.Errorf("labels: %s, want %s", got, want)
		}
		if got := e.must("ps", "-a", "--filter", "label=a=b", "--format", "{{.Names}}"); got != "labelled\n" {
			t.Errorf("ps --filter label=a=b: %q", got)
		}
		e.must("rm", "labelled")
	})

	t.Run("image config", func(t *testing.T) {
		e := e.forT(t)
		if got := e.run("cfg"); got != "1\n" {
			t.Errorf("image ENV and CMD: %q", got)
		}
		if got := e.run("cfg", "pwd"); got != "/srv\n" {
			t.Errorf("image WORKDIR: %q", got)
		}
		if got := e.run("-e", "A=2", "cfg"); got != "2\n" {
			t.Errorf("-e over the image's ENV: %q", got)
		}
		if got := e.run("-w", "/tmp", "cfg", "pwd"); got != "/tmp\n" {
			t.Errorf("-w over the image's WORKDIR: %q", got)
		}
		e.removeAtEnd("cfgc")
		e.must("create", "--name", "cfgc", "cfg")
		if got := e.inspect("cfgc", "{{.Config.WorkingDir}} {{json .Config.Cmd}} {{.Path}}"); got != `/srv ["sh","-c","echo $A"] sh` {
			t.Errorf("inspect of the image's config: %s", got)
		}
		if env := e.inspect("cfgc", "{{json .Config.Env}}"); !strings.Contains(env, `"A=1"`) {
			t.Errorf("inspect .Config.Env lacks the image's A=1: %s", env)
		}
		e.must("rm", "cfgc")
	})
}

// cgroupV1Dir is the host directory of controller ctrl's cgroup of
// process pid, from /proc/PID/cgroup.
func cgroupV1Dir(t *testing.T, pid, ctrl string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), ctrl) {
			return filepath.Join("/sys/fs/cgroup", ctrl, parts[2])
		}
	}
	t.Fatalf("no %s cgroup for pid %s in:\n%s", ctrl, pid, data)
	return ""
}

// Memory, CPU and pids limits land in the container's cgroup files;
// ulimits, sysctls and /dev/shm's size in the container.
func TestEngineResources(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/cgroup.procs"); err != nil {
		t.Skip("needs cgroup v1 (the memory controller at /sys/fs/cgroup/memory)")
	}
	e := newEngineEnv(t)

	t.Run("cgroup limits", func(t *testing.T) {
		e := e.forT(t)
		_, swapErr := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		id := strings.TrimSpace(e.must("run", "-d", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5",
			"--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50", "bb", "sleep", "1000"))
		files := map[string]string{
			"memory/memory.limit_in_bytes": "67108864",
			"cpu/cpu.cfs_quota_us":         "50000",
			"cpu/cpu.cfs_period_us":        "100000",
			"cpu/cpu.shares":               "512",
			"cpuset/cpuset.cpus":           "0",
			"pids/pids.max":                "50",
		}
		if swapErr == nil {
			files["memory/memory.memsw.limit_in_bytes"] = "134217728"
		}
		pid := e.inspect(id, "{{.State.Pid}}")
		for f, want := range files {
			// From inside: docker mounts the container's own cgroups at
			// /sys/fs/cgroup/CONTROLLER.
			if got := strings.TrimSpace(e.must("exec", id, "cat", "/sys/fs/cgroup/"+f)); got != want {
				t.Errorf("in the container, %s = %q, want %q", f, got, want)
			}
			ctrl, name, _ := strings.Cut(f, "/")
			dir := cgroupV1Dir(t, pid, ctrl)
			if filepath.Base(dir) != id {
				t.Errorf("%s cgroup of the container is %s, want one named after its ID", ctrl, dir)
			}
			if data, err := os.ReadFile(filepath.Join(dir, name)); err != nil || strings.TrimSpace(string(data)) != want {
				t.Errorf("on the host, %s/%s = %q (%v), want %q", dir, name, data, err, want)
			}
		}
		got := e.inspect(id, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}}")
		if want := "67108864 134217728 500000000 512 0 50"; got != want {
			t.Errorf("inspect HostConfig: %q, want %q", got, want)
		}
		// The limit bites: a 51st process cannot be made.
		res := e.berth("exec", id, "sh", "-c", "for i in $(seq 60); do sleep 1000 >/dev/null 2>&1 & done")
		if res.code == 0 || !strings.Contains(res.stderr, "can't fork") {
			t.Errorf("60 processes under --pids-limit 50: code %d: %s", res.code, res.stderr)
		}
		data, _ := os.ReadFile(filepath.Join(cgroupV1Dir(t, pid, "pids"), "pids.current"))
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || n > 50 || n < 40 {
			t.Errorf("pids.current = %q after forking past the limit, want 40 to 50", data)
		}
		e.must("rm", "-f", id)
	})

	t.Run("ulimit", func(t *testing.T) {
		e := e.forT(t)
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max < 2048 {
			t.Skipf("the hard nofile limit here (%d) is below 2048", lim.Max)
		}
		if got := e.run("--ulimit", "nofile=1024:2048", "bb", "sh", "-c", "ulimit -Sn; ulimit -Hn"); got != "1024\n2048\n" {
			t.Errorf("--ulimit nofile=1024:2048: %q", got)
		}
		// Without --ulimit, the container has the caller's limits.
		want := strconv.FormatUint(lim.Max, 10) + "\n"
		if got := e.run("bb", "sh", "-c", "ulimit -Hn"); got != want {
			t.Errorf("default hard nofile: %q, want %q", got, want)
		}
		res := e.berth("run", "--rm", "--ulimit", "nofile=2048:1024", "bb", "true")
		if res.code != 125 {
			t.Errorf("--ulimit soft above hard: want 125, got %d: %s", res.code, res.stderr)
		}
	})

	t.Run("sysctl", func(t *testing.T) {
		e := e.forT(t)
		hostBefore, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		def := strings.TrimSpace(e.run("bb", "cat", "/proc/sys/net/ipv4/ip_forward"))
		flip := "1"
		if def == "1" {
			flip = "0"
		}
		got := e.run("--sysctl", "net.ipv4.ip_forward="+flip, "--sysctl", "kernel.shmmax=1234567", "bb",
			"cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax")
		if want := flip + "\n1234567\n"; got != want {
			t.Errorf("--sysctl: %q, want %q", got, want)
		}
		if hostAfter, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(hostAfter) != string(hostBefore) {
			t.Errorf("--sysctl changed the host's ip_forward: %q → %q", hostBefore, hostAfter)
		}
		// A sysctl of no namespace of the container's is refused.
		res := e.berth("run", "--rm", "--sysctl", "vm.swappiness=10", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "vm.swappiness") {
			t.Errorf("--sysctl vm.swappiness: want 125 naming it, got %d: %s", res.code, res.stderr)
		}
	})

	t.Run("shm-size", func(t *testing.T) {
		e := e.forT(t)
		shmKB := func(args ...string) string {
			out := e.run(append(args, "bb", "df", "-k", "/dev/shm")...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
				return f[1]
			}
			t.Fatalf("df -k /dev/shm: %q", out)
			return ""
		}
		if got := shmKB("--shm-size", "32m"); got != "32768" {
			t.Errorf("--shm-size 32m: /dev/shm has %s KiB", got)
		}
		if got := shmKB(); got != "65536" {
			t.Errorf("default /dev/shm: %s KiB, want docker's 64 MiB", got)
		}
	})
}

// Capabilities, no-new-privileges, seccomp, a read-only rootfs, masked
// paths and devices, as the container's processes see them.
func TestEngineSecurity(t *testing.T) {
	e := newEngineEnv(t)
	status := func(e *engineEnv, args ...string) string {
		return e.run(append(args, "bb", "cat", "/proc/self/status")...)
	}

	t.Run("capabilities", func(t *testing.T) {
		e := e.forT(t)
		// docker's default set: chown dac_override fowner fsetid kill
		// setgid setuid setpcap net_bind_service net_raw sys_chroot mknod
		// audit_write setfcap.
		st := status(e)
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if got := statusField(st, k); got != "00000000a80425fb" {
				t.Errorf("default %s = %s, want 00000000a80425fb", k, got)
			}
		}
		if got := statusField(status(e, "--cap-add", "NET_ADMIN"), "CapEff"); got != "00000000a80435fb" {
			t.Errorf("--cap-add NET_ADMIN: CapEff %s, want 00000000a80435fb", got)
		}
		if got := statusField(status(e, "--cap-drop", "ALL"), "CapEff"); got != "0000000000000000" {
			t.Errorf("--cap-drop ALL: CapEff %s", got)
		}
		if got := statusField(status(e, "--cap-drop", "chown", "--cap-drop", "CAP_KILL"), "CapEff"); got != "00000000a80425da" {
			t.Errorf("--cap-drop chown,CAP_KILL: CapEff %s, want 00000000a80425da", got)
		}
		// A non-root user keeps no effective capabilities.
		if got := statusField(status(e, "-u", "65534"), "CapEff"); got != "0000000000000000" {
			t.Errorf("-u 65534: CapEff %s", got)
		}
		res := e.berth("run", "--rm", "--cap-add", "NOT_A_CAP", "bb", "true")
		if res.code != 125 {
			t.Errorf("--cap-add NOT_A_CAP: want 125, got %d: %s", res.code, res.stderr)
		}
	})

	t.Run("privileged", func(t *testing.T) {
		e := e.forT(t)
		self, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		// Everything berth itself may have, which is less than all of
		// them where this runs in a container.
		st := status(e, "--privileged")
		if got, want := statusField(st, "CapEff"), statusField(string(self), "CapBnd"); got != want {
			t.Errorf("--privileged: CapEff %s, want the caller's bounding set %s", got, want)
		}
		if got := statusField(st, "Seccomp"); got != "0" {
			t.Errorf("--privileged: Seccomp %s, want 0", got)
		}
		def := strings.Fields(e.run("bb", "ls", "/dev"))
		priv := strings.Fields(e.run("--privileged", "bb", "ls", "/dev"))
		if len(priv) <= len(def) {
			t.Errorf("--privileged /dev has %d entries, the default %d: %q", len(priv), len(def), priv)
		}
		// The host's devices are usable: read from one the default lacks.
		if got := e.run("--privileged", "bb", "sh", "-c", "test -c /dev/kmsg && echo kmsg"); got != "kmsg\n" {
			t.Errorf("--privileged lacks /dev/kmsg: %q", got)
		}
		if got := e.run("--privileged", "bb", "grep", " /sys ", "/proc/mounts"); !strings.Contains(got, " rw,") {
			t.Errorf("--privileged /sys is not read-write: %q", got)
		}
	})

	t.Run("no-new-privileges", func(t *testing.T) {
		e := e.forT(t)
		if got := statusField(status(e), "NoNewPrivs"); got != "0" {
			t.Errorf("default NoNewPrivs %s", got)
		}
		if got := statusField(status(e, "--security-opt", "no-new-privileges"), "NoNewPrivs"); got != "1" {
			t.Errorf("--security-opt no-new-privileges: NoNewPrivs %s", got)
		}
		if got := statusField(status(e, "--security-opt", "no-new-privileges=true"), "NoNewPrivs"); got != "1" {
			t.Errorf("--security-opt no-new-privileges=true: NoNewPrivs %s", got)
		}
	})

	t.Run("seccomp", func(t *testing.T) {
		e := e.forT(t)
		if got := statusField(status(e), "Seccomp"); got != "2" {
			t.Errorf("default Seccomp %s, want 2 (filter)", got)
		}
		if got := statusField(status(e, "--security-opt", "seccomp=unconfined"), "Seccomp"); got != "0" {
			t.Errorf("seccomp=unconfined: Seccomp %s", got)
		}
		// docker's profile allows unshare only with CAP_SYS_ADMIN; the
		// kernel alone lets root make a user namespace without it.
		res := e.berth("run", "--rm", "bb", "unshare", "-U", "true")
		if res.code == 0 {
			t.Errorf("unshare -U under the default profile succeeded")
		}
		if res := e.berth("run", "--rm", "--security-opt", "seccomp=unconfined", "bb", "unshare", "-U", "true"); res.code != 0 {
			t.Errorf("unshare -U with seccomp=unconfined: %d: %s", res.code, res.stderr)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		e := e.forT(t)
		res := e.berth("run", "--rm", "--read-only", "bb", "touch", "/x")
		if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
			t.Errorf("touch / under --read-only: %d: %s", res.code, res.stderr)
		}
		// docker keeps /tmp read-only too, unless a tmpfs covers it.
		if res := e.berth("run", "--rm", "--read-only", "bb", "touch", "/tmp/x"); res.code == 0 {
			t.Errorf("touch /tmp under --read-only succeeded")
		}
		if got := e.run("--read-only", "--tmpfs", "/tmp", "bb", "sh", "-c", "touch /tmp/x && echo ok"); got != "ok\n" {
			t.Errorf("--read-only --tmpfs /tmp: %q", got)
		}
		// /dev/shm and /dev stay writable.
		if got := e.run("--read-only", "bb", "sh", "-c", "touch /dev/shm/x && echo ok"); got != "ok\n" {
			t.Errorf("--read-only /dev/shm: %q", got)
		}
		if got := e.inspect(strings.TrimSpace(e.must("create", "--read-only", "bb")), "{{.HostConfig.ReadonlyRootfs}}"); got != "true" {
			t.Errorf("inspect ReadonlyRootfs: %s", got)
		}
		if res := e.berth("run", "--rm", "bb", "touch", "/x"); res.code != 0 {
			t.Errorf("touch / without --read-only: %d: %s", res.code, res.stderr)
		}
	})

	t.Run("masked paths", func(t *testing.T) {
		e := e.forT(t)
		// Files are masked with /dev/null; which exist depends on the kernel.
		var files []string
		for _, f := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats", "/proc/sched_debug"} {
			if _, err := os.Stat(f); err == nil {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			t.Fatal("none of docker's masked /proc files exists here")
		}
		for _, f := range files {
			got := e.run("bb", "sh", "-c", "stat -c '%F %t:%T' "+f+"; wc -c < "+f)
			if got != "character special file 1:3\n0\n" {
				t.Errorf("%s: %q, want /dev/null's device and nothing to read", f, got)
			}
		}
		// Directories get an empty read-only tmpfs.
		for _, d := range []string{"/proc/acpi", "/sys/firmware"} {
			if ents, err := os.ReadDir(d); err != nil || len(ents) == 0 {
				continue
			}
			if got := e.run("bb", "ls", "-A", d); got != "" {
				t.Errorf("%s is not masked: %q", d, got)
			}
		}
		// Read-only paths.
		res := e.berth("run", "--rm", "bb", "sh", "-c", "echo x > /proc/sys/kernel/domainname")
		if res.code == 0 || !strings.Contains(res.stderr, "Read-only") {
			t.Errorf("write to /proc/sys: %d: %s", res.code, res.stderr)
		}
		// --privileged and systempaths=unconfined unmask them.
		for _, opt := range [][]string{{"--privileged"}, {"--security-opt", "systempaths=unconfined"}} {
			if got := e.run(append(opt, "bb", "stat", "-c", "%F", files[0])...); !strings.HasPrefix(got, "regular") {
				t.Errorf("%v: %s still masked: %q", opt, files[0], got)
			}
		}
	})

	t.Run("device", func(t *testing.T) {
		e := e.forT(t)
		got := e.run("--device", "/dev/null:/dev/mynull", "bb", "sh", "-c", "stat -c '%F %t:%T' /dev/mynull; echo x > /dev/mynull && echo written")
		if got != "character special file 1:3\nwritten\n" {
			t.Errorf("--device /dev/null:/dev/mynull: %q", got)
		}
		if got := e.run("bb", "sh", "-c", "test -e /dev/mynull || echo none"); got != "none\n" {
			t.Errorf("a container without --device has /dev/mynull")
		}
		res := e.berth("run", "--rm", "--device", "/dev/nosuchdevice", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "/dev/nosuchdevice") {
			t.Errorf("--device of a missing device: %d: %s", res.code, res.stderr)
		}
	})
}

// --device PATH:PATH:r lets the container read the device, not write it.
func TestEngineDeviceAccess(t *testing.T) {
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skip("no /dev/kmsg here")
	}
	e := newEngineEnv(t)
	// /dev/kmsg is outside docker's default device rules.
	res := e.berth("run", "--rm", "--device", "/dev/kmsg:/dev/mykmsg:r", "bb", "sh", "-c", "echo berth-e2e > /dev/mykmsg")
	if res.code == 0 || !strings.Contains(res.stderr, "Operation not permitted") {
		t.Errorf("write to a --device ...:r: code %d: %s", res.code, res.stderr)
	}
}

// Namespaces: private by default, the host's or another container's when
// asked.
func TestEngineNamespaces(t *testing.T) {
	e := newEngineEnv(t)
	nsOf := func(e *engineEnv, args ...string) map[string]string {
		t.Helper()
		out := e.run(append(args, "bb", "sh", "-c", "for n in ipc uts net pid mnt; do echo $n $(readlink /proc/self/ns/$n); done")...)
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(line, " ")
			m[k] = v
		}
		return m
	}
	hostNS := func(n string) string {
		l, err := os.Readlink("/proc/self/ns/" + n)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	t.Run("private by default", func(t *testing.T) {
		e := e.forT(t)
		for n, l := range nsOf(e) {
			if l == "" || l == hostNS(n) {
				t.Errorf("%s namespace %q is the host's", n, l)
			}
		}
	})

	t.Run("host", func(t *testing.T) {
		e := e.forT(t)
		got := nsOf(e, "--ipc", "host", "--uts", "host", "--pid", "host", "--network", "host")
		for _, n := range []string{"ipc", "uts", "pid", "net"} {
			if got[n] != hostNS(n) {
				t.Errorf("--%s host: %s, want the host's %s", n, got[n], hostNS(n))
			}
		}
		if got["mnt"] == hostNS("mnt") {
			t.Errorf("the mount namespace is the host's")
		}
		// --pid host: PID 1 is the host's init, not the container's command.
		host1, _ := os.ReadFile("/proc/1/comm")
		if got := e.run("--pid", "host", "bb", "cat", "/proc/1/comm"); got != string(host1) {
			t.Errorf("--pid host: PID 1 is %q, want the host's %q", got, host1)
		}
		if got := e.run("bb", "cat", "/proc/1/comm"); got != "cat\n" {
			t.Errorf("own PID namespace: PID 1 is %q", got)
		}
		hostname, _ := os.Hostname()
		if got := e.run("--uts", "host", "bb", "hostname"); got != hostname+"\n" {
			t.Errorf("--uts host: hostname %q, want %q", got, hostname)
		}
	})

	t.Run("network", func(t *testing.T) {
		e := e.forT(t)
		ifaces := func(procNetDev string) []string {
			var out []string
			for _, line := range strings.Split(procNetDev, "\n") {
				if name, _, ok := strings.Cut(line, ":"); ok && !strings.Contains(name, "|") {
					out = append(out, strings.TrimSpace(name))
				}
			}
			slices.Sort(out)
			return out
		}
		if got := ifaces(e.run("--network", "none", "bb", "cat", "/proc/net/dev")); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("--network none: interfaces %q, want only lo", got)
		}
		host, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ifaces(e.run("--network", "host", "bb", "cat", "/proc/net/dev")), ifaces(string(host)); !slices.Equal(got, want) {
			t.Errorf("--network host: interfaces %q, want the host's %q", got, want)
		}
	})

	t.Run("container", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("donor")
		e.must("run", "-d", "--name", "donor", "bb", "sleep", "1000")
		ps := e.run("--pid", "container:donor", "bb", "ps", "-o", "args")
		if !strings.Contains(ps, "sleep 1000") {
			t.Errorf("--pid container:donor does not see the donor's sleep:\n%s", ps)
		}
		donorNet := strings.TrimSpace(e.must("exec", "donor", "readlink", "/proc/self/ns/net"))
		if got := nsOf(e, "--network", "container:donor")["net"]; got != donorNet {
			t.Errorf("--network container:donor: %s, want %s", got, donorNet)
		}
		// docker has no --uts container:NAME.
		res := e.berth("run", "--rm", "--uts", "container:donor", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "invalid UTS mode") {
			t.Errorf("--uts container:donor: want 125 and invalid UTS mode, got %d: %s", res.code, res.stderr)
		}
		res = e.berth("run", "--rm", "--pid", "container:nosuch", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "nosuch") {
			t.Errorf("--pid container:nosuch: want 125, got %d: %s", res.code, res.stderr)
		}
		e.must("rm", "-f", "donor")
	})
}

// --init's PID 1 and its reaping; --stop-signal and --stop-timeout as
// `stop` honours them.
func TestEngineInitAndStop(t *testing.T) {
	e := newEngineEnv(t)

	t.Run("init", func(t *testing.T) {
		e := e.forT(t)
		got := e.run("--init", "bb", "sh", "-c", `tr "\0" " " < /proc/1/cmdline`)
		if !strings.HasPrefix(got, "/sbin/berth-init ") || !strings.Contains(got, "sh -c") {
			t.Errorf("--init: PID 1 is %q", got)
		}
		// A grandchild orphaned by its parent is reparented to PID 1:
		// berth-init reaps it, a plain sleep as PID 1 leaves a zombie.
		orphan := `(sleep 0.2 &); exec sleep 1000`
		e.removeAtEnd("plain", "inited")
		e.must("run", "-d", "--name", "plain", "bb", "sh", "-c", orphan)
		e.must("run", "-d", "--name", "inited", "--init", "bb", "sh", "-c", orphan)
		zombies := func(name string) int {
			out := e.must("exec", name, "ps", "-o", "stat")
			n := 0
			for _, f := range strings.Fields(out) {
				if strings.HasPrefix(f, "Z") {
					n++
				}
			}
			return n
		}
		if !waitUntil(5*time.Second, func() bool { return zombies("plain") > 0 }) {
			t.Fatalf("no zombie in the container without --init")
		}
		// The orphan has exited by now (the other container saw it).
		if !waitUntil(2*time.Second, func() bool {
			out := e.must("exec", "inited", "ps", "-o", "args")
			return zombies("inited") == 0 && !slices.Contains(strings.Split(out, "\n"), "sleep 0.2")
		}) {
			t.Errorf("berth-init left the orphan:\n%s", e.must("exec", "inited", "ps", "-o", "pid,stat,args"))
		}
		if got := e.inspect("inited", "{{.HostConfig.Init}}"); got != "true" {
			t.Errorf("inspect .HostConfig.Init: %s", got)
		}
		e.must("rm", "-f", "plain", "inited")
	})

	t.Run("stop-signal", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("sig")
		e.must("run", "-d", "--name", "sig", "--stop-signal", "USR1", "bb", "sh", "-c",
			`trap "echo got usr1; exit 3" USR1; echo ready; while :; do sleep 0.05; done`)
		waitFor(t, func() bool { return e.berth("logs", "sig").stdout == "ready\n" })
		start := time.Now()
		e.must("stop", "sig")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stop with a handled --stop-signal took %v", d)
		}
		if got := e.inspect("sig", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 3" {
			t.Errorf("after stop: %s, want exited 3 (the trap's)", got)
		}
		if got := e.must("logs", "sig"); got != "ready\ngot usr1\n" {
			t.Errorf("logs: %q", got)
		}
		e.must("rm", "sig")
	})

	t.Run("stop-timeout", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("deaf")
		e.must("run", "-d", "--name", "deaf", "--stop-timeout", "1", "bb", "sh", "-c",
			`trap "" TERM; echo ready; while :; do sleep 0.05; done`)
		waitFor(t, func() bool { return e.berth("logs", "deaf").stdout == "ready\n" })
		start := time.Now()
		e.must("stop", "deaf")
		// Killed after 1 s, not docker's default 10 s.
		if d := time.Since(start); d < 900*time.Millisecond || d > 6*time.Second {
			t.Errorf("stop with --stop-timeout 1 took %v", d)
		}
		if got := e.inspect("deaf", "{{.State.Status}} {{.State.ExitCode}} {{.Config.StopTimeout}}"); got != "exited 137 1" {
			t.Errorf("after stop: %s, want exited 137 1", got)
		}
		// -t wins over --stop-timeout.
		e.must("start", "deaf")
		waitFor(t, func() bool { return e.berth("logs", "deaf").stdout == "ready\nready\n" })
		start = time.Now()
		e.must("stop", "-t", "0", "deaf")
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("stop -t 0 took %v", d)
		}
		e.must("rm", "deaf")
	})
}

// Restart policies: on-failure's count, always and unless-stopped after
// the process is killed behind berth's back, and a stop that sticks.
func TestEngineRestartPolicies(t *testing.T) {
	e := newEngineEnv(t)

	t.Run("on-failure", func(t *testing.T) {
		e := e.forT(t)
		e.removeAtEnd("flaky", "fine")
		e.must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "bb", "sh", "-c", "exit 1")
		state := func() string { return e.inspect("flaky", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}") }
		if !waitUntil(10*time.Second, func() bool { return state() == "exited 2 1" }) {
			t.Fatalf("on-failure:2: %s, want exited 2 1", state())
		}
		time.Sleep(500 * time.Millisecond)
		if got := state(); got != "exited 2 1" {
			t.Errorf("restarted beyond its count: %s", got)
		}
		if got := e.inspect("flaky", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"); got != "on-failure:2" {
			t.Errorf("restart policy: %s", got)
		}
		// Success is not a failure.
		e.must("run", "-d", "--name", "fine", "--restart", "on-failure", "bb", "true")
		if code := strings.TrimSpace(e.must("wait", "fine")); code != "0" {
			t.Errorf("wait: %s", code)
		}
		time.Sleep(300 * time.Millisecond)
		if got := e.inspect("fine", "{{.State.Status}} {{.RestartCount}}"); got != "exited 0" {
			t.Errorf("on-failure after exit 0: %s", got)
		}
		e.must("rm", "flaky", "fine")
	})

	for _, policy := range []string{"always", "unless-stopped"} {
		t.Run(policy, func(t *testing.T) {
			e := e.forT(t)
			e.removeAtEnd("keeper")
			e.must("run", "-d", "--name", "keeper", "--restart", policy, "bb", "sleep", "1000")
			pid := e.inspect("keeper", "{{.State.Pid}}")
			n, err := strconv.Atoi(pid)
			if err != nil || n <= 0 {
				t.Fatalf("pid %q", pid)
			}
			if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			state := func() string { return e.inspect("keeper", "{{.State.Status}} {{.State.Pid}}") }
			if !waitUntil(10*time.Second, func() bool {
				f := strings.Fields(state())
				return len(f) == 2 && f[0] == "running" && f[1] != pid && f[1] != "0"
			}) {
				t.Fatalf("not restarted after kill -9 of its process: %s", state())
			}
			if got := e.inspect("keeper", "{{.RestartCount}}"); got != "1" {
				t.Errorf("RestartCount %s, want 1", got)
			}
			// A stop sticks: no restart afterwards.
			e.must("stop", "-t", "1", "keeper")
			time.Sleep(500 * time.Millisecond)
			if got := e.inspect("keeper", "{{.State.Status}} {{.RestartCount}}"); got != "exited 1" {
				t.Errorf("after stop: %s, want exited 1", got)
			}
			// start brings it back under its policy.
			e.must("start", "keeper")
			if got := e.inspect("keeper", "{{.State.Status}}"); got != "running" {
				t.Errorf("after start: %s", got)
			}
			e.must("rm", "-f", "keeper")
		})
	}

	t.Run("bad policy", func(t *testing.T) {
		e := e.forT(t)
		for _, p := range []string{"bogus", "on-failure:x", "always:3", "on-failure:-1"} {
			res := e.berth("create", "--restart", p, "bb", "true")
			if res.code != 125 {
				t.Errorf("--restart %s: want 125, got %d: %s", p, res.code, res.stderr)
			}
		}
		res := e.berth("run", "--rm", "--restart", "always", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "--rm") {
			t.Errorf("--rm with --restart always: %d: %s", res.code, res.stderr)
		}
		if out := e.must("ps", "-aq"); out != "" {
			t.Errorf("refused creates left containers: %q", out)
		}
	})
}
