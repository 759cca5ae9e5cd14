package mount

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateSysctl(t *testing.T) {
	all := map[string]bool{"ipc": true, "network": true, "uts": true}
	none := map[string]bool{}
	tests := []struct {
		key     string
		ns      map[string]bool
		wantErr string // "" when allowed
	}{
		{"kernel.msgmax", all, ""},
		{"kernel.msgmnb", all, ""},
		{"kernel.msg_next_id", all, ""},
		{"kernel.sem", all, ""},
		{"kernel.sem_next_id", all, ""},
		{"kernel.shmmax", all, ""},
		{"kernel.shm_rmid_forced", all, ""},
		{"fs.mqueue.msg_max", all, ""},
		{"fs/mqueue/msg_max", all, ""},
		{"kernel.shmmax", none, "linux.sysctl.kernel.shmmax: needs the container's own ipc namespace"},
		{"fs.mqueue.queues_max", map[string]bool{"network": true}, "own ipc namespace"},
		{"net.ipv4.ip_forward", all, ""},
		{"net/ipv4/ip_forward", all, ""},
		{"net.ipv4.conf.eth0/100.forwarding", all, ""},
		{"net/ipv4/conf/eth0.100/forwarding", all, ""},
		{"net.core.somaxconn", map[string]bool{"ipc": true, "uts": true}, "linux.sysctl.net.core.somaxconn: needs the container's own network namespace"},
		{"kernel.domainname", all, ""},
		{"kernel.domainname", map[string]bool{"ipc": true}, "own uts namespace"},
		{"kernel.hostname", all, "linux.sysctl.kernel.hostname: not allowed; set the hostname field instead"},
		{"kernel.pid_max", all, "linux.sysctl.kernel.pid_max: not namespaced"},
		{"vm.swappiness", all, "linux.sysctl.vm.swappiness: not namespaced"},
		{"kernel.semx", all, "not namespaced"},
		{"fs.mqueue", all, "not namespaced"},
		{"net..ipv4", all, "not a valid sysctl name"},
		{"net.ipv4.", all, "not a valid sysctl name"},
		{"net/../../etc/passwd", all, "not a valid sysctl name"},
		{"net.ipv4.conf.//.x", all, "not a valid sysctl name"},
		{"", all, "empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := ValidateSysctl(tt.key, tt.ns)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateSysctl(%q) = %v, want nil", tt.key, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Fatalf("ValidateSysctl(%q) = %v, want invalid argument with %q", tt.key, err, tt.wantErr)
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":               "net/ipv4/ip_forward",
		"net/ipv4/ip_forward":               "net/ipv4/ip_forward",
		"net.ipv4.conf.eth0/100.forwarding": "net/ipv4/conf/eth0.100/forwarding",
		"net/ipv4/conf/eth0.100/forwarding": "net/ipv4/conf/eth0.100/forwarding",
		"kernel.shmmax":                     "kernel/shmmax",
	}
	for key, want := range tests {
		if got, err := sysctlPath(key); err != nil || got != want {
			t.Errorf("sysctlPath(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
}

// TestWriteSysctl writes a net sysctl in a new network namespace, entered
// by a locked thread that is thrown away afterwards.
func TestWriteSysctl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	const key = "net.ipv4.ip_unprivileged_port_start"
	type result struct {
		skip string
		err  error
		got  string
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is in another netns
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- result{skip: "cannot create a network namespace: " + err.Error()}
			return
		}
		var r result
		if r.err = WriteSysctl(key, "1234"); r.err == nil {
			r.err = WriteSysctl("net/ipv4/ip_unprivileged_port_start", "1235")
		}
		b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		r.got = strings.TrimSpace(string(b))
		done <- r
	}()
	r := <-done
	if r.skip != "" {
		t.Skip(r.skip)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.got != "1235" {
		t.Fatalf("%s = %q, want 1235", key, r.got)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(b)) == "1235" {
		t.Errorf("the host's %s changed", key)
	}
	if err := WriteSysctl("net/../kernel/x", "1"); err == nil {
		t.Errorf("wrote through ..")
	}
	if err := WriteSysctl("net.ipv4.no_such_sysctl", "1"); err == nil || !strings.Contains(err.Error(), "linux.sysctl.net.ipv4.no_such_sysctl") {
		t.Errorf("missing sysctl: %v", err)
	}
}

// FuzzSysctlPath checks that no key escapes /proc/sys.
func FuzzSysctlPath(f *testing.F) {
	for _, s := range []string{"net.ipv4.ip_forward", "net/ipv4/conf/eth0.100/forwarding", "net.ipv4.conf.//.x", "../x", "a./.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		rel, err := sysctlPath(key)
		if err != nil {
			return
		}
		if strings.HasPrefix(rel, "/") {
			t.Fatalf("sysctlPath(%q) = %q is absolute", key, rel)
		}
		for part := range strings.SplitSeq(rel, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("sysctlPath(%q) = %q has part %q", key, rel, part)
			}
		}
	})
}
