package spec

import (
	"encoding/json"
	"testing"
)

// BenchmarkGenerate is the spec's share of every container start: docker's
// defaults (seccomp profile included) and the JSON the runtime reads.
func BenchmarkGenerate(b *testing.B) {
	in := baseInput(b)
	b.ReportAllocs()
	for b.Loop() {
		s, err := Generate(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}
