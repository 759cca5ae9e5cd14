package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mobynet "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/berth-dev/berth/internal/network/bridge"
)

// These tests make real bridges, veths, namespaces and an nftables table,
// all with names of their own (bt<pid><n>..., table berth_t<pid>_<n>), and
// send traffic only to 127.0.0.1 and the namespaces they made.

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes bridges, veth pairs, network namespaces and nftables rules")
	}
}

var seq atomic.Int32

// kernelStore is a store whose bridges and table exist for this test
// only; cleanup removes them whatever happened.
func kernelStore(t testing.TB) *Manager {
	t.Helper()
	requireRoot(t)
	n := seq.Add(1)
	tag := fmt.Sprintf("%d%d", os.Getpid()%100000, n)
	m, err := Open(Config{Root: t.TempDir(), Table: "berth_t" + tag, DefaultBridge: "btd" + tag})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nets, _ := m.loadNetworks()
		c, err := bridge.Open()
		if err == nil {
			for _, n := range nets {
				if n.Bridge != "" {
					_ = c.Delete(n.Bridge)
				}
			}
			c.Close()
		}
		_ = m.fw.Delete()
	})
	return m
}

// testNetwork creates network name on 10.199.<third>.0/24 with a bridge
// named for this test.
func testNetwork(t testing.TB, m *Manager, name string, third int, internal bool) *Network {
	t.Helper()
	br := fmt.Sprintf("bt%d%s", os.Getpid()%100000, name)
	if len(br) > 15 {
		br = br[:15]
	}
	n, err := m.Create(context.Background(), CreateOptions{
		Name: name, Subnet: fmt.Sprintf("10.199.%d.0/24", third), Internal: internal,
		Options: map[string]string{OptBridgeName: br},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// newNetns makes a network namespace, held by a handle the test closes;
// its path goes through /proc/PID/fd. The thread that made it is thrown
// away, never returned to the Go scheduler's pool.
func newNetns(t testing.TB) (netns.NsHandle, string) {
	t.Helper()
	type res struct {
		ns  netns.NsHandle
		err error
	}
	ch := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.New()
		ch <- res{ns, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(r.ns))
}

// inNetns runs fn on a thread inside ns; sockets fn opens stay in ns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	ch := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is left in ns
		if err := netns.Set(ns); err != nil {
			ch <- err
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// serve listens on port inside ns and answers every connection with msg.
func serve(t testing.TB, ns netns.NsHandle, port int, msg string) {
	t.Helper()
	var l net.Listener
	err := inNetns(ns, func() (err error) {
		l, err = net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	}()
}

// fetch connects to addr (from ns, or from the host when ns is -1) and
// returns what the server said.
func fetch(ns netns.NsHandle, addr string, timeout time.Duration) (string, error) {
	var out string
	dial := func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		b, err := io.ReadAll(c)
		out = string(b)
		return err
	}
	if ns == -1 {
		return out, dial()
	}
	return out, inNetns(ns, dial)
}

// ping sends one ICMP echo from inside ns to dst and waits for the reply.
func ping(ns netns.NsHandle, dst netip.Addr) error {
	return inNetns(ns, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0xbe, Seq: 1, Data: []byte("berth")}}
		b, _ := msg.Marshal(nil)
		if _, err := c.WriteTo(b, &net.IPAddr{IP: net.IP(dst.AsSlice())}); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return err
			}
			reply, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && reply.Type == ipv4.ICMPTypeEchoReply && from.String() == dst.String() {
				return nil
			}
		}
	})
}

func linkExists(t testing.TB, name string) bool {
	t.Helper()
	c, err := bridge.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok, err := c.Exists(name)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// checkClean fails unless the store has no lease, no veth of eps stays
// and the table has no port rule.
func checkClean(t testing.TB, m *Manager, eps ...*Endpoint) {
	t.Helper()
	st, err := m.loadState()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Endpoints) != 0 {
		t.Errorf("leases left: %+v", st.Endpoints)
	}
	for _, e := range eps {
		if linkExists(t, e.HostIfName) {
			t.Errorf("veth %s left", e.HostIfName)
		}
	}
	owners, err := m.fw.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 0 {
		t.Errorf("port rules left: %v", owners)
	}
}

