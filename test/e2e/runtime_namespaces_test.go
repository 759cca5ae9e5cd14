package e2e

import (
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRuntimeNamespacesAreNew(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", `hostname; echo pid=$$; ip -o link | cut -d: -f2; for n in pid net ipc uts mnt cgroup; do echo $n=$(readlink /proc/self/ns/$n); done`)
	b.Spec.Hostname = "box1"
	b.Save(t)
	res := r.run(b, id)
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if lines[0] != "box1" {
		t.Errorf("hostname = %q", lines[0])
	}
	if lines[1] != "pid=1" {
		t.Errorf("shell is %q, want pid 1", lines[1])
	}
	if strings.TrimSpace(lines[2]) != "lo" {
		t.Errorf("links in new netns: %q, want only lo", lines[2])
	}
	for _, l := range lines[3:] {
		name, link, _ := strings.Cut(l, "=")
		if link == hostNSInode(t, name) {
			t.Errorf("%s namespace is the host's: %s", name, link)
		}
	}
}

func TestRuntimeJoinsNamespaceByPath(t *testing.T) {
	r := newRuntimeEnv(t)
	first := r.newID()
	b1 := r.bundle(first, "sleep", "1000")
	r.must("run", "--detach", "--bundle", b1.Dir, first)
	pid := r.state(first).Pid
	want := map[string]string{}
	for _, n := range []string{"net", "ipc", "uts"} {
		want[n] = readlinkT(t, fmt.Sprintf("/proc/%d/ns/%s", pid, n))
	}

	second := r.newID()
	b2 := r.bundle(second, "sh", "-c", "for n in net ipc uts pid; do echo $n=$(readlink /proc/self/ns/$n); done")
	for i, ns := range b2.Spec.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace:
			b2.Spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{
				specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}[ns.Type])
		}
	}
	b2.Spec.Hostname = ""
	b2.Save(t)
	res := r.run(b2, second)
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		name, link, _ := strings.Cut(l, "=")
		if w, ok := want[name]; ok && link != w {
			t.Errorf("%s: got %s, want the joined %s", name, link, w)
		}
		if name == "pid" && link == want["pid"] {
			t.Errorf("pid namespace shared unexpectedly")
		}
	}
}

func TestRuntimeUserNamespaceMapsIDs(t *testing.T) {
	r := newRuntimeEnv(t)
	id := r.newID()
	b := r.bundle(id, "sh", "-c", "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map")
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// The rootfs is owned by host root, which the namespace does not map:
	// the root must stay read-only and sysfs comes from the host.
	b.Save(t)
	res := r.run(b, id)
	if res.code != 0 {
		t.Fatalf("run: %d %s", res.code, res.stderr)
	}
	f := strings.Fields(res.stdout)
	if len(f) < 7 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" {
		t.Fatalf("uid map inside: %q", res.stdout)
	}
}

func readlinkT(t *testing.T, p string) string {
	t.Helper()
	l, err := readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
