package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
)

// allocate picks an address of n's subnet that taken (address → holder)
// does not hold: want when it is valid, else the first free one after
// last (the previous pick), wrapping around. Going round rather than
// taking the lowest free address keeps a just-released address (whose
// old namespace may still be dying, answering ARP) unused for as long as
// possible. The network address, the gateway and the broadcast address
// are never given.
func allocate(n *Network, taken map[netip.Addr]string, want, last netip.Addr) (netip.Addr, error) {
	bcast := broadcast(n.Subnet)
	if want.IsValid() {
		if !want.Is4() || !n.Subnet.Contains(want) {
			return netip.Addr{}, errdefs.InvalidArgument(fmt.Errorf("requested address %s is not in network %s's subnet %s", want, n.Name, n.Subnet))
		}
		if want == n.Subnet.Addr() || want == bcast || want == n.Gateway {
			return netip.Addr{}, errdefs.InvalidArgument(fmt.Errorf("requested address %s is reserved in network %s (network, gateway or broadcast address)", want, n.Name))
		}
		if holder, ok := taken[want]; ok {
			return netip.Addr{}, errdefs.Conflict(fmt.Errorf("address %s is already in use on network %s by container %s", want, n.Name, short(holder)))
		}
		return want, nil
	}
	first := n.Subnet.Addr().Next()
	start := first
	if last.IsValid() && n.Subnet.Contains(last) && last.Next() != bcast {
		start = last.Next()
	}
	a := start
	for {
		if _, ok := taken[a]; !ok && a != n.Gateway {
			return a, nil
		}
		if a = a.Next(); a == bcast {
			a = first
		}
		if a == start {
			break
		}
	}
	return netip.Addr{}, errdefs.Unavailable(fmt.Errorf("no free address left in network %s (subnet %s)", n.Name, n.Subnet))
}

// macFor derives a locally administered MAC from an IPv4 address, as
// docker's 02:42 scheme does: unique within a subnet, stable for an address.
func macFor(ip netip.Addr) string {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}.String()
}

// parseMAC checks a --mac-address value: unicast, well formed.
func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", errdefs.InvalidArgument(fmt.Errorf("invalid MAC address %s", s))
	}
	if hw[0]&1 != 0 {
		return "", errdefs.InvalidArgument(errors.New("invalid MAC address " + s + ": a multicast address cannot name an interface"))
	}
	return hw.String(), nil
}

// short is an ID's first 12 characters, as docker prints them.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
