package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/engine"
)

func u64p(n uint64) *uint64 { return &n }

func TestWriteIsolationRunning(t *testing.T) {
	id := strings.Repeat("3f2a", 16)
	peer := strings.Repeat("9c1e", 16)
	r := &engine.IsolationReport{
		ID: id, Name: "web", Status: "running", Running: true, Pid: 12345,
		Namespaces: []engine.NamespaceInfo{
			{Type: "mnt", Inode: 4026532601, Sharing: engine.NSPrivate},
			{Type: "ipc", Inode: 4026532602, Sharing: engine.NSContainer, SharedWith: []engine.ContainerRef{{ID: peer, Name: "db"}}},
			{Type: "net", Inode: 4026531840, Sharing: engine.NSHost},
		},
		Cgroup: &engine.CgroupInfo{
			Version: "v1", Path: "/berth/" + id,
			Paths:  map[string]string{"memory": "/berth/" + id, "cpu": "/berth/" + id},
			Memory: &engine.CgroupMemory{Limit: u64p(64 << 20), Usage: 3355443, Peak: u64p(3565158)},
			CPU:    &engine.CgroupCPU{Quota: 50000, Period: 100000, CPUs: 0.5, Shares: 1024},
			Pids:   &engine.CgroupPids{Current: 12, Max: u64p(100)},
			Cpuset: &engine.CgroupCpuset{Cpus: "0-3", Mems: "0"},
		},
		Security: engine.SecurityInfo{
			SeccompProfile: "default", SeccompMode: "filter", SeccompFilters: 1,
			Caps: &engine.CapSets{
				Effective: []string{"CAP_CHOWN", "CAP_KILL"}, Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
				Bounding: []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN"}, Inheritable: []string{}, Ambient: []string{},
			},
			User: &engine.ProcUser{UID: 0, GID: 0},
		},
		Rootfs: engine.RootfsInfo{
			Driver: "overlay", Image: "sha256:" + peer, ImageName: "bb",
			Layers:       []engine.LayerInfo{{ChainID: "sha256:" + id, DiffID: "sha256:" + id, Size: 2 << 20}},
			WritableDir:  "/var/lib/berth/storage/overlay/abc/diff",
			WritableSize: 12 << 10, MaskedPaths: 12, ReadonlyPaths: 5,
			Mounts: []engine.MountInfo{{Type: "volume", Name: "data", Source: "/v/data", Destination: "/data", RW: true}},
		},
	}
	var buf bytes.Buffer
	writeIsolation(&buf, r)
	want := `Container  web (3f2a3f2a3f2a)  pid 12345  running
Namespaces
  mnt     4026532601  private
  ipc     4026532602  shared with db (9c1e9c1e9c1e)
  net     4026531840  host
Cgroup     /berth/3f2a3f2a3f2a… (v1)
  memory  64.0MiB limit  3.2MiB used  (peak 3.4MiB)
  cpu     0.50 CPUs (50000/100000)  shares 1024
  pids    12 / 100
  cpuset  cpus 0-3  mems 0
Security   seccomp filter (docker default, 1 filter)  no_new_privs 0  user 0:0
  CapEff  CHOWN KILL (2)
  CapPrm  = CapEff
  CapBnd  CHOWN KILL NET_ADMIN (3)
  CapInh  none
  CapAmb  none
Rootfs     overlay, 1 image layer + writable (12.0KiB), read-only: no
  image   bb (sha256:9c1e9c1e9c1e)
  layer 1 diff sha256:3f2a3f2a3f2a  chain sha256:3f2a3f2a3f2a  2.0MiB
  upper   /var/lib/berth/storage/overlay/abc/diff
  paths   12 masked, 5 read-only
Mounts
  volume  data → /data  rw
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestWriteIsolationStopped(t *testing.T) {
	r := &engine.IsolationReport{
		ID: "abc", Name: "idle", Status: "exited", Note: engine.NotRunningNote,
		Security: engine.SecurityInfo{SeccompProfile: "unconfined", Privileged: true, ConfigUser: "app", CapAdd: []string{"ALL"}},
		Cgroup:   &engine.CgroupInfo{Version: "v2", Path: "/x", Memory: &engine.CgroupMemory{Usage: 100}, Pids: &engine.CgroupPids{Current: 1}},
		Rootfs:   engine.RootfsInfo{Driver: "vfs", WritableSize: -1, ReadOnly: true},
	}
	var buf bytes.Buffer
	writeIsolation(&buf, r)
	want := `Container  idle (abc)  exited
  not running: namespaces and cgroup usage are shown only for a running container
Cgroup     /x (v2)
  memory  no limit  100B used
  pids    1 / no limit
Security   seccomp unconfined  no_new_privs 0  user "app"  privileged
  CapAdd  ALL
Rootfs     vfs, 0 image layers + writable, read-only: yes
  paths   0 masked, 0 read-only
`
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestBinarySize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 64 << 20: "64.0MiB", 3 << 30: "3.0GiB"} {
		if got := binarySize(n); got != want {
			t.Errorf("binarySize(%d) = %q, want %q", n, got, want)
		}
	}
}
