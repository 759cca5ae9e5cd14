package logs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]string
		want    Options
		wantErr string
	}{
		{name: "defaults", in: nil, want: Options{MaxSize: 20 << 20, MaxFiles: 5}},
		{name: "both", in: map[string]string{"max-size": "10m", "max-file": "3"}, want: Options{MaxSize: 10 << 20, MaxFiles: 3}},
		{name: "size only", in: map[string]string{"max-size": "512k"}, want: Options{MaxSize: 512 << 10, MaxFiles: 5}},
		{name: "plain bytes", in: map[string]string{"max-size": "1000"}, want: Options{MaxSize: 1000, MaxFiles: 5}},
		{name: "unknown", in: map[string]string{"max-size": "1m", "labels": "a"}, wantErr: "unknown log opt 'labels' for json-file log driver"},
		{name: "bad size", in: map[string]string{"max-size": "lots"}, wantErr: "invalid size: 'lots'"},
		{name: "zero size", in: map[string]string{"max-size": "0"}, wantErr: "max-size must be a positive number"},
		{name: "bad count", in: map[string]string{"max-file": "x"}, wantErr: "invalid max-file 'x': it must be a whole number"},
		{name: "zero count", in: map[string]string{"max-file": "0"}, wantErr: "max-file cannot be less than 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOptions(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !errdefs.Is(err, errdefs.KindInvalidArgument) {
					t.Fatalf("err %v is not InvalidArgument", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseOptions = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// rawEntry is one entry as found on disk.
type rawEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// fileEntries decodes every line of one file strictly.
func fileEntries(t *testing.T, name string) []rawEntry {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []rawEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e rawEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: bad line %q: %v", name, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func logs(es []rawEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Log)
	}
	return out
}

func TestStreamSplitsLines(t *testing.T) {
	long := strings.Repeat("a", maxLine)
	// A 3-byte rune straddling the 16 KiB boundary must stay whole.
	runeEdge := strings.Repeat("b", maxLine-1) + "€" + "c\n"
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{name: "one line", writes: []string{"hello\n"}, want: []string{"hello\n"}},
		{name: "two lines one write", writes: []string{"a\nb\n"}, want: []string{"a\n", "b\n"}},
		{name: "line across writes", writes: []string{"he", "ll", "o\nwor", "ld\n"}, want: []string{"hello\n", "world\n"}},
		{name: "partial flushed at close", writes: []string{"a\nno newline"}, want: []string{"a\n", "no newline"}},
		{name: "empty lines", writes: []string{"\n\n"}, want: []string{"\n", "\n"}},
		{name: "empty write", writes: []string{"", "x\n"}, want: []string{"x\n"}},
		{name: "line of exactly max", writes: []string{long[1:] + "\n"}, want: []string{long[1:] + "\n"}},
		{name: "line one past max", writes: []string{long + "\n"}, want: []string{long, "\n"}},
		{name: "long partial in one write", writes: []string{long + long + "tail"}, want: []string{long, long, "tail"}},
		{name: "long partial in pieces", writes: []string{long[:100], long[100:], "x", "y\n"}, want: []string{long, "xy\n"}},
		{name: "rune at boundary", writes: []string{runeEdge}, want: []string{runeEdge[:maxLine-1], "€c\n"}},
		{name: "rune at boundary in pieces", writes: []string{runeEdge[:5], runeEdge[5:]}, want: []string{runeEdge[:maxLine-1], "€c\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/c.log"
			w, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := w.Stream("stdout")
			for _, s := range tc.writes {
				if n, err := out.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := logs(fileEntries(t, path))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("entries = %q\nwant %q", short(got), short(tc.want))
			}
		})
	}
}

func short(ss []string) []string {
	var out []string
	for _, s := range ss {
		if len(s) > 40 {
			s = fmt.Sprintf("%s...(%d bytes)...%s", s[:10], len(s), s[len(s)-10:])
		}
		out = append(out, s)
	}
	return out
}

func TestEntryFormat(t *testing.T) {
	path := t.TempDir() + "/c.log"
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return time.Date(2024, 5, 6, 7, 8, 9, 123456700, time.FixedZone("X", 3600)) }
	fmt.Fprint(w.Stream("stderr"), "<a href=\"x\">&\t\x01\xff\u2028é\n")
	w.Close()
	data, _ := os.ReadFile(path)
	want := `{"log":"\u003ca href=\"x\"\u003e\u0026\t\u0001\ufffd\u2028é\n","stream":"stderr","time":"2024-05-06T06:08:09.1234567Z"}` + "\n"
	if string(data) != want {
		t.Fatalf("entry\n%s\nwant\n%s", data, want)
	}
	var e rawEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Log != "<a href=\"x\">&\t\x01\ufffd\u2028é\n" {
		t.Fatalf("round trip: %q, %v", e.Log, err)
	}
}

func TestConcurrentStreams(t *testing.T) {
	path := t.TempDir() + "/c.log"
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	for _, name := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := w.Stream(name)
			for i := range n {
				// Lines arrive in two pieces to exercise the partial buffers.
				fmt.Fprintf(s, "%s line ", name)
				fmt.Fprintf(s, "%d\n", i)
			}
		}()
	}
	wg.Wait()
	w.Close()
	next := map[string]int{}
	for _, e := range fileEntries(t, path) {
		want := fmt.Sprintf("%s line %d\n", e.Stream, next[e.Stream])
		if e.Log != want {
			t.Fatalf("got %q, want %q", e.Log, want)
		}
		next[e.Stream]++
	}
	if next["stdout"] != n || next["stderr"] != n {
		t.Fatalf("counts %v", next)
	}
}

