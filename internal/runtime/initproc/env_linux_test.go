package initproc

import (
	"slices"
	"testing"
)

func TestDedupEnv(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, nil},
		{[]string{"A=1", "B=2"}, []string{"A=1", "B=2"}},
		{[]string{"A=1", "B=2", "A=3"}, []string{"A=3", "B=2"}},
		{[]string{"A=1", "A=", "A=2=x"}, []string{"A=2=x"}},
		{[]string{"NOEQ", "B=1", "NOEQ"}, []string{"NOEQ", "B=1"}},
	}
	for _, tc := range tests {
		if got := dedupEnv(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("dedupEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
