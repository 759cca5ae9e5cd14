package network

import (
	"testing"
	"time"
)

func TestFilters(t *testing.T) {
	now := time.Now()
	web := &Network{ID: "abcdef0123", Name: "web-front", Driver: "bridge", Labels: map[string]string{"tier": "front", "x": ""}, Created: now.Add(-2 * time.Hour)}
	def := &Network{ID: "999", Name: "bridge", Driver: "bridge", Created: now.Add(-48 * time.Hour)}
	for _, tc := range []struct {
		filters []string
		web     bool
		def     bool
	}{
		{nil, true, true},
		{[]string{"name=front"}, true, false},
		{[]string{"id=abc"}, true, false},
		{[]string{"type=builtin"}, false, true},
		{[]string{"type=custom"}, true, false},
		{[]string{"label=tier"}, true, false},
		{[]string{"label=tier=back"}, false, false},
		{[]string{"label=tier=back", "label=x"}, true, false},
		{[]string{"label!=tier"}, false, true},
		{[]string{"dangling=true"}, true, false},
		{[]string{"until=24h"}, false, true},
		{[]string{"driver=bridge", "name=bridge"}, false, true},
	} {
		f, err := ParseFilters(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(web, 0, now); got != tc.web {
			t.Errorf("%v on web: %v", tc.filters, got)
		}
		if got := f.Match(def, 0, now); got != tc.def {
			t.Errorf("%v on bridge: %v", tc.filters, got)
		}
	}
	for _, bad := range []string{"nope=1", "type=x", "until=later", "name"} {
		if _, err := ParseFilters([]string{bad}); err == nil {
			t.Errorf("filter %s accepted", bad)
		}
	}
}
