package network

import (
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestOverlapChecks(t *testing.T) {
	nets := []*Network{
		{Name: "bridge", Subnet: pfx("10.89.0.0/16"), Bridge: "berth0"},
		{Name: "front", Subnet: pfx("10.90.1.0/24"), Bridge: "br-front"},
		{Name: "host"},
	}
	routes := []Route{
		{Dst: pfx("192.0.2.0/24"), Device: "eth0"},
		{Dst: pfx("10.89.0.0/16"), Device: "berth0"}, // the network's own route
		{Dst: pfx("0.0.0.0/0"), Device: "eth0"},
	}
	for _, tc := range []struct {
		subnet, want string
	}{
		{"10.91.0.0/16", ""},
		{"10.89.5.0/24", "subnet 10.89.5.0/24 overlaps with network bridge"},
		{"10.0.0.0/8", "subnet 10.0.0.0/8 overlaps with network bridge"},
		{"10.90.0.0/16", "subnet 10.90.0.0/16 overlaps with network front"},
		{"192.0.2.128/25", "subnet 192.0.2.128/25 overlaps with the route 192.0.2.0/24 dev eth0"},
		{"192.0.0.0/8", "subnet 192.0.0.0/8 overlaps with the route 192.0.2.0/24 dev eth0"},
	} {
		t.Run(tc.subnet, func(t *testing.T) {
			err := checkOverlap(pfx(tc.subnet), nets, routes)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPickSubnetSkipsTakenAndForeign(t *testing.T) {
	pool := defaultPool()
	if pool[0] != pfx("10.89.0.0/16") {
		t.Fatalf("pool starts at %s", pool[0])
	}
	for _, p := range pool {
		if overlaps(p, pfx("172.17.0.0/16")) || overlaps(p, pfx("10.88.0.0/16")) {
			t.Fatalf("pool holds %s, which docker or podman use", p)
		}
	}
	nets := []*Network{{Name: "a", Subnet: pfx("10.89.0.0/16")}}
	routes := []Route{{Dst: pfx("10.90.0.0/24"), Device: "wg0"}}
	got, err := pickSubnet(pool, nets, routes)
	if err != nil || got != pfx("10.91.0.0/16") {
		t.Fatalf("got %s, %v; want 10.91.0.0/16", got, err)
	}
	if _, err := pickSubnet(pool[:1], nets, nil); err == nil {
		t.Fatal("an exhausted pool gave a subnet")
	}
}

func TestParseSubnetAndGateway(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"10.199.0.0/24", ""},
		{"10.199.0.1/24", "it should be 10.199.0.0/24"},
		{"bogus", "not an address prefix"},
		{"fd00::/64", "IPv6"},
		{"10.0.0.0/31", "too small"},
	} {
		_, err := parseSubnet(tc.in)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseSubnet(%s): %v, want %q", tc.in, err, tc.err)
		}
	}
	s := pfx("10.199.0.0/24")
	if gw, _ := gatewayFor(s, ""); gw.String() != "10.199.0.1" {
		t.Errorf("default gateway %s", gw)
	}
	if gw, err := gatewayFor(s, "10.199.0.254"); err != nil || gw.String() != "10.199.0.254" {
		t.Errorf("gateway %s %v", gw, err)
	}
	for _, bad := range []string{"10.199.1.1", "10.199.0.0", "10.199.0.255", "x"} {
		if _, err := gatewayFor(s, bad); err == nil {
			t.Errorf("gateway %s accepted", bad)
		}
	}
	if b := broadcast(pfx("10.199.4.0/22")); b.String() != "10.199.7.255" {
		t.Errorf("broadcast %s", b)
	}
}
