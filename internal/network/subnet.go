package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Route is a host route, for the overlap check.
type Route struct {
	Dst    netip.Prefix
	Device string
}

func (r Route) String() string {
	if r.Device == "" {
		return r.Dst.String()
	}
	return r.Dst.String() + " dev " + r.Device
}

// defaultPool lists the subnets berth picks from when none is given, in
// order. It skips docker's 172.17.0.0/16 and podman's 10.88.0.0/16 so berth
// runs beside both. Built on each call: no tables at package init.
func defaultPool() []netip.Prefix {
	var out []netip.Prefix
	for b := 89; b <= 254; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16))
	}
	for b := 18; b <= 31; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16))
	}
	for b := 0; b < 256; b += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(b), 0}), 20))
	}
	return out
}

// overlaps reports whether two prefixes share an address.
func overlaps(a, b netip.Prefix) bool {
	a, b = a.Masked(), b.Masked()
	return a.Contains(b.Addr()) || b.Contains(a.Addr())
}

// checkOverlap refuses subnet when it shares addresses with another
// network or a host route (the default route, which covers everything, and
// routes on the networks' own bridges do not count).
func checkOverlap(subnet netip.Prefix, nets []*Network, routes []Route) error {
	bridges := map[string]bool{}
	for _, n := range nets {
		if n.Bridge != "" {
			bridges[n.Bridge] = true
		}
		if n.Subnet.IsValid() && overlaps(subnet, n.Subnet) {
			return errdefs.Conflict(fmt.Errorf("subnet %s overlaps with network %s", subnet, n.Name))
		}
	}
	for _, r := range routes {
		if r.Dst.Bits() == 0 || bridges[r.Device] || !r.Dst.Addr().Is4() {
			continue
		}
		if overlaps(subnet, r.Dst) {
			return errdefs.Conflict(fmt.Errorf("subnet %s overlaps with the route %s", subnet, r))
		}
	}
	return nil
}

// pickSubnet returns the first subnet of pool that overlaps nothing.
func pickSubnet(pool []netip.Prefix, nets []*Network, routes []Route) (netip.Prefix, error) {
	for _, p := range pool {
		if checkOverlap(p, nets, routes) == nil {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(errors.New("no free subnet left in the default address pools: give one with --subnet"))
}

// parseSubnet checks a --subnet value: IPv4, in canonical form (docker
// refuses 10.1.2.3/24 and names 10.1.2.0/24), with room for a gateway and
// at least one container.
func parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errdefs.InvalidArgument(fmt.Errorf("invalid subnet %s: not an address prefix such as 10.90.0.0/16", s))
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, errdefs.NotImplemented(fmt.Errorf("invalid subnet %s: IPv6 networks are not supported yet", s))
	}
	if p.Masked() != p {
		return netip.Prefix{}, errdefs.InvalidArgument(fmt.Errorf("invalid subnet %s: it should be %s", s, p.Masked()))
	}
	if p.Bits() > 30 {
		return netip.Prefix{}, errdefs.InvalidArgument(fmt.Errorf("invalid subnet %s: too small, the longest prefix is /30", s))
	}
	return p, nil
}

// gatewayFor checks gw (or picks the subnet's first host address when gw
// is empty).
func gatewayFor(subnet netip.Prefix, gw string) (netip.Addr, error) {
	if gw == "" {
		return subnet.Addr().Next(), nil
	}
	a, err := netip.ParseAddr(gw)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errdefs.InvalidArgument(fmt.Errorf("invalid gateway %s: not an IPv4 address", gw))
	}
	if !subnet.Contains(a) || a == subnet.Addr() || a == broadcast(subnet) {
		return netip.Addr{}, errdefs.InvalidArgument(fmt.Errorf("invalid gateway %s: not a host address of subnet %s", gw, subnet))
	}
	return a, nil
}

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
