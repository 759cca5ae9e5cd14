package mount

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// helperEnv selects a helper mode when the test binary re-executes itself.
const helperEnv = "BERTH_MOUNT_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseRlimitType(t *testing.T) {
	kernel := map[string]int{
		"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
		"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
		"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
		"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
		"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
		"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	}
	if len(kernel) != 16 || len(rlimitNames) != 16 {
		t.Fatalf("want 16 types")
	}
	for name, want := range kernel {
		if got, err := ParseRlimitType(name); err != nil || got != want {
			t.Errorf("ParseRlimitType(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, bad := range []string{"", "NOFILE", "rlimit_nofile", "RLIMIT_FOO", "RLIMIT_NOFILE "} {
		if _, err := ParseRlimitType(bad); !errdefs.Is(err, errdefs.KindInvalidArgument) {
			t.Errorf("ParseRlimitType(%q) error = %v, want invalid argument", bad, err)
		}
	}
}

func TestSetRlimitsInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   []specs.POSIXRlimit
		want string
	}{
		{"unknown type", []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}, `unknown type "RLIMIT_BOGUS"`},
		{"soft above hard", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}},
			"RLIMIT_NOFILE soft limit 2048 exceeds its hard limit 1024"},
		{"soft unlimited", []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: unix.RLIM_INFINITY, Hard: 0}},
			"RLIMIT_CORE soft limit unlimited exceeds its hard limit 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SetRlimits(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Fatalf("SetRlimits error = %v, want invalid argument with %q", err, tt.want)
			}
		})
	}
	if err := SetRlimits(nil); err != nil {
		t.Fatalf("SetRlimits(nil) = %v", err)
	}
}

// TestSetRlimits sets limits in a child process (they belong to the whole
// process, and a lowered hard limit cannot come back without privilege).
func TestSetRlimits(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=rlimits")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

func helper(mode string) error {
	switch mode {
	case "rlimits":
		return helperRlimits()
	}
	return fmt.Errorf("unknown helper mode %q", mode)
}

func helperRlimits() error {
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		return err
	}
	if orig.Max < 512 {
		return nil // nothing sensible to test
	}
	// Lowering works for anyone.
	if err := SetRlimits([]specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 256, Hard: 500},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
	}); err != nil {
		return fmt.Errorf("lowering: %w", err)
	}
	var got unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &got); err != nil || got.Cur != 256 || got.Max != 500 {
		return fmt.Errorf("after lowering RLIMIT_NOFILE = %+v, %v", got, err)
	}

	// Raising the hard limit needs CAP_SYS_RESOURCE: drop it from this
	// thread if present (prlimit checks the calling thread).
	runtime.LockOSThread() // never unlocked: the thread's capabilities change
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Effective &^= 1 << unix.CAP_SYS_RESOURCE
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	err := SetRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 256, Hard: 1000}})
	want := "process.rlimits: RLIMIT_NOFILE hard limit 1000 exceeds the current 500 and raising it needs CAP_SYS_RESOURCE: operation not permitted"
	if err == nil || err.Error() != want || !errors.Is(err, unix.EPERM) || !errdefs.Is(err, errdefs.KindPermission) {
		return fmt.Errorf("raising: error = %v\nwant %s", err, want)
	}
	// Within the hard limit, the soft limit may go up again.
	if err := SetRlimits([]specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 500, Hard: 500}}); err != nil {
		return fmt.Errorf("raising soft: %w", err)
	}
	return nil
}
