package volume

import (
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr string
	}{
		{"ab", ""},
		{"my-vol_1.data", ""},
		{"0x", ""},
		{strings.Repeat("a", 64), ""},
		{"a", "volume name is too short, names should be at least two alphanumeric characters"},
		{"x y", `"x y" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"-ab", "includes invalid characters"},
		{"_ab", "includes invalid characters"},
		{".ab", "includes invalid characters"},
		{"a/b", "includes invalid characters"},
		{"../etc", "includes invalid characters"},
		{"", "includes invalid characters"},
		{"ü-vol", "includes invalid characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateName(tc.name)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateName(%q) = %v", tc.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateName(%q) = %v, want %q", tc.name, err, tc.wantErr)
			}
			if !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Errorf("kind = %v, want InvalidArgument", errdefs.KindOf(err))
			}
		})
	}
}

func TestRandomName(t *testing.T) {
	a, err := randomName()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := randomName()
	if len(a) != 64 || a == b || ValidateName(a) != nil {
		t.Fatalf("randomName = %q, %q", a, b)
	}
}

func TestValidateDriver(t *testing.T) {
	if err := ValidateDriver(""); err != nil {
		t.Error(err)
	}
	if err := ValidateDriver("local"); err != nil {
		t.Error(err)
	}
	err := ValidateDriver("nfs")
	if err == nil || err.Error() != `error looking up volume plugin nfs: plugin "nfs" not found` || !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("ValidateDriver(nfs) = %v", err)
	}
}

func TestParseFilters(t *testing.T) {
	f, err := ParseFilters([]string{"label=a=b", " Name = x ", "dangling=true", "label=c"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f["label"], []string{"a=b", "c"}) || !slices.Equal(f["name"], []string{"x"}) || !slices.Equal(f["dangling"], []string{"true"}) {
		t.Errorf("ParseFilters = %v", f)
	}
	if _, err := ParseFilters([]string{"dangling"}); err == nil || err.Error() != "bad format of filter (expected name=value)" {
		t.Errorf("ParseFilters(dangling) = %v", err)
	}
}

func TestFilterMatching(t *testing.T) {
	labels := map[string]string{"a": "1", "b": ""}
	for _, tc := range []struct {
		f    Filters
		want bool
	}{
		{Filters{}, true},
		{Filters{"label": {"a"}}, true},
		{Filters{"label": {"a=1"}}, true},
		{Filters{"label": {"a=2"}}, false},
		{Filters{"label": {"a", "b="}}, true},
		{Filters{"label": {"a", "c"}}, false}, // every label filter must match
	} {
		if got := tc.f.matchLabels(labels); got != tc.want {
			t.Errorf("%v.matchLabels = %v, want %v", tc.f, got, tc.want)
		}
	}
	if (Filters{"label!": {"a=1"}}).matchNotLabels(labels) || !(Filters{"label!": {"c"}}).matchNotLabels(labels) {
		t.Error("label! filter")
	}
	for _, tc := range []struct {
		vals []string
		name string
		want bool
	}{
		{[]string{"data"}, "mydata1", true}, // a substring, as docker's regexp match
		{[]string{"^data"}, "mydata1", false},
		{[]string{"x", "my"}, "mydata1", true}, // any name filter
		{[]string{"[bad"}, "mydata1", false},
		{[]string{"[bad"}, "[bad", true}, // exact match before the regexp
	} {
		if got := (Filters{"name": tc.vals}).matchName(tc.name); got != tc.want {
			t.Errorf("name=%v on %q = %v, want %v", tc.vals, tc.name, got, tc.want)
		}
	}
	if _, err := (Filters{"dangling": {"maybe"}}).boolValue("dangling", false); err == nil || err.Error() != "invalid filter 'dangling=maybe'" {
		t.Errorf("dangling=maybe: %v", err)
	}
	if err := (Filters{"until": {"1h"}}).validate("label", "all"); err == nil || err.Error() != "invalid filter 'until'" {
		t.Errorf("validate: %v", err)
	}
}

func TestNaturalLess(t *testing.T) {
	names := []string{"vol10", "vol2", "abc", "vol1", "Vol3", "vol02", "vol", "a10b", "a9b"}
	slices.SortFunc(names, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		if naturalLess(b, a) {
			return 1
		}
		return 0
	})
	want := []string{"Vol3", "a9b", "a10b", "abc", "vol", "vol1", "vol2", "vol02", "vol10"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted = %v, want %v", names, want)
	}
}
