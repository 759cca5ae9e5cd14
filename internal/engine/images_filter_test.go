package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseImageFilters(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		args []string
		want ImageFilters
		err  string
	}{
		{args: []string{"dangling=true"}, want: ImageFilters{Dangling: &yes}},
		{args: []string{"dangling=false", "label=a", "label=b=c"}, want: ImageFilters{Dangling: &no, Label: []string{"a", "b=c"}}},
		{args: []string{"reference=busy*", "before=x", "since=y"}, want: ImageFilters{Reference: []string{"busy*"}, Before: "x", Since: "y"}},
		{args: []string{"dangling=maybe"}, err: "invalid filter 'dangling=maybe'"},
		{args: []string{"dangling=true", "dangling=false"}, err: "conflicting"},
		{args: []string{"color=red"}, err: "invalid filter 'color'"},
		{args: []string{"nokey"}, err: "bad format"},
		{args: []string{"reference=[a"}, err: "invalid filter 'reference=[a'"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, ","), func(t *testing.T) {
			got, err := ParseImageFilters(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestMatchReference(t *testing.T) {
	tests := []struct {
		pattern, ref string
		want         bool
	}{
		{"busybox", "busybox:latest", true},
		{"busybox:latest", "busybox:latest", true},
		{"busy*", "busybox:1.36", true},
		{"busybox:1.*", "busybox:1.36", true},
		{"busybox:2*", "busybox:1.36", false},
		{"library/busybox", "busybox:latest", false},
		{"localhost:5000/*", "localhost:5000/app:v1", true},
		{"*/app", "localhost:5000/app:v1", true},
		{"*/app", "localhost:5000/x/app:v1", false},
		{"busybox", "busybox@sha256:" + strings.Repeat("a", 64), true},
	}
	for _, tt := range tests {
		if got := matchReference(tt.pattern, tt.ref); got != tt.want {
			t.Errorf("matchReference(%q, %q) = %v, want %v", tt.pattern, tt.ref, got, tt.want)
		}
	}
	if got := filterReferences([]string{"a:1", "b:1"}, []string{"a"}); !reflect.DeepEqual(got, []string{"a:1"}) {
		t.Errorf("filterReferences: %v", got)
	}
}