func TestAttachTwoContainersTalk(t *testing.T) {
	ctx := context.Background()
	m := kernelStore(t)
	n := testNetwork(t, m, "talk", 11, false)
	nsA, pathA := newNetns(t)
	nsB, pathB := newNetns(t)

	a, err := m.Attach(ctx, "talk", "aaaaaaa1111", pathA, AttachOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach(ctx, n.ID, "bbbbbbb2222", pathB, AttachOptions{Name: "b", IP: netip.MustParseAddr("10.199.11.50"), Aliases: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.IP().String() != "10.199.11.2" || b.IP().String() != "10.199.11.50" || a.HostIfName != "vethaaaaaaa" || a.IfName != "eth0" {
		t.Fatalf("endpoints %+v %+v", a, b)
	}
	if !linkExists(t, n.Bridge) || !linkExists(t, a.HostIfName) {
		t.Fatal("bridge or veth missing")
	}
	if _, err := m.Attach(ctx, "talk", "ccccccc", pathA, AttachOptions{IP: b.IP()}); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("--ip of a taken address: %v", err)
	}

	if err := ping(nsA, b.IP()); err != nil {
		t.Fatalf("ping a → b: %v", err)
	}
	if err := ping(nsB, n.Gateway); err != nil {
		t.Fatalf("ping b → gateway: %v", err)
	}
	serve(t, nsB, 80, "hello from b")
	if got, err := fetch(nsA, b.IP().String()+":80", 3*time.Second); err != nil || got != "hello from b" {
		t.Fatalf("a fetching from b: %q %v", got, err)
	}

	// The container side: eth0 with the address, the MAC, and the route.
	err = inNetns(nsA, func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if ifc.HardwareAddr.String() != a.MAC || ifc.Flags&net.FlagUp == 0 {
			return fmt.Errorf("eth0 %v %v, want %s", ifc.HardwareAddr, ifc.Flags, a.MAC)
		}
		lo, err := net.InterfaceByName("lo")
		if err != nil || lo.Flags&net.FlagUp == 0 {
			return fmt.Errorf("lo not up: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := m.Detach(ctx, a.ContainerID); err != nil {
		t.Fatal(err)
	}
	if err := m.DetachNetwork(ctx, "talk", b.ContainerID); err != nil {
		t.Fatal(err)
	}
	if err := m.Detach(ctx, "nothing-here"); err != nil {
		t.Fatalf("detach of a container without endpoints: %v", err)
	}
	checkClean(t, m, a, b)
	if err := m.Remove(ctx, "talk"); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, n.Bridge) {
		t.Fatal("bridge left after network rm")
	}
}

func TestPublishedPorts(t *testing.T) {
	ctx := context.Background()
	m := kernelStore(t)
	n := testNetwork(t, m, "pub", 12, false)
	nsA, pathA := newNetns(t)
	nsB, pathB := newNetns(t)
	serve(t, nsB, 80, "hello through the port")
	fixed, err := bindPort("tcp", netip.Addr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	pm := mobynet.PortMap{
		mobynet.MustParsePort("80/tcp"): {{HostIP: lo}, {HostPort: strconv.Itoa(int(fixed))}},
	}
	a, err := m.Attach(ctx, "pub", "aaaaaaa", pathA, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach(ctx, "pub", "bbbbbbb", pathB, AttachOptions{PortBindings: pm})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Ports) != 2 || b.Ports[0].HostPort == 0 {
		t.Fatalf("ports %+v", b.Ports)
	}
	var random uint16
	for _, p := range b.Ports {
		if p.HostIP == lo {
			random = p.HostPort
		}
	}
	// The host, on loopback: plain DNAT would not reach this.
	if got, err := fetch(-1, fmt.Sprintf("127.0.0.1:%d", random), 3*time.Second); err != nil || got != "hello through the port" {
		t.Fatalf("host → 127.0.0.1:%d: %q %v", random, got, err)
	}
	if got, err := fetch(-1, fmt.Sprintf("127.0.0.1:%d", fixed), 3*time.Second); err != nil || got != "hello through the port" {
		t.Fatalf("host → 127.0.0.1:%d: %q %v", fixed, got, err)
	}
	// Another container, through the published port on its gateway.
	if got, err := fetch(nsA, fmt.Sprintf("%s:%d", n.Gateway, fixed), 3*time.Second); err != nil || got != "hello through the port" {
		t.Fatalf("a → gateway:%d: %q %v", fixed, got, err)
	}
	// The container itself (hairpin).
	if got, err := fetch(nsB, fmt.Sprintf("%s:%d", n.Gateway, fixed), 3*time.Second); err != nil || got != "hello through the port" {
		t.Fatalf("b → its own port: %q %v", got, err)
	}

	// A taken host port: a clear error, and nothing half-made.
	_, pathC := newNetns(t)
	taken := mobynet.PortMap{mobynet.MustParsePort("80/tcp"): {{HostPort: strconv.Itoa(int(fixed))}}}
	_, err = m.Attach(ctx, "pub", "ccccccc", pathC, AttachOptions{PortBindings: taken})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", fixed)) {
		t.Fatalf("taken port: %v", err)
	}
	hostL, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostL.Close()
	busy := hostL.Addr().(*net.TCPAddr).Port
	taken = mobynet.PortMap{mobynet.MustParsePort("81/tcp"): {{HostIP: lo, HostPort: strconv.Itoa(busy)}}}
	_, err = m.Attach(ctx, "pub", "ccccccc", pathC, AttachOptions{PortBindings: taken})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("port a host process listens on: %v", err)
	}
	if linkExists(t, "vethccccccc") {
		t.Fatal("veth left by a failed attach")
	}
	if eps, _ := m.Endpoints("pub"); len(eps) != 2 {
		t.Fatalf("a failed attach left a lease: %+v", eps)
	}

	if err := m.Detach(ctx, b.ContainerID); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(-1, fmt.Sprintf("127.0.0.1:%d", random), 300*time.Millisecond); err == nil {
		t.Fatal("the port still answers after detach")
	}
	if err := m.Detach(ctx, a.ContainerID); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, a, b)
}

func TestNetworksIsolated(t *testing.T) {
	ctx := context.Background()
	m := kernelStore(t)
	testNetwork(t, m, "one", 13, false)
	testNetwork(t, m, "two", 14, false)
	inner := testNetwork(t, m, "inner", 15, true)
	nsA, pathA := newNetns(t)
	nsB, pathB := newNetns(t)
	nsC, pathC := newNetns(t)
	a, err := m.Attach(ctx, "one", "aaaaaaa", pathA, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Attach(ctx, "two", "bbbbbbb", pathB, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Attach(ctx, "inner", "ccccccc", pathC, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, nsB, 80, "b")
	serve(t, nsC, 80, "c")
	if _, err := fetch(nsA, b.IP().String()+":80", 500*time.Millisecond); err == nil {
		t.Fatal("network one reached network two")
	}
	if _, err := fetch(nsA, c.IP().String()+":80", 500*time.Millisecond); err == nil {
		t.Fatal("network one reached an internal network")
	}
	if err := ping(nsC, inner.Gateway); err != nil {
		t.Fatalf("internal network's own gateway: %v", err)
	}
	// A second network for one container: eth1, no second default route.
	b2, err := m.Attach(ctx, "one", "bbbbbbb", pathB, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b2.IfName != "eth1" || b2.HostIfName == b.HostIfName {
		t.Fatalf("second endpoint %+v", b2)
	}
	if got, err := fetch(nsA, b2.IP().String()+":80", 3*time.Second); err != nil || got != "b" {
		t.Fatalf("a → b on the shared network: %q %v", got, err)
	}
	for _, id := range []string{a.ContainerID, b.ContainerID, c.ContainerID} {
		if err := m.Detach(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	checkClean(t, m, a, b, b2, c)
}

func TestReconcileAfterCrash(t *testing.T) {
	ctx := context.Background()
	m := kernelStore(t)
	n := testNetwork(t, m, "crash", 16, false)
	_, pathA := newNetns(t)
	_, pathB := newNetns(t)
	pm := mobynet.PortMap{mobynet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	dead, err := m.Attach(ctx, "crash", "deaddeadbeef", pathA, AttachOptions{PortBindings: pm})
	if err != nil {
		t.Fatal(err)
	}
	live, err := m.Attach(ctx, "crash", "1111111live", pathB, AttachOptions{PortBindings: pm})
	if err != nil {
		t.Fatal(err)
	}
	// What a crash between steps leaves: a veth no record names, and a
	// rule no endpoint owns.
	c, err := bridge.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nsX, _ := newNetns(t)
	br, _, err := c.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, 24), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddVeth("vethorphan1", br, nsX, "eth0", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete("vethorphan1") })

	// Someone flushed the ruleset: Reconcile writes the table again.
	if err := m.fw.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(ctx, []string{live.ContainerID}); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, dead.HostIfName) || linkExists(t, "vethorphan1") {
		t.Fatal("veths of gone containers left")
	}
	if !linkExists(t, live.HostIfName) {
		t.Fatal("the live container's veth was removed")
	}
	if eps, _ := m.Endpoints("crash"); len(eps) != 1 || eps[0].ContainerID != live.ContainerID {
		t.Fatalf("leases after reconcile: %+v", eps)
	}
	if ok, _ := m.fw.Exists(); !ok {
		t.Fatal("the table was not written again")
	}
	// The live container's port comes back on its next attach (a restart).
	live2, err := m.Attach(ctx, "crash", live.ContainerID, pathB, AttachOptions{PortBindings: pm})
	if err != nil {
		t.Fatal(err)
	}
	if live2.IP() != live.IP() {
		t.Fatalf("re-attach moved %s to %s", live.IP(), live2.IP())
	}
	if err := m.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, dead, live)
}

// BenchmarkAttach measures what bridge networking adds to a container
// start: Attach into a fresh namespace (made outside the timer), with and
// without a published port. Detach is timed in BenchmarkDetach.
func BenchmarkAttach(b *testing.B) {
	for _, ports := range []bool{false, true} {
		b.Run(fmt.Sprintf("ports=%v", ports), func(b *testing.B) {
			benchAttach(b, ports, false)
		})
	}
}

// BenchmarkDetach times Detach of a container whose namespace still
// lives (network disconnect): the kernel's veth deletion dominates.
func BenchmarkDetach(b *testing.B) { benchAttach(b, true, true) }

// BenchmarkRelease times Release after the container's namespace is gone
// (the stop and rm path): rules and leases only. With a published port it
// pays the kernel's nftables deletion (a grace period per transaction).
func BenchmarkRelease(b *testing.B) {
	for _, ports := range []bool{false, true} {
		b.Run(fmt.Sprintf("ports=%v", ports), func(b *testing.B) { benchRelease(b, ports) })
	}
}

func benchRelease(b *testing.B, ports bool) {
	ctx := context.Background()
	m := kernelStore(b)
	testNetwork(b, m, "bench", 17, false)
	var opts AttachOptions
	if ports {
		opts.PortBindings = mobynet.PortMap{mobynet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, path := newNetnsQuiet(b)
		id := fmt.Sprintf("%07x%d", i, i)
		if _, err := m.Attach(ctx, "bench", id, path, opts); err != nil {
			b.Fatal(err)
		}
		ns.Close()
		b.StartTimer()
		if err := m.Release(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := m.Reconcile(ctx, nil); err != nil {
		b.Fatal(err)
	}
}

func benchAttach(b *testing.B, ports, timeDetach bool) {
	ctx := context.Background()
	m := kernelStore(b)
	testNetwork(b, m, "bench", 17, false)
	var opts AttachOptions
	if ports {
		opts.PortBindings = mobynet.PortMap{mobynet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
	}
	// Warm: the bridge and the table exist, as for every container but
	// the first.
	_, path := newNetns(b)
	if _, err := m.Attach(ctx, "bench", "warm", path, opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns, path := newNetnsQuiet(b)
		id := fmt.Sprintf("%07x%d", i, i)
		if !timeDetach {
			b.StartTimer()
		}
		if _, err := m.Attach(ctx, "bench", id, path, opts); err != nil {
			b.Fatal(err)
		}
		if timeDetach {
			b.StartTimer()
		} else {
			b.StopTimer()
		}
		if err := m.Detach(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ns.Close()
		b.StartTimer()
	}
	b.StopTimer()
	_ = m.Detach(ctx, "warm")
}

// newNetnsQuiet is newNetns without a cleanup per namespace (the
// benchmark closes each itself).
func newNetnsQuiet(b *testing.B) (netns.NsHandle, string) {
	ch := make(chan netns.NsHandle)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		ch <- ns
	}()
	select {
	case ns := <-ch:
		return ns, fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
	case err := <-errc:
		b.Fatal(err)
	}
	return -1, ""
}

func TestParallelAttach(t *testing.T) {
	ctx := context.Background()
	m := kernelStore(t)
	testNetwork(t, m, "par", 19, false)
	const n = 30
	paths := make([]string, n)
	for i := range paths {
		_, paths[i] = newNetns(t)
	}
	type res struct {
		ep  *Endpoint
		err error
	}
	ch := make(chan res, n)
	for i := 0; i < n; i++ {
		go func() {
			ep, err := m.Attach(ctx, "par", fmt.Sprintf("%07x-par", i), paths[i], AttachOptions{
				PortBindings: mobynet.PortMap{mobynet.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}},
			})
			ch <- res{ep, err}
		}()
	}
	ips, ports := map[netip.Addr]bool{}, map[uint16]bool{}
	var eps []*Endpoint
	for i := 0; i < n; i++ {
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		if ips[r.ep.IP()] || ports[r.ep.Ports[0].HostPort] {
			t.Fatalf("address %s or port %d given twice", r.ep.IP(), r.ep.Ports[0].HostPort)
		}
		ips[r.ep.IP()], ports[r.ep.Ports[0].HostPort] = true, true
		eps = append(eps, r.ep)
	}
	if owners, _ := m.fw.Owners(); len(owners) != n {
		t.Fatalf("%d port rules, want %d", len(owners), n)
	}
	if err := m.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkClean(t, m, eps...)
}
