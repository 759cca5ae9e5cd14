package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/bridge"
	"github.com/berth-dev/berth/internal/network/firewall"
)

// Attach connects container containerID, whose network namespace is at
// netnsPath, to network netName: it leases an address (and host ports),
// records them, makes the bridge if missing, a veth pair into the
// namespace (eth0 for the first network, eth1 ... after), the address and
// default route inside, and the DNAT rules of opts.PortBindings. On error
// nothing of it stays. Attaching a container again to the same network
// (after a crash) replaces the old endpoint and keeps its address.
func (m *Manager) Attach(ctx context.Context, netName, containerID, netnsPath string, opts AttachOptions) (*Endpoint, error) {
	if containerID == "" {
		return nil, errdefs.InvalidArgument(errors.New("attach to a network: no container ID given"))
	}
	reqs, err := portRequests(opts.PortBindings)
	if err != nil {
		return nil, err
	}
	mac := ""
	if opts.MAC != "" {
		if mac, err = parseMAC(opts.MAC); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", netnsPath, err)
	}
	defer ns.Close()

	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ep, nets, err := m.reserve(netName, containerID, opts, reqs, mac)
	if err != nil {
		return nil, err
	}
	if err := m.plumb(ctx, ep, nets, ns); err != nil {
		if uerr := m.undoReserve(ep); uerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, uerr)
		}
		return nil, fmt.Errorf("attach container %s to network %s: %w", short(containerID), ep.NetworkName, err)
	}
	return ep, nil
}

// reserve leases an address, a MAC, interface names and host ports for the
// container on netName and writes them down, before any kernel object
// exists: a kill -9 from here on leaves a lease that Reconcile frees. The
// store's lock must be held.
func (m *Manager) reserve(netName, containerID string, opts AttachOptions, reqs []portRequest, mac string) (*Endpoint, []*Network, error) {
	nets, err := m.networks()
	if err != nil {
		return nil, nil, err
	}
	n, err := lookup(nets, netName)
	if err != nil {
		return nil, nil, err
	}
	if n.Driver != DriverBridge {
		return nil, nil, errdefs.InvalidArgument(fmt.Errorf("container cannot be connected to network %s: it has the %s driver, which takes no endpoints", n.Name, n.Driver))
	}
	st, err := m.loadState()
	if err != nil {
		return nil, nil, err
	}
	want := opts.IP
	if i := st.find(containerID, n.ID); i >= 0 {
		// Left by a crash (or a start after a reboot): take it down and
		// reuse its address unless another one is asked for.
		old := st.Endpoints[i]
		if err := m.teardown(&old, true); err != nil {
			return nil, nil, err
		}
		if !want.IsValid() {
			want = old.IP()
		}
		st.remove(i)
	}
	taken := map[netip.Addr]string{}
	for _, e := range st.onNetwork(n.ID) {
		taken[e.IP()] = e.ContainerID
	}
	ip, err := allocate(n, taken, want, st.Last[n.ID])
	if err != nil {
		return nil, nil, err
	}
	if st.Last == nil {
		st.Last = map[string]netip.Addr{}
	}
	st.Last[n.ID] = ip
	ports, err := assignPorts(reqs, st.ports(), m.bind)
	if err != nil {
		return nil, nil, err
	}
	if mac == "" {
		mac = macFor(ip)
	}
	ep := &Endpoint{
		ContainerID: containerID, ContainerName: strings.TrimPrefix(opts.Name, "/"),
		NetworkID: n.ID, NetworkName: n.Name, EndpointID: newID(),
		Address: netip.PrefixFrom(ip, n.Subnet.Bits()), Gateway: n.Gateway, MAC: mac,
		IfName: ifNameFor(st, containerID), HostIfName: vethName(st, containerID, n.ID),
		Bridge: n.Bridge, Aliases: opts.Aliases, Hostname: opts.Hostname, Ports: ports,
	}
	st.Endpoints = append(st.Endpoints, *ep)
	if err := m.saveState(st); err != nil {
		return nil, nil, err
	}
	return ep, nets, nil
}

// undoReserve takes down what plumb made of ep and drops its lease.
func (m *Manager) undoReserve(ep *Endpoint) error {
	terr := m.teardown(ep, true)
	st, err := m.loadState()
	if err != nil {
		return errors.Join(terr, err)
	}
	if i := st.find(ep.ContainerID, ep.NetworkID); i >= 0 {
		st.remove(i)
	}
	return errors.Join(terr, m.saveState(st))
}

