package logs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// writeLog writes lines "line 0".."line n-1", line i stamped t0+i seconds.
func writeLog(t testing.TB, path string, opts Options, n int) {
	t.Helper()
	w, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	w.now = func() time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for ; i < n; i++ {
		stream := "stdout"
		if i%3 == 2 {
			stream = "stderr"
		}
		fmt.Fprintf(w.Stream(stream), "line %d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, path string, opts ReadOptions) []string {
	t.Helper()
	var out []string
	err := Read(context.Background(), path, opts, func(m Message) error {
		out = append(out, strings.TrimSuffix(string(m.Line), "\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lineRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	single := dir + "/single.log"
	writeLog(t, single, Options{}, 10)
	// About 60 bytes an entry: 4 entries a file, 5 files, 100 written, the
	// last 18 or so kept.
	rotated := dir + "/rotated.log"
	writeLog(t, rotated, Options{MaxSize: 250, MaxFiles: 5}, 100)
	kept := readAll(t, rotated, ReadOptions{Tail: -1})
	if len(kept) < 13 || kept[len(kept)-1] != "line 99" {
		t.Fatalf("rotated log keeps %q", kept)
	}
	firstKept := 100 - len(kept)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

	tests := []struct {
		name string
		path string
		opts ReadOptions
		want []string
	}{
		{"all", single, ReadOptions{Tail: -1}, lineRange(0, 10)},
		{"tail", single, ReadOptions{Tail: 3}, lineRange(7, 10)},
		{"tail 0", single, ReadOptions{Tail: 0}, nil},
		{"tail more than there is", single, ReadOptions{Tail: 50}, lineRange(0, 10)},
		{"since", single, ReadOptions{Tail: -1, Since: at(6)}, lineRange(6, 10)},
		{"until", single, ReadOptions{Tail: -1, Until: at(3)}, lineRange(0, 4)},
		{"since until", single, ReadOptions{Tail: -1, Since: at(2), Until: at(4)}, lineRange(2, 5)},
		{"tail within until", single, ReadOptions{Tail: 2, Until: at(4)}, lineRange(3, 5)},
		{"tail cut by since", single, ReadOptions{Tail: 5, Since: at(8)}, lineRange(8, 10)},
		{"since after all", single, ReadOptions{Tail: -1, Since: at(100)}, nil},
		{"rotated all", rotated, ReadOptions{Tail: -1}, lineRange(firstKept, 100)},
		{"tail across files", rotated, ReadOptions{Tail: 10}, lineRange(90, 100)},
		{"tail of everything", rotated, ReadOptions{Tail: 1000}, lineRange(firstKept, 100)},
		{"since in an old file", rotated, ReadOptions{Tail: -1, Since: at(firstKept + 1)}, lineRange(firstKept+1, 100)},
		{"since in the last file", rotated, ReadOptions{Tail: -1, Since: at(98)}, lineRange(98, 100)},
		{"until in an old file", rotated, ReadOptions{Tail: -1, Until: at(firstKept + 2)}, lineRange(firstKept, firstKept+3)},
		{"tail and since across files", rotated, ReadOptions{Tail: 8, Since: at(95)}, lineRange(95, 100)},
		{"missing log", dir + "/none.log", ReadOptions{Tail: -1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, tc.path, tc.opts)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestReadMessageFields(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 3)
	var got []Message
	Read(context.Background(), path, ReadOptions{Tail: -1}, func(m Message) error {
		m.Line = append([]byte(nil), m.Line...)
		got = append(got, m)
		return nil
	})
	if len(got) != 3 || got[2].Stream != "stderr" || got[0].Stream != "stdout" ||
		!got[1].Time.Equal(t0.Add(time.Second)) || string(got[1].Line) != "line 1\n" {
		t.Fatalf("messages %+v", got)
	}
}

func TestReadSkipsCorruptLines(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 2)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("not json\n{\"log\":\"trunc\n\n")
	f.Close()
	writeLog(t, path, Options{}, 1)                      // appends "line 0" again
	f, _ = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0) // and a write in progress
	f.WriteString(`{"log":"half`)
	f.Close()
	if got := readAll(t, path, ReadOptions{Tail: -1}); strings.Join(got, ",") != "line 0,line 1,line 0" {
		t.Fatalf("got %q", got)
	}
	if got := readAll(t, path, ReadOptions{Tail: 2}); strings.Join(got, ",") != "line 1,line 0" {
		t.Fatalf("tail got %q", got)
	}
}

func TestReadLongLines(t *testing.T) {
	// Entries longer than the read chunk, forwards and backwards.
	path := t.TempDir() + "/c.log"
	w, _ := Open(path, Options{})
	big := strings.Repeat("\x01", maxLine-1) // six bytes each once escaped
	for range 4 {
		fmt.Fprint(w.Stream("stdout"), big+"\n")
	}
	w.Close()
	for _, tail := range []int{-1, 3} {
		got := readAll(t, path, ReadOptions{Tail: tail})
		want := 4
		if tail > 0 {
			want = tail
		}
		if len(got) != want || got[0] != big {
			t.Fatalf("tail %d: %d entries", tail, len(got))
		}
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 5)
	boom := errors.New("boom")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Message) error {
		n++
		if n == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 2 {
		t.Fatalf("err %v after %d", err, n)
	}
}

// follower runs Read with Follow and hands out what it reads.
type follower struct {
	lines chan string
	done  chan struct{}
	errc  chan error
}

func startFollow(t *testing.T, ctx context.Context, path string, opts ReadOptions) *follower {
	t.Helper()
	f := &follower{lines: make(chan string, 100000), done: make(chan struct{}), errc: make(chan error, 1)}
	opts.Follow = true
	if opts.Done == nil {
		opts.Done = f.done
	}
	go func() {
		f.errc <- Read(ctx, path, opts, func(m Message) error {
			f.lines <- strings.TrimSuffix(string(m.Line), "\n")
			return nil
		})
	}()
	return f
}

func (f *follower) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-f.lines:
			if got != w {
				t.Fatalf("followed %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func (f *follower) finish(t *testing.T) {
	t.Helper()
	close(f.done)
	select {
	case err := <-f.errc:
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after Done closed")
	}
}

// none checks that nothing more was read.
func (f *follower) none(t *testing.T) {
	t.Helper()
	if len(f.lines) > 0 {
		t.Fatalf("%d unexpected lines, first %q", len(f.lines), <-f.lines)
	}
}

func TestFollow(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 5)
	f := startFollow(t, context.Background(), path, ReadOptions{Tail: 2})
	f.expect(t, "line 3", "line 4")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fmt.Fprintf(w.Stream("stdout"), "new %d\n", i)
		f.expect(t, fmt.Sprint("new ", i))
	}
	// A line written in pieces is read only once complete.
	fmt.Fprint(w.Stream("stdout"), "pie")
	fmt.Fprint(w.Stream("stdout"), "ce\n")
	f.expect(t, "piece")
	// Written just before Done closes: still read.
	fmt.Fprint(w.Stream("stderr"), "last words\n")
	w.Close()
	f.finish(t)
	f.expect(t, "last words")
	f.none(t)
}

func TestFollowDrainsOnDone(t *testing.T) {
	path := t.TempDir() + "/c.log"
	f := startFollow(t, context.Background(), path, ReadOptions{Tail: -1})
	w, err := Open(path, Options{MaxSize: 500, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		fmt.Fprintf(w.Stream("stdout"), "line %d\n", i)
	}
	w.Close()
	close(f.done)
	if err := <-f.errc; err != nil {
		t.Fatal(err)
	}
	if len(f.lines) != 50 {
		t.Fatalf("read %d of 50 lines", len(f.lines))
	}
	f.expect(t, lineRange(0, 50)...)
}

func TestFollowAcrossRotation(t *testing.T) {
	for _, maxFiles := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("files=", maxFiles), func(t *testing.T) {
			path := t.TempDir() + "/c.log"
			w, err := Open(path, Options{MaxSize: 300, MaxFiles: maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(w.Stream("stdout"), "before\n")
			f := startFollow(t, context.Background(), path, ReadOptions{Tail: -1})
			f.expect(t, "before")
			// Each batch is under a file, so it rotates at most once; the
			// follower catches up between batches, as a reader keeping up
			// with the log does, so nothing may be lost even when the old
			// file is deleted right away (files=1).
			for batch := range 12 {
				var want []string
				for i := range 3 {
					l := fmt.Sprintf("b%d line %d", batch, i)
					fmt.Fprintln(w.Stream("stdout"), l)
					want = append(want, l)
				}
				f.expect(t, want...)
			}
			w.Close()
			f.finish(t)
			f.none(t)
		})
	}
}

func TestFollowNoLossUnderLoad(t *testing.T) {
	// The writer does not wait for the reader; with enough files kept the
	// reader must see every entry once, in order, across ~100 rotations.
	path := t.TempDir() + "/c.log"
	w, err := Open(path, Options{MaxSize: 2000, MaxFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	f := startFollow(t, context.Background(), path, ReadOptions{Tail: -1})
	const n = 3000
	for i := range n {
		fmt.Fprintf(w.Stream("stdout"), "line %d\n", i)
	}
	w.Close()
	f.expect(t, lineRange(0, n)...)
	f.finish(t)
	f.none(t)
}

func TestFollowStartsBeforeLogExists(t *testing.T) {
	path := t.TempDir() + "/c.log"
	f := startFollow(t, context.Background(), path, ReadOptions{Tail: 0})
	time.Sleep(50 * time.Millisecond)
	writeLog(t, path, Options{}, 2)
	f.expect(t, "line 0", "line 1")
	f.finish(t)
	f.none(t)
}

func TestFollowEndsWithContext(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	f := startFollow(t, ctx, path, ReadOptions{Tail: -1})
	f.expect(t, "line 0")
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-f.errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
	if d := time.Since(start); d > 900*time.Millisecond { // under pollInterval: the cancel woke it
		t.Fatalf("took %v to notice the cancel", d)
	}
}

func TestFollowEndsAtUntil(t *testing.T) {
	path := t.TempDir() + "/c.log"
	writeLog(t, path, Options{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true, Until: time.Now().Add(200 * time.Millisecond)},
			func(Message) error { return nil })
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow ran past Until")
	}
}

// BenchmarkReadTail reads the last 100 entries of a 20 MB log: the cost
// should not depend on the log's size.
func BenchmarkReadTail(b *testing.B) {
	path := b.TempDir() + "/c.log"
	w, _ := Open(path, Options{MaxSize: 1 << 30})
	line := []byte(strings.Repeat("x", 99) + "\n")
	for range 200000 {
		w.Stream("stdout").Write(line)
	}
	w.Close()
	for b.Loop() {
		n := 0
		Read(context.Background(), path, ReadOptions{Tail: 100}, func(Message) error { n++; return nil })
		if n != 100 {
			b.Fatalf("read %d", n)
		}
	}
}

// BenchmarkReadAll reads a whole log, per entry.
func BenchmarkReadAll(b *testing.B) {
	path := b.TempDir() + "/c.log"
	w, _ := Open(path, Options{MaxSize: 1 << 30})
	line := []byte(strings.Repeat("x", 99) + "\n")
	const n = 20000
	for range n {
		w.Stream("stdout").Write(line)
	}
	w.Close()
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	for b.Loop() {
		Read(context.Background(), path, ReadOptions{Tail: -1}, func(Message) error { return nil })
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
