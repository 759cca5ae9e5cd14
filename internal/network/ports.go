package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	mobynet "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
)

// portRequest is one -p binding before a host port is chosen: a host port
// range of [Low, High], or 0/0 for any free port.
type portRequest struct {
	Proto     string
	HostIP    netip.Addr // invalid: all host addresses
	Low, High uint16
	Port      uint16
}

// portRequests flattens docker's PortMap into requests, in a stable order.
func portRequests(pm mobynet.PortMap) ([]portRequest, error) {
	var out []portRequest
	for port, bindings := range pm {
		proto := string(port.Proto())
		switch proto {
		case "tcp", "udp", "sctp":
		default:
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid protocol %q for port %s", proto, port))
		}
		if len(bindings) == 0 {
			bindings = []mobynet.PortBinding{{}}
		}
		for _, b := range bindings {
			r := portRequest{Proto: proto, Port: port.Num()}
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				ip := b.HostIP.Unmap()
				if !ip.Is4() {
					return nil, errdefs.NotImplemented(fmt.Errorf("publish %s on %s: IPv6 host addresses are not supported yet", port, ip))
				}
				r.HostIP = ip
			} else if b.HostIP.IsValid() && b.HostIP.Is6() {
				// "[::]:8080:80" asks for IPv6 only; berth's NAT is IPv4.
				return nil, errdefs.NotImplemented(fmt.Errorf("publish %s on [::]: IPv6 host addresses are not supported yet", port))
			}
			if b.HostPort != "" {
				lo, hi, err := parsePortRange(b.HostPort)
				if err != nil {
					return nil, err
				}
				r.Low, r.High = lo, hi
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b portRequest) int {
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		if a.Proto != b.Proto {
			return strings.Compare(a.Proto, b.Proto)
		}
		return int(a.Low) - int(b.Low)
	})
	return out, nil
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h := l
	var err2 error
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, errdefs.InvalidArgument(fmt.Errorf("invalid host port %q: a port or range such as 8000-8010 of 1-65535", s))
	}
	return uint16(l), uint16(h), nil
}

// hostAddr prints a binding's host address as docker does.
func hostAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return "0.0.0.0"
	}
	return ip.String()
}

// clash reports whether two mappings would claim the same host port.
func clash(a, b PortMapping) bool {
	return a.Proto == b.Proto && a.HostPort == b.HostPort &&
		(!a.HostIP.IsValid() || !b.HostIP.IsValid() || a.HostIP == b.HostIP)
}

// portBinder tests that the host can bind a port (nothing else listens on
// it); bindPort is the real one, tests replace it.
type portBinder func(proto string, ip netip.Addr, port uint16) (uint16, error)

// bindPort binds ip:port for proto and closes it again, returning the port
// (the kernel's pick for port 0). SCTP is taken on trust.
func bindPort(proto string, ip netip.Addr, port uint16) (uint16, error) {
	addr := net.JoinHostPort(hostAddr(ip), strconv.Itoa(int(port)))
	switch proto {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return 0, err
		}
		got := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return uint16(got), nil
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, err
		}
		got := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		return uint16(got), nil
	}
	if port == 0 {
		// No SCTP sockets in Go: borrow a free TCP port number.
		return bindPort("tcp", ip, 0)
	}
	return port, nil
}

// assignPorts picks a host port for every request, avoiding reserved
// (other containers' mappings) and ports the host already uses. It makes
// nothing: a failure leaves no trace.
func assignPorts(reqs []portRequest, reserved []PortMapping, bind portBinder) ([]PortMapping, error) {
	var out []PortMapping
	taken := func(m PortMapping) bool {
		for _, r := range reserved {
			if clash(r, m) {
				return true
			}
		}
		for _, r := range out {
			if clash(r, m) {
				return true
			}
		}
		return false
	}
	for _, r := range reqs {
		m := PortMapping{Proto: r.Proto, HostIP: r.HostIP, Port: r.Port}
		switch {
		case r.Low == 0:
			// A random port: the kernel's pick from its ephemeral range,
			// retried while it hits a port reserved for a stopped bind.
			var err error
			for try := 0; try < 64; try++ {
				if m.HostPort, err = bind(r.Proto, r.HostIP, 0); err != nil {
					return nil, errdefs.Unavailable(fmt.Errorf("find a free host port for %d/%s: %w", r.Port, r.Proto, err))
				}
				if !taken(m) {
					break
				}
				m.HostPort = 0
			}
			if m.HostPort == 0 {
				return nil, errdefs.Unavailable(fmt.Errorf("find a free host port for %d/%s: every port tried is reserved", r.Port, r.Proto))
			}
		case r.Low == r.High:
			m.HostPort = r.Low
			if taken(m) {
				return nil, errdefs.Conflict(fmt.Errorf("Bind for %s:%d failed: port is already allocated", hostAddr(r.HostIP), r.Low))
			}
			if _, err := bind(r.Proto, r.HostIP, r.Low); err != nil {
				return nil, errdefs.Conflict(fmt.Errorf("failed to bind host port %s:%d/%s: %w", hostAddr(r.HostIP), r.Low, r.Proto, bindCause(err)))
			}
		default:
			for p := int(r.Low); p <= int(r.High); p++ {
				m.HostPort = uint16(p)
				if taken(m) {
					continue
				}
				if _, err := bind(r.Proto, r.HostIP, m.HostPort); err == nil {
					break
				}
				m.HostPort = 0
			}
			if m.HostPort == 0 || taken(m) {
				return nil, errdefs.Conflict(fmt.Errorf("Bind for %s:%d-%d failed: every port of the range is already allocated", hostAddr(r.HostIP), r.Low, r.High))
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// bindCause shortens the usual bind errors to their errno's words.
func bindCause(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