// plumb makes the kernel side of ep: bridge, veth pair, the container's
// address and route, port rules.
func (m *Manager) plumb(ctx context.Context, ep *Endpoint, nets []*Network, ns netns.NsHandle) error {
	n, err := lookup(nets, ep.NetworkID)
	if err != nil {
		return err
	}
	c, err := bridge.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	br, created, err := c.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), n.MTU)
	if err != nil {
		return err
	}
	if created {
		if err := bridge.EnableForwarding(); err != nil {
			return err
		}
		if err := m.syncFirewall(nets); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	hw, _ := net.ParseMAC(ep.MAC)
	err = c.AddVeth(ep.HostIfName, br, ns, ep.IfName, hw)
	if errors.Is(err, unix.EEXIST) {
		// The name is ours in the store: a link that has it is an orphan.
		if err = c.Delete(ep.HostIfName); err == nil {
			err = c.AddVeth(ep.HostIfName, br, ns, ep.IfName, hw)
		}
	}
	if err != nil {
		return err
	}
	if err := bridge.ConfigureNetns(ns, ep.IfName, ep.Address, ep.Gateway, ep.IfName == "eth0"); err != nil {
		return err
	}
	if len(ep.Ports) == 0 {
		return nil
	}
	rules := make([]firewall.Port, len(ep.Ports))
	for i, p := range ep.Ports {
		rules[i] = firewall.Port{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort, IP: ep.IP(), Port: p.Port}
	}
	err = m.fw.AddPorts(ep.owner(), rules)
	if firewall.IsMissing(err) {
		// The table went away under a bridge that stayed (a flushed
		// ruleset): write it again.
		if err = m.syncFirewall(nets); err == nil {
			err = m.fw.AddPorts(ep.owner(), rules)
		}
	}
	return err
}

// owner tags ep's port rules: the container, and the endpoint (a later
// attachment of the same container to the same network has another).
func (e *Endpoint) owner() string { return e.ContainerID + "/" + short(e.EndpointID) }