func TestRotation(t *testing.T) {
	for _, maxFiles := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("files=", maxFiles), func(t *testing.T) {
			path := t.TempDir() + "/c.log"
			const maxSize = 1000
			w, err := Open(path, Options{MaxSize: maxSize, MaxFiles: maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			const n = 200 // about 60 bytes each: many rotations
			for i := range n {
				fmt.Fprintf(w.Stream("stdout"), "line %d\n", i)
			}
			w.Close()
			// Files present: exactly path, path.1 .. path.(maxFiles-1).
			var all []string
			for i := maxFiles - 1; i >= 0; i-- {
				name := path
				if i > 0 {
					name = rotatedName(path, i)
				}
				fi, err := os.Stat(name)
				if err != nil {
					t.Fatalf("missing %s: %v", name, err)
				}
				if fi.Size() > maxSize {
					t.Fatalf("%s is %d bytes, over %d", name, fi.Size(), maxSize)
				}
				if i > 0 && fi.Size() < maxSize-100 {
					t.Fatalf("rotated %s is only %d bytes", name, fi.Size())
				}
				all = append(all, logs(fileEntries(t, name))...)
			}
			for _, extra := range []string{rotatedName(path, maxFiles), tmpName(path)} {
				if _, err := os.Stat(extra); err == nil {
					t.Fatalf("%s should not exist", extra)
				}
			}
			// What is kept is the newest lines, contiguous.
			first := n - len(all)
			for i, l := range all {
				if want := fmt.Sprintf("line %d\n", first+i); l != want {
					t.Fatalf("entry %d = %q, want %q", i, l, want)
				}
			}
			if len(all) < (maxFiles-1)*10 {
				t.Fatalf("only %d entries kept", len(all))
			}
		})
	}
}

func TestReopenAppends(t *testing.T) {
	path := t.TempDir() + "/c.log"
	for i := range 2 {
		w, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w.Stream("stdout"), "run %d\n", i)
		w.Close()
	}
	if got := logs(fileEntries(t, path)); strings.Join(got, "") != "run 0\nrun 1\n" {
		t.Fatalf("entries %q", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	w, err := Open(t.TempDir()+"/c.log", Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := w.Stream("stdout").Write([]byte("x\n")); err == nil {
		t.Fatal("write after close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/c.log"
	w, err := Open(path, Options{MaxSize: 100, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		fmt.Fprintf(w.Stream("stdout"), "line %d\n", i)
	}
	w.Close()
	os.WriteFile(dir+"/other", nil, 0o600)
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "other" {
		t.Fatalf("left behind: %v", ents)
	}
	if err := Remove(path); err != nil {
		t.Fatalf("Remove of a missing log: %v", err)
	}
}

var entryRE = regexp.MustCompile(`^\{"log":".*","stream":"(stdout|stderr)","time":"[0-9T:.-]+Z"\}$`)

func TestEntriesMatchDockerShape(t *testing.T) {
	path := t.TempDir() + "/c.log"
	w, _ := Open(path, Options{})
	fmt.Fprint(w.Stream("stdout"), "hello\n")
	fmt.Fprint(w.Stream("stderr"), "oops\n")
	w.Close()
	data, _ := os.ReadFile(path)
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if !entryRE.MatchString(l) {
			t.Fatalf("entry %q is not docker's shape", l)
		}
	}
}

// TestIdleWriterMemory reports what a Writer that has logged and gone
// quiet keeps on the heap; the monitor holds one per container.
func TestIdleWriterMemory(t *testing.T) {
	dir := t.TempDir()
	const n = 100
	per := idleWriterBytes(t, dir, n)
	t.Logf("retained heap per idle Writer: %d bytes", per)
	if per > 2048 {
		t.Fatalf("an idle Writer keeps %d bytes; want under 2 KiB", per)
	}
}

func idleWriterBytes(tb testing.TB, dir string, n int) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	ws := make([]*Writer, n)
	for i := range ws {
		w, err := Open(fmt.Sprintf("%s/c%d.log", dir, i), Options{})
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprint(w.Stream("stdout"), "started\n")
		fmt.Fprint(w.Stream("stderr"), "a partial line, then a long pause...")
		fmt.Fprint(w.Stream("stderr"), " done\n")
		ws[i] = w
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
	for _, w := range ws {
		w.Close()
	}
	return per
}

func BenchmarkWriter(b *testing.B) {
	line := []byte(strings.Repeat("x", 99) + "\n")
	chunk := bytes.Repeat(line, 40) // what a 4 KiB pipe read holds
	w, err := Open(b.TempDir()+"/c.log", Options{MaxSize: 64 << 20, MaxFiles: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	out := w.Stream("stdout")
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := out.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*40), "ns/line")
}

func BenchmarkIdleWriters(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		b.StartTimer()
		b.ReportMetric(float64(idleWriterBytes(b, dir, 100)), "B/idle-writer")
	}
}
