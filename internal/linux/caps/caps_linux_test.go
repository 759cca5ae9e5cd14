package caps

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode when the test binary re-executes itself.
const helperEnv = "BERTH_CAPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helper(mode) // does not return
	}
	os.Exit(m.Run())
}

func TestNamesMatchKernelNumbers(t *testing.T) {
	kernel := map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
		"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
		"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
		"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
		"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
		"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
		"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
		"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
		"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
		"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT,
		"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
		"CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
		"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
		"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
		"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
		"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
		"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
		"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF,
		"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
	}
	if len(kernel) != len(names) || int(MaxKnown) != unix.CAP_LAST_CAP {
		t.Fatalf("berth knows %d names up to %d; x/sys knows %d up to %d", len(names), MaxKnown, len(kernel), unix.CAP_LAST_CAP)
	}
	for name, n := range kernel {
		if c, ok := ParseName(name); !ok || int(c) != n {
			t.Errorf("ParseName(%q) = %d, %v; kernel says %d", name, c, ok, n)
		}
	}
}

func TestLastCap(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Skipf("no /proc/sys/kernel/cap_last_cap: %v", err)
	}
	want := strings.TrimSpace(string(b))
	if got := fmt.Sprint(int(LastCap())); got != want {
		t.Errorf("LastCap() = %s, want %s", got, want)
	}
	if got := fmt.Sprint(int(probeLastCap())); got != want {
		t.Errorf("probeLastCap() = %s, want %s", got, want)
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tcat\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n" +
		"CapEff:\t000001ffffffefff\nCapBnd:\t000001ffffffefff\nCapAmb:\t0000000000000021\nNoNewPrivs:\t0\n"
	got, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Permitted: 0x1ffffffffff, Effective: 0x1ffffffefff, Bounding: 0x1ffffffefff, Ambient: 0x21}
	if got != want {
		t.Fatalf("parseStatus = %+v, want %+v", got, want)
	}
	// Kernels before 4.3 have no CapAmb.
	if _, err := parseStatus([]byte("CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n")); err != nil {
		t.Errorf("no CapAmb: %v", err)
	}
	for _, bad := range []string{"", "Name:\tx\n", "CapInh:\tzz\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) succeeded", bad)
		}
	}
}

func TestCurrent(t *testing.T) {
	self, err := Current(0)
	if err != nil {
		t.Fatal(err)
	}
	byPid, err := Current(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self != byPid {
		t.Errorf("Current(0) = %+v, Current(getpid) = %+v", self, byPid)
	}
	if self.Bounding == 0 {
		t.Errorf("empty bounding set: %+v", self)
	}
	if _, err := Current(1 << 30); err == nil {
		t.Errorf("Current of a missing pid succeeded")
	}
}

// TestApply drops CAP_NET_ADMIN from every set in a child (capabilities are
// per thread and cannot come back), then checks the child's thread and the
// program it executes.
func TestApply(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: drops capabilities in a child process")
	}
	start, err := Current(0)
	if err != nil {
		t.Fatal(err)
	}
	if !start.Effective.Has(unix.CAP_SETPCAP) || !start.Bounding.Has(unix.CAP_NET_ADMIN) || !start.Effective.Has(unix.CAP_CHOWN) {
		t.Skipf("needs CAP_SETPCAP, CAP_NET_ADMIN and CAP_CHOWN to start with; have %+v", start)
	}
	if _, err := os.Stat("/bin/cat"); err != nil {
		t.Skip("needs /bin/cat to exec")
	}

	tests := []struct {
		mode string
		// what the executed program must have
		wantEff func(s Set) bool
	}{
		// Root stays root: after execve, effective = bounding.
		{"root", func(s Set) bool { return s.Has(unix.CAP_CHOWN) && s.Has(unix.CAP_SETUID) }},
		// uid 65534: after execve only the ambient set survives.
		{"user", func(s Set) bool {
			return s == Set(0).With(unix.CAP_CHOWN).With(unix.CAP_NET_BIND_SERVICE)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, stderr.Bytes())
			}
			thread, execd, ok := bytes.Cut(out, []byte("--exec--\n"))
			if !ok {
				t.Fatalf("helper output has no exec marker:\n%s\n%s", out, stderr.Bytes())
			}
			for _, part := range []struct {
				what string
				b    []byte
			}{{"thread after Apply", thread}, {"executed program", execd}} {
				c, err := parseStatus(part.b)
				if err != nil {
					t.Fatalf("%s: %v\n%s", part.what, err, part.b)
				}
				for _, s := range []Set{c.Effective, c.Permitted, c.Inheritable, c.Bounding, c.Ambient} {
					if s.Has(unix.CAP_NET_ADMIN) {
						t.Errorf("%s still has CAP_NET_ADMIN: %+v", part.what, c)
					}
				}
				if !c.Effective.Has(unix.CAP_CHOWN) || !c.Bounding.Has(unix.CAP_CHOWN) {
					t.Errorf("%s lost CAP_CHOWN: %+v", part.what, c)
				}
				if part.what == "executed program" && !tt.wantEff(c.Effective) {
					t.Errorf("%s: effective %q", part.what, c.Effective.Names())
				}
			}
		})
	}
}

// helper runs in the re-executed test binary: it applies a Config on a
// locked thread, prints that thread's status, then execs cat on it.
func helper(mode string) {
	runtime.LockOSThread() // never unlocked: the thread's credentials change
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	start, err := Current(0)
	if err != nil {
		fail(err)
	}
	s := start.Permitted.Without(unix.CAP_NET_ADMIN)
	cfg := Config{Bounding: s, Effective: s, Permitted: s, Inheritable: s,
		Ambient: Set(0).With(unix.CAP_CHOWN).With(unix.CAP_NET_BIND_SERVICE)}

	var changeUser func() error
	if mode == "user" {
		// Raw syscalls: only this thread changes, as in the container's init.
		changeUser = func() error {
			if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
				return e
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, 65534, 65534, 65534); e != 0 {
				return e
			}
			if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 65534, 65534, 65534); e != 0 {
				return e
			}
			return nil
		}
	}
	if err := cfg.Apply(changeUser); err != nil {
		fail(err)
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(b)
	os.Stdout.Write([]byte("--exec--\n"))
	fail(syscall.Exec("/bin/cat", []string{"cat", "/proc/self/status"}, os.Environ()))
}
