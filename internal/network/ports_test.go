package network

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	mobynet "github.com/moby/moby/api/types/network"
)

// fakeBinder binds nothing: busy ports fail, port 0 hands out next.
type fakeBinder struct {
	busy map[uint16]bool
	next uint16
}

func (f *fakeBinder) bind(proto string, ip netip.Addr, port uint16) (uint16, error) {
	if port == 0 {
		f.next++
		return f.next, nil
	}
	if f.busy[port] {
		return 0, fmt.Errorf("listen: %w", syscall.EADDRINUSE)
	}
	return port, nil
}

func portMap(t *testing.T, specs map[string][]mobynet.PortBinding) mobynet.PortMap {
	t.Helper()
	pm := mobynet.PortMap{}
	for k, v := range specs {
		pm[mobynet.MustParsePort(k)] = v
	}
	return pm
}

func TestAssignPorts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	pm := portMap(t, map[string][]mobynet.PortBinding{
		"80/tcp": {{HostIP: lo, HostPort: "8080"}, {HostPort: ""}},
		"53/udp": {{HostPort: "5353"}},
		"90/tcp": {{HostPort: "9000-9002"}},
	})
	reqs, err := portRequests(pm)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBinder{busy: map[uint16]bool{9000: true}, next: 40000}
	reserved := []PortMapping{{Proto: "tcp", HostPort: 40001}, {Proto: "tcp", HostPort: 9001, HostIP: lo}}
	got, err := assignPorts(reqs, reserved, f.bind)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, m := range got {
		s = append(s, fmt.Sprintf("%s:%d->%d/%s", hostAddr(m.HostIP), m.HostPort, m.Port, m.Proto))
	}
	want := "0.0.0.0:5353->53/udp 0.0.0.0:40002->80/tcp 127.0.0.1:8080->80/tcp 0.0.0.0:9002->90/tcp"
	if strings.Join(s, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(s, " "), want)
	}
	back := PortMap(got)
	if len(back[mobynet.MustParsePort("80/tcp")]) != 2 {
		t.Fatalf("PortMap: %v", back)
	}
}

func TestAssignPortsConflicts(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("127.0.0.2")
	for _, tc := range []struct {
		name     string
		binding  mobynet.PortBinding
		reserved []PortMapping
		busy     uint16
		want     string
	}{
		{"reserved on all addresses", mobynet.PortBinding{HostIP: lo, HostPort: "8080"}, []PortMapping{{Proto: "tcp", HostPort: 8080}}, 0,
			"Bind for 127.0.0.1:8080 failed: port is already allocated"},
		{"reserved on the same address", mobynet.PortBinding{HostPort: "8080"}, []PortMapping{{Proto: "tcp", HostPort: 8080, HostIP: lo}}, 0,
			"Bind for 0.0.0.0:8080 failed: port is already allocated"},
		{"host listener", mobynet.PortBinding{HostPort: "8080"}, nil, 8080,
			"failed to bind host port 0.0.0.0:8080/tcp: address already in use"},
		{"range full", mobynet.PortBinding{HostPort: "8080-8081"}, []PortMapping{{Proto: "tcp", HostPort: 8080}}, 8081,
			"Bind for 0.0.0.0:8080-8081 failed"},
		{"other address is free", mobynet.PortBinding{HostIP: other, HostPort: "8080"}, []PortMapping{{Proto: "tcp", HostPort: 8080, HostIP: lo}}, 0, ""},
		{"other protocol is free", mobynet.PortBinding{HostPort: "8080"}, []PortMapping{{Proto: "udp", HostPort: 8080}}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, err := portRequests(portMap(t, map[string][]mobynet.PortBinding{"80/tcp": {tc.binding}}))
			if err != nil {
				t.Fatal(err)
			}
			f := &fakeBinder{busy: map[uint16]bool{tc.busy: true}}
			_, err = assignPorts(reqs, tc.reserved, f.bind)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPortRequestsRefuse(t *testing.T) {
	for name, b := range map[string]mobynet.PortBinding{
		"ipv6":       {HostIP: netip.MustParseAddr("::1"), HostPort: "80"},
		"ipv6 any":   {HostIP: netip.IPv6Unspecified(), HostPort: "80"},
		"bad port":   {HostPort: "x"},
		"zero port":  {HostPort: "0"},
		"bad range":  {HostPort: "90-80"},
		"big number": {HostPort: "70000"},
	} {
		if _, err := portRequests(portMap(t, map[string][]mobynet.PortBinding{"80/tcp": {b}})); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBindPortFindsListener(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	p, err := bindPort("tcp", lo, 0)
	if err != nil || p == 0 {
		t.Fatalf("random port: %d %v", p, err)
	}
	if _, err := bindPort("udp", lo, 0); err != nil {
		t.Fatal(err)
	}
}
