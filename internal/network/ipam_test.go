package network

import (
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestAllocate(t *testing.T) {
	n := &Network{Name: "t", Subnet: pfx("10.199.0.0/29"), Gateway: netip.MustParseAddr("10.199.0.1")}
	taken := map[netip.Addr]string{}
	var got []string
	var last netip.Addr
	for {
		a, err := allocate(n, taken, netip.Addr{}, last)
		if err != nil {
			if !errdefs.Is(err, errdefs.KindUnavailable) {
				t.Fatalf("exhaustion error of kind %v: %v", errdefs.KindOf(err), err)
			}
			break
		}
		taken[a] = "c"
		last = a
		got = append(got, a.String())
	}
	want := []string{"10.199.0.2", "10.199.0.3", "10.199.0.4", "10.199.0.5", "10.199.0.6"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}

	// Round robin: a freed address waits until the search comes round.
	delete(taken, netip.MustParseAddr("10.199.0.4"))
	delete(taken, netip.MustParseAddr("10.199.0.2"))
	if a, _ := allocate(n, taken, netip.Addr{}, netip.MustParseAddr("10.199.0.3")); a.String() != "10.199.0.4" {
		t.Fatalf("after .3: %s, want .4", a)
	}
	if a, _ := allocate(n, taken, netip.Addr{}, netip.MustParseAddr("10.199.0.4")); a.String() != "10.199.0.2" {
		t.Fatalf("after .4 with .5 and .6 taken: %s, want .2 (wrapped)", a)
	}
	if a, _ := allocate(n, taken, netip.Addr{}, netip.MustParseAddr("10.199.0.6")); a.String() != "10.199.0.2" {
		t.Fatalf("after the last address: %s, want .2", a)
	}
	for _, tc := range []struct {
		ip   string
		kind errdefs.Kind
	}{
		{"10.199.0.3", errdefs.KindConflict},
		{"10.199.1.3", errdefs.KindInvalidArgument},
		{"10.199.0.1", errdefs.KindInvalidArgument},
		{"10.199.0.7", errdefs.KindInvalidArgument},
		{"10.199.0.4", errdefs.KindUnknown},
	} {
		_, err := allocate(n, taken, netip.MustParseAddr(tc.ip), netip.Addr{})
		if errdefs.KindOf(err) != tc.kind || tc.kind != errdefs.KindUnknown && err == nil {
			t.Errorf("--ip %s: %v (kind %v), want kind %v", tc.ip, err, errdefs.KindOf(err), tc.kind)
		}
	}
}

func TestMAC(t *testing.T) {
	if m := macFor(netip.MustParseAddr("10.89.0.2")); m != "02:42:0a:59:00:02" {
		t.Errorf("mac %s", m)
	}
	if _, err := parseMAC("01:00:5e:00:00:01"); err == nil {
		t.Error("multicast MAC accepted")
	}
	if m, err := parseMAC("02:AA:bb:cc:dd:ee"); err != nil || m != "02:aa:bb:cc:dd:ee" {
		t.Errorf("mac %s %v", m, err)
	}
}
