package caps

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		want Cap
		ok   bool
	}{
		{"CAP_CHOWN", 0, true},
		{"CAP_NET_ADMIN", 12, true},
		{"CAP_SYS_ADMIN", 21, true},
		{"CAP_AUDIT_READ", 37, true},
		{"CAP_CHECKPOINT_RESTORE", 40, true},
		{"cap_net_admin", 0, false}, // runc requires the spec's spelling
		{"NET_ADMIN", 0, false},
		{"CAP_", 0, false},
		{"", 0, false},
		{"CAP_NET_ADMIN ", 0, false},
		{"CAP_12", 0, false},
		{"CAP_BOGUS", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseName(tt.name)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ParseName(%q) = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for c := Cap(0); c <= MaxKnown; c++ {
		got, ok := ParseName(c.String())
		if !ok || got != c {
			t.Errorf("ParseName(%q) = %d, %v; want %d", c.String(), got, ok, c)
		}
	}
	if got := Cap(50).String(); got != "CAP_50" {
		t.Errorf("Cap(50).String() = %q", got)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name        string
		in          []string
		want        Set
		wantUnknown []string
	}{
		{"empty", nil, 0, nil},
		{"two", []string{"CAP_CHOWN", "CAP_KILL"}, 1<<0 | 1<<5, nil},
		{"repeat", []string{"CAP_KILL", "CAP_KILL"}, 1 << 5, nil},
		{"unknown kept in order once", []string{"CAP_X", "CAP_CHOWN", "CAP_Y", "CAP_X"}, 1, []string{"CAP_X", "CAP_Y"}},
		{"high", []string{"CAP_BPF", "CAP_CHECKPOINT_RESTORE"}, 1<<39 | 1<<40, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unknown := Parse(tt.in)
			if got != tt.want || !reflect.DeepEqual(unknown, tt.wantUnknown) {
				t.Fatalf("Parse(%q) = %#x, %q; want %#x, %q", tt.in, got, unknown, tt.want, tt.wantUnknown)
			}
		})
	}
}

func TestFromSpec(t *testing.T) {
	spec := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_CHECKPOINT_RESTORE"},
		Effective:   []string{"CAP_CHOWN", "CAP_NOPE"},
		Inheritable: []string{"CAP_CHOWN"},
		Permitted:   []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_NOPE"},
		Ambient:     []string{"CAP_CHOWN"},
	}
	// A kernel whose last capability is CAP_BPF (39) lacks CAP_CHECKPOINT_RESTORE.
	cfg, unknown := FromSpec(spec, 39)
	want := Config{
		Bounding:    1<<0 | 1<<12,
		Effective:   1,
		Inheritable: 1,
		Permitted:   1<<0 | 1<<12,
		Ambient:     1,
	}
	if cfg != want {
		t.Fatalf("FromSpec = %+v, want %+v", cfg, want)
	}
	if wantU := []string{"CAP_CHECKPOINT_RESTORE", "CAP_NOPE"}; !reflect.DeepEqual(unknown, wantU) {
		t.Fatalf("unknown = %q, want %q", unknown, wantU)
	}

	cfg, unknown = FromSpec(nil, 40)
	if cfg != (Config{}) || unknown != nil {
		t.Fatalf("FromSpec(nil) = %+v, %q; want empty", cfg, unknown)
	}
}

func TestSet(t *testing.T) {
	if got := All(40); got != 0x1ffffffffff {
		t.Errorf("All(40) = %#x", got)
	}
	if All(63) != ^Set(0) || All(-1) != 0 || All(0) != 1 {
		t.Errorf("All edges wrong")
	}
	s := Set(0).With(12).With(0).With(50)
	if !s.Has(12) || s.Has(1) || s.Has(64) || s.Has(-1) {
		t.Errorf("Has wrong for %#x", s)
	}
	if got, want := s.Names(), []string{"CAP_CHOWN", "CAP_NET_ADMIN", "CAP_50"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
	if s.Without(12).Has(12) || s.With(99) != s || s.Without(-3) != s {
		t.Errorf("With/Without wrong")
	}
	if Set(0).Names() != nil {
		t.Errorf("empty set has names")
	}
}
