// Package bridge makes the links of berth's bridge networks over netlink:
// the Linux bridge with its gateway address, and the veth pairs whose peer
// lives in a container's network namespace.
package bridge

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Conn is a netlink connection in the caller's network namespace (the
// host's). It is not safe for concurrent use.
type Conn struct{ h *netlink.Handle }

// Open opens one route netlink socket, reused for every request.
func Open() (*Conn, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket: %w", err)
	}
	return &Conn{h: h}, nil
}

// Close closes the socket.
func (c *Conn) Close() { c.h.Close() }

// Bridge is what a veth needs of its bridge.
type Bridge struct {
	Name  string
	Index int
	MTU   int
}

// IsNotFound reports whether err says a link does not exist.
func IsNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// EnsureBridge returns bridge name, creating it when missing: up, with
// gw (the gateway address and the subnet's length), mtu when not 0, and
// route_localnet on so that DNAT from 127.0.0.1 can leave through it.
// created says whether it was made now.
func (c *Conn) EnsureBridge(name string, gw netip.Prefix, mtu int) (br Bridge, created bool, err error) {
	l, err := c.h.LinkByName(name)
	if err == nil {
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 {
			if err := c.h.LinkSetUp(l); err != nil {
				return Bridge{}, false, fmt.Errorf("set bridge %s up: %w", name, err)
			}
		}
		if l.Type() != "bridge" {
			return Bridge{}, false, fmt.Errorf("link %s exists and is a %s, not a bridge", name, l.Type())
		}
		return Bridge{Name: name, Index: a.Index, MTU: a.MTU}, false, nil
	}
	if !IsNotFound(err) {
		return Bridge{}, false, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	attrs.MTU = mtu
	// A fixed MAC: a bridge otherwise takes its lowest port's, which
	// changes as containers come and go and confuses their ARP caches.
	attrs.HardwareAddr = randomMAC()
	if err := c.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return Bridge{}, false, fmt.Errorf("create bridge %s: %w", name, err)
	}
	l, err = c.h.LinkByName(name)
	if err != nil {
		return Bridge{}, false, fmt.Errorf("create bridge %s: %w", name, err)
	}
	undo := func(err error) (Bridge, bool, error) {
		_ = c.h.LinkDel(l)
		return Bridge{}, false, err
	}
	if err := c.h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(gw)}); err != nil && !errors.Is(err, unix.EEXIST) {
		return undo(fmt.Errorf("add address %s to bridge %s: %w", gw, name, err))
	}
	if err := sysctl(filepath.Join("net/ipv4/conf", name, "route_localnet"), "1"); err != nil {
		return undo(err)
	}
	if err := c.h.LinkSetUp(l); err != nil {
		return undo(fmt.Errorf("set bridge %s up: %w", name, err))
	}
	return Bridge{Name: name, Index: l.Attrs().Index, MTU: l.Attrs().MTU}, true, nil
}

// EnableForwarding turns on IPv4 forwarding, without which nothing leaves
// a bridge (docker does the same).
func EnableForwarding() error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	return sysctl("net/ipv4/ip_forward", "1")
}

// AddVeth creates the pair host ↔ peer in one request: host joins br, up,
// with hairpin on (a container reaches its own published port); peer is
// made directly inside the namespace ns with its final name and mac.
func (c *Conn) AddVeth(host string, br Bridge, ns netns.NsHandle, peer string, mac net.HardwareAddr) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = host
	attrs.MTU = br.MTU
	attrs.MasterIndex = br.Index
	attrs.Flags = net.FlagUp
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: peer, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(ns), PeerTxQLen: -1}
	if err := c.h.LinkAdd(v); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create veth pair %s: a link named %s or %s exists: %w", host, host, peer, err)
		}
		_ = c.Delete(host)
		return fmt.Errorf("create veth pair %s: %w", host, err)
	}
	if err := c.h.LinkSetHairpin(v, true); err != nil {
		_ = c.Delete(host)
		return fmt.Errorf("set hairpin on %s: %w", host, err)
	}
	return nil
}

// Delete removes link name; one that does not exist is no error. For a
// veth the peer goes with it; for a bridge its ports are let go.
func (c *Conn) Delete(name string) error {
	l, err := c.h.LinkByName(name)
	if err != nil {
		if IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := c.h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Exists reports whether link name exists.
func (c *Conn) Exists(name string) (bool, error) {
	_, err := c.h.LinkByName(name)
	if err == nil {
		return true, nil
	}
	if IsNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("look up link %s: %w", name, err)
}

// Ports lists the names of the links enslaved to bridge (none when the
// bridge does not exist).
func (c *Conn) Ports(bridge string) ([]string, error) {
	br, err := c.h.LinkByName(bridge)
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up bridge %s: %w", bridge, err)
	}
	var links []netlink.Link
	for try := 0; ; try++ {
		links, err = c.h.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 3 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// Route is one IPv4 route of the main table.
type Route struct {
	Dst    netip.Prefix
	Device string
}

// Routes lists the main table's IPv4 routes with their devices.
func (c *Conn) Routes() ([]Route, error) {
	var routes []netlink.Route
	var err error
	for try := 0; ; try++ {
		routes, err = c.h.RouteList(nil, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 3 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	names := map[int]string{}
	out := make([]Route, 0, len(routes))
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		dev, ok := names[r.LinkIndex]
		if !ok && r.LinkIndex != 0 {
			if l, err := c.h.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			names[r.LinkIndex] = dev
		}
		out = append(out, Route{Dst: netip.PrefixFrom(a.Unmap(), ones), Device: dev})
	}
	return out, nil
}

// ConfigureNetns sets up the container's side inside ns: loopback up,
// addr on ifName, ifName up, and (with defaultRoute: the container's first
// network, as docker's) the default route through gw. It works
// through a netlink socket opened inside ns; the calling thread stays in
// its own namespace.
func ConfigureNetns(ns netns.NsHandle, ifName string, addr netip.Prefix, gw netip.Addr, defaultRoute bool) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink socket in the container's namespace: %w", err)
	}
	defer h.Close()
	// Loopback is always the first link of a network namespace.
	if err := h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo"}}); err != nil {
		return fmt.Errorf("set lo up in the container: %w", err)
	}
	l, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s in the container: %w", ifName, err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("add address %s to %s in the container: %w", addr, ifName, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up in the container: %w", ifName, err)
	}
	if !defaultRoute {
		return nil
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(gw.AsSlice())}); err != nil {
		return fmt.Errorf("add default route via %s in the container: %w", gw, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)}
}

func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
	return mac
}

// sysctl writes value to /proc/sys/key.
func sysctl(key, value string) error {
	if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
