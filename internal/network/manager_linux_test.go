package network

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestMain doubles as the helper process of the multi-process tests:
// with BERTH_NETWORK_HELPER set it leases addresses and prints them.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_NETWORK_HELPER") != "" {
		os.Exit(leaseHelper())
	}
	os.Exit(m.Run())
}

// leaseHelper leases $N addresses (forever when N < 0) on network $NET of
// the store at $ROOT for containers $PREFIX-0, $PREFIX-1, ..., printing
// each address as it is recorded.
func leaseHelper() int {
	m, err := openTestStore(os.Getenv("ROOT"), os.Getenv("TABLE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("N"))
	for i := 0; n < 0 || i < n; i++ {
		ep, err := m.lease(os.Getenv("NET"), fmt.Sprintf("%s-%d", os.Getenv("PREFIX"), i), AttachOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(ep.IP())
	}
	return 0
}

// lease is Attach without the kernel: the store's half, for tests.
func (m *Manager) lease(netName, containerID string, opts AttachOptions) (*Endpoint, error) {
	reqs, err := portRequests(opts.PortBindings)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ep, _, err := m.reserve(netName, containerID, opts, reqs, "")
	return ep, err
}

// openTestStore opens a store whose host objects carry test names and
// whose route list is fixed, so nothing real is read or touched.
func openTestStore(root, table string) (*Manager, error) {
	m, err := Open(Config{Root: root, Table: table, DefaultBridge: "btdefault0"})
	if err != nil {
		return nil, err
	}
	m.rts = func() ([]Route, error) {
		return []Route{{Dst: netip.MustParsePrefix("10.89.0.0/16"), Device: "eth9"}, {Dst: netip.MustParsePrefix("172.16.0.0/12"), Device: "tun0"}}, nil
	}
	return m, nil
}

func testStore(t *testing.T) *Manager {
	t.Helper()
	m, err := openTestStore(t.TempDir(), fmt.Sprintf("berth_unit_%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStoreNetworks(t *testing.T) {
	ctx := context.Background()
	m := testStore(t)
	m.rts = func() ([]Route, error) {
		return []Route{{Dst: netip.MustParsePrefix("10.89.0.0/16"), Device: "eth9"}}, nil
	}
	nets, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nets {
		names = append(names, n.Name+"/"+n.Driver)
	}
	if strings.Join(names, " ") != "bridge/bridge host/host none/null" {
		t.Fatalf("predefined networks: %v", names)
	}
	def, err := m.Get("bridge")
	if err != nil {
		t.Fatal(err)
	}
	// 10.89.0.0/16 is a host route here: the default falls to the next.
	if def.Subnet.String() != "10.90.0.0/16" || def.Gateway.String() != "10.90.0.1" || def.Bridge != "btdefault0" {
		t.Fatalf("default network %+v", def)
	}
	again, _ := m.List()
	if again[0].ID != def.ID {
		t.Fatal("the default network was made twice")
	}

	front, err := m.Create(ctx, CreateOptions{Name: "front", Labels: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if front.Subnet.String() != "10.91.0.0/16" || front.Bridge != "br-"+front.ID[:12] {
		t.Fatalf("front %+v", front)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "back", Subnet: "10.199.3.0/24", Gateway: "10.199.3.254", Internal: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    CreateOptions
		want string
	}{
		{CreateOptions{Name: "front"}, "network with name front already exists"},
		{CreateOptions{Name: "x", Subnet: "10.91.5.0/24"}, "subnet 10.91.5.0/24 overlaps with network front"},
		{CreateOptions{Name: "x", Subnet: "10.89.0.0/24"}, "subnet 10.89.0.0/24 overlaps with the route 10.89.0.0/16 dev eth9"},
		{CreateOptions{Name: "x", Gateway: "10.1.1.1"}, "every ip-range or gateway must have a corresponding subnet"},
		{CreateOptions{Name: "x", Driver: "macvlan"}, "not supported"},
		{CreateOptions{Name: "-x"}, "invalid network name"},
		{CreateOptions{Name: "x", Options: map[string]string{OptBridgeName: "btdefault0"}}, "already used by network bridge"},
	} {
		if _, err := m.Create(ctx, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	if n, err := m.Get(front.ID[:6]); err != nil || n.Name != "front" {
		t.Fatalf("lookup by ID prefix: %v %v", n, err)
	}
	if _, err := m.Get("nope"); !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "network nope not found" {
		t.Fatalf("missing network: %v", err)
	}
	if err := m.Remove(ctx, "bridge"); err == nil || err.Error() != "bridge is a pre-defined network and cannot be removed" {
		t.Fatalf("rm bridge: %v", err)
	}

	if _, err := m.lease("back", "c1", AttachOptions{Name: "/web"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "back"); err == nil || err.Error() != "error while removing network: network back has active endpoints" {
		t.Fatalf("rm with endpoints: %v", err)
	}
	eps, err := m.Endpoints("back")
	if err != nil || len(eps) != 1 || eps[0].IP().String() != "10.199.3.1" || eps[0].ContainerName != "web" {
		// The gateway is .254 here, so .1 is a container's.
		t.Fatalf("endpoints %+v %v", eps, err)
	}
	n, _ := m.Get("back")
	in := Inspect(n, eps)
	data, _ := json.Marshal(in)
	for _, want := range []string{`"Subnet":"10.199.3.0/24","Gateway":"10.199.3.254"`, `"Internal":true`, `"IPv4Address":"10.199.3.1/24"`, `"Name":"web"`, `"Scope":"local"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("inspect lacks %s: %s", want, data)
		}
	}

	removed, err := m.Prune(ctx, nil)
	if err != nil || strings.Join(removed, " ") != "front" {
		t.Fatalf("prune: %v %v", removed, err)
	}
	if _, err := m.Get("front"); err == nil {
		t.Fatal("front survived prune")
	}
}

func TestLeasesConcurrentGoroutines(t *testing.T) {
	m := testStore(t)
	if _, err := m.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.199.4.0/24"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[netip.Addr]string{}
	errs := make(chan error, 100)
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				ep, err := m.lease("n", id, AttachOptions{})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if other, dup := seen[ep.IP()]; dup {
					errs <- fmt.Errorf("%s given to %s and %s", ep.IP(), other, id)
				}
				seen[ep.IP()] = id
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkLeases(t, m, 100)
}

// checkLeases reads the store as it is on disk: whole, n leases, no
// address twice.
func checkLeases(t *testing.T, m *Manager, n int) *state {
	t.Helper()
	st, err := m.loadState()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, e := range st.Endpoints {
		key := e.NetworkID + "/" + e.IP().String()
		if other, dup := seen[key]; dup {
			t.Fatalf("%s leased to %s and %s", e.IP(), other, e.ContainerID)
		}
		seen[key] = e.ContainerID
	}
	if n >= 0 && len(st.Endpoints) != n {
		t.Fatalf("%d leases, want %d", len(st.Endpoints), n)
	}
	return st
}

func helperCmd(t *testing.T, m *Manager, prefix string, n int) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "BERTH_NETWORK_HELPER=1", "ROOT="+filepath.Dir(m.Dir()), "TABLE="+m.cfg.Table,
		"NET=n", "PREFIX="+prefix, "N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	return cmd
}

func TestLeasesConcurrentProcesses(t *testing.T) {
	m := testStore(t)
	if _, err := m.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.199.5.0/24"}); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for _, p := range []string{"a", "b"} {
		cmd := helperCmd(t, m, p, 40)
		cmd.Stdout = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// This process leases at the same time.
	for i := 0; i < 20; i++ {
		if _, err := m.lease("n", fmt.Sprintf("self-%d", i), AttachOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	checkLeases(t, m, 100)
}

func TestLeasesSurviveKill(t *testing.T) {
	m := testStore(t)
	if _, err := m.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.199.8.0/22"}); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(t, m, "dead", -1)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	printed := 0
	for printed < 25 && sc.Scan() {
		printed++
	}
	// Killed mid-stream: possibly inside a write.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	st := checkLeases(t, m, -1)
	if len(st.Endpoints) < printed {
		t.Fatalf("%d leases on disk, %d were reported", len(st.Endpoints), printed)
	}
	ep, err := m.lease("n", "alive", AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st.Endpoints {
		if e.IP() == ep.IP() {
			t.Fatalf("%s handed out again after kill -9", ep.IP())
		}
	}
	if _, err := m.lease("n", "other", AttachOptions{IP: st.Endpoints[0].IP()}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("--ip of a dead container's lease: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: Reconcile (which reads nftables) is left to the root tests")
		return
	}
	// Reconcile frees the dead process's leases and keeps the live one.
	_ = os.WriteFile(filepath.Join(m.Dir(), tmpPrefix+"junk"), nil, 0o600)
	if err := m.Reconcile(context.Background(), []string{"alive"}); err != nil {
		t.Fatal(err)
	}
	st = checkLeases(t, m, 1)
	if st.Endpoints[0].ContainerID != "alive" {
		t.Fatalf("kept %+v", st.Endpoints[0])
	}
	if _, err := os.Stat(filepath.Join(m.Dir(), tmpPrefix+"junk")); err == nil {
		t.Fatal("debris of a killed writer stayed")
	}
	time.Sleep(0)
}

func TestEndpointNames(t *testing.T) {
	st := &state{}
	id := "0123456789abcdef"
	if v := vethName(st, id, "n1"); v != "veth0123456" {
		t.Fatalf("veth %s", v)
	}
	if n := ifNameFor(st, id); n != "eth0" {
		t.Fatalf("ifname %s", n)
	}
	st.Endpoints = append(st.Endpoints, Endpoint{ContainerID: id, NetworkID: "n1", HostIfName: "veth0123456", IfName: "eth0"})
	v2 := vethName(st, id, "n2")
	if v2 == "veth0123456" || len(v2) != 11 || !strings.HasPrefix(v2, "veth") {
		t.Fatalf("second veth %s", v2)
	}
	if n := ifNameFor(st, id); n != "eth1" {
		t.Fatalf("second ifname %s", n)
	}
	// Another container with the same 7-character prefix.
	if v := vethName(st, "0123456ffff", "n1"); v == "veth0123456" {
		t.Fatal("veth name reused")
	}
}

func TestStateSlotsSurviveTornWrite(t *testing.T) {
	m := testStore(t)
	st, err := m.loadState()
	if err != nil || len(st.Endpoints) != 0 {
		t.Fatalf("empty store: %+v %v", st, err)
	}
	for i := 0; i < 3; i++ {
		st.Endpoints = append(st.Endpoints, Endpoint{ContainerID: fmt.Sprint(i)})
		if err := m.saveState(st); err != nil {
			t.Fatal(err)
		}
	}
	// The newest slot is torn half-way, as by a kill -9 inside the write:
	// the one before it is read.
	newest := slotPath(m.Dir(), st.slot)
	b, _ := os.ReadFile(newest)
	if err := os.WriteFile(newest, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := m.loadState()
	if err != nil || len(got.Endpoints) != 2 {
		t.Fatalf("after a torn write: %d endpoints, %v; want the previous 2", len(got.Endpoints), err)
	}
	// The next save goes over the torn slot, not the good one.
	got.Endpoints = append(got.Endpoints, Endpoint{ContainerID: "x"})
	if err := m.saveState(got); err != nil {
		t.Fatal(err)
	}
	again, err := m.loadState()
	if err != nil || len(again.Endpoints) != 3 || again.Endpoints[2].ContainerID != "x" {
		t.Fatalf("after repair: %+v %v", again, err)
	}
}
