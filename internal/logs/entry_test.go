package logs

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzEntryRoundTrip checks the hand-written encoder and decoder against
// encoding/json: what appendEntry writes, encoding/json reads back as the
// same text that json.Marshal would have kept, and decodeEntry agrees.
func FuzzEntryRoundTrip(f *testing.F) {
	for _, s := range []string{"hello\n", "<&>\"\\\t\x00\x7f", "\xff\xfe", "é€😀\u2028", "\xed\xa0\x80"} {
		f.Add([]byte(s))
	}
	t := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	f.Fuzz(func(tt *testing.T, line []byte) {
		entry := appendEntry(nil, "stdout", line, t)
		var want jsonEntry
		if err := json.Unmarshal(entry, &want); err != nil {
			tt.Fatalf("encoding/json cannot read %q: %v", entry, err)
		}
		marshalled, _ := json.Marshal(string(line))
		var kept string
		json.Unmarshal(marshalled, &kept)
		if want.Log != kept || want.Stream != "stdout" || !want.Time.Equal(t) {
			tt.Fatalf("read back %+v from %q, want log %q", want, entry, kept)
		}
		m, _, ok := decodeFast(bytes.TrimSuffix(entry, []byte("\n")), nil)
		if !ok || string(m.Line) != want.Log || m.Stream != "stdout" || !m.Time.Equal(t) {
			tt.Fatalf("decodeFast(%q) = %+v, %v", entry, m, ok)
		}
	})
}

// FuzzDecodeEntry checks that the fast decoder, where it accepts a line,
// reads what encoding/json reads.
func FuzzDecodeEntry(f *testing.F) {
	for _, s := range []string{
		`{"log":"a\n","stream":"stdout","time":"2024-01-02T03:04:05.000000006Z"}`,
		`{"log":"\ud83d\ude00 \ud83d x \u00e9\/","stream":"stderr","time":"2024-01-02T03:04:05Z"}`,
		`{"log":"a","stream":"stdout","time":"2024-01-02T03:04:05+01:00"}`,
		`{"log":"a","stream":"stdout","time":"2024-01-02T03:04:05Z","attrs":{}}`,
		`{"log":"tr`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, _, ok := decodeFast(line, nil)
		if !ok {
			return
		}
		var e jsonEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", line, err)
		}
		if string(m.Line) != e.Log || m.Stream != e.Stream || !m.Time.Equal(e.Time) {
			t.Fatalf("decodeFast(%q) = %q %q %v, encoding/json %q %q %v", line, m.Line, m.Stream, m.Time, e.Log, e.Stream, e.Time)
		}
	})
}