// teardown removes ep's port rules and, with links, its host veth (the
// peer goes with it).
func (m *Manager) teardown(ep *Endpoint, links bool) error {
	var errs []error
	if links {
		c, err := bridge.Open()
		if err != nil {
			return err
		}
		if err := c.Delete(ep.HostIfName); err != nil {
			errs = append(errs, err)
		}
		c.Close()
	}
	if len(ep.Ports) > 0 {
		owner := ep.owner()
		if _, err := m.fw.RemovePorts(func(o string) bool { return o == owner }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Detach removes every endpoint of containerID: veths, port rules and
// leases. A container without endpoints is no error. Deleting a veth whose
// namespace still lives waits for the kernel (tens of milliseconds of RCU
// grace periods): for a container that has exited, Release is enough.
func (m *Manager) Detach(ctx context.Context, containerID string) error {
	return m.detach(ctx, true, func(e *Endpoint) bool { return e.ContainerID == containerID })
}

// Release frees the port rules and leases of containerID, whose network
// namespace is gone (its processes exited): the kernel deletes the veth
// pairs with the namespace, so rm does not wait for that. A veth that
// lingers (something else held the namespace) is removed by the next
// Attach that wants its name, or by Reconcile.
func (m *Manager) Release(ctx context.Context, containerID string) error {
	return m.detach(ctx, false, func(e *Endpoint) bool { return e.ContainerID == containerID })
}

// DetachNetwork removes containerID's endpoint on network netName.
func (m *Manager) DetachNetwork(ctx context.Context, netName, containerID string) error {
	n, err := m.Get(netName)
	if err != nil {
		return err
	}
	found := false
	err = m.detach(ctx, true, func(e *Endpoint) bool {
		if e.ContainerID == containerID && e.NetworkID == n.ID {
			found = true
			return true
		}
		return false
	})
	if err == nil && !found {
		return errdefs.NotFound(fmt.Errorf("container %s is not connected to network %s", short(containerID), n.Name))
	}
	return err
}

// detach tears down the endpoints match picks (their veths too with
// links) and drops their leases. The kernel work (tens of milliseconds
// for a live veth or an nftables deletion) runs outside the store's lock,
// so other containers start meanwhile; the leases and host ports stay
// recorded until it is done, so nobody else gets them early. An endpoint
// whose teardown fails keeps its lease, for Reconcile to retry.
func (m *Manager) detach(ctx context.Context, links bool, match func(*Endpoint) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	st, err := m.loadState()
	unlock()
	if err != nil {
		return err
	}
	var errs []error
	done := map[string]bool{} // endpoint IDs torn down
	for _, e := range st.Endpoints {
		if !match(&e) {
			continue
		}
		if err := m.teardown(&e, links); err != nil {
			errs = append(errs, fmt.Errorf("detach container %s from network %s: %w", short(e.ContainerID), e.NetworkName, err))
			continue
		}
		done[e.EndpointID] = true
	}
	if len(done) == 0 {
		return errors.Join(errs...)
	}
	unlock, err = m.lock()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer unlock()
	// Read again: others changed the store meanwhile. An endpoint made
	// anew meanwhile (same container, same network) has another ID.
	if st, err = m.loadState(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	st.Endpoints = slices.DeleteFunc(st.Endpoints, func(e Endpoint) bool { return done[e.EndpointID] })
	errs = append(errs, m.saveState(st))
	return errors.Join(errs...)
}

// Reconcile removes what containers that are gone left behind: their
// endpoints' veths, port rules and leases (live holds the IDs of the
// containers whose networking must stay), veths on berth's bridges that no
// endpoint names, and port rules that no endpoint owns. It rewrites the
// shared nftables chains when a bridge exists, so a flushed ruleset comes
// back. live must be taken while no container can start, or a container
// started after it was taken loses its network: ReconcileFunc has no such
// window.
func (m *Manager) Reconcile(ctx context.Context, live []string) error {
	set := map[string]bool{}
	for _, id := range live {
		set[id] = true
	}
	return m.ReconcileFunc(ctx, func(id string) bool { return set[id] })
}

// ReconcileFunc is Reconcile asking alive about each container that has
// endpoints, at the time it looks (under the store's lock, so alive must
// not call back into the Manager). A container whose record exists before
// it attaches is never taken for dead.
func (m *Manager) ReconcileFunc(ctx context.Context, alive func(containerID string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.detach(ctx, true, func(e *Endpoint) bool { return !alive(e.ContainerID) }); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m.removeDebris()
	nets, err := m.loadNetworks()
	if err != nil {
		return err
	}
	st, err := m.loadState()
	if err != nil {
		return err
	}
	veths := map[string]bool{}
	owners := map[string]bool{}
	for _, e := range st.Endpoints {
		veths[e.HostIfName] = true
		owners[e.owner()] = true
	}
	c, err := bridge.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	anyBridge := false
	for _, n := range nets {
		if n.Driver != DriverBridge || n.Bridge == "" {
			continue
		}
		ports, err := c.Ports(n.Bridge)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok, _ := c.Exists(n.Bridge); ok {
			anyBridge = true
		}
		for _, p := range ports {
			if strings.HasPrefix(p, "veth") && !veths[p] {
				errs = append(errs, c.Delete(p))
			}
		}
	}
	if anyBridge {
		errs = append(errs, m.syncFirewall(nets))
	}
	if _, err := m.fw.RemovePorts(func(o string) bool { return !owners[o] }); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeDebris deletes the temporary files a killed writer left.
func (m *Manager) removeDebris() {
	for _, dir := range []string{m.dir, filepath.Join(m.dir, networksDir)} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// ifNameFor is the container's next free interface name: eth0, eth1, ...
func ifNameFor(st *state, containerID string) string {
	used := map[string]bool{}
	for _, e := range st.Endpoints {
		if e.ContainerID == containerID {
			used[e.IfName] = true
		}
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// vethName names the host side "veth" + 7 hex characters: the container
// ID's first, or for a second network (or a clash of prefixes) a hash of
// container and network. Unique among the recorded endpoints.
func vethName(st *state, containerID, networkID string) string {
	used := map[string]bool{}
	for _, e := range st.Endpoints {
		used[e.HostIfName] = true
	}
	sum := sha256.Sum256([]byte(containerID + "/" + networkID))
	h := hex.EncodeToString(sum[:])
	cands := []string{}
	if len(containerID) >= 7 && isHex(containerID[:7]) {
		cands = append(cands, "veth"+containerID[:7])
	}
	for i := 0; i+7 <= len(h); i += 7 {
		cands = append(cands, "veth"+h[i:i+7])
	}
	for _, c := range cands {
		if !used[c] {
			return c
		}
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("veth%07x", i); !used[c] {
			return c
		}
	}
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
