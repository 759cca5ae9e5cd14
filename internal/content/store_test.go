package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func blob(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutReadDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := blob(100_000, 1)
	dgst := digest.FromBytes(data)

	got, err := s.Put(ctx, "", bytes.NewReader(data), dgst, int64(len(data)))
	if err != nil || got != dgst {
		t.Fatalf("Put = %s, %v", got, err)
	}
	if !s.Exists(ctx, dgst) {
		t.Fatal("blob missing after Put")
	}
	info, err := s.Info(ctx, dgst)
	if err != nil || info.Size != int64(len(data)) || info.Digest != dgst {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	p, _ := s.Path(dgst)
	if want := filepath.Join(s.Dir(), "blobs", "sha256", dgst.Encoded()); p != want {
		t.Fatalf("Path = %s, want %s", p, want)
	}
	read, err := s.ReadBlob(ctx, dgst)
	if err != nil || !bytes.Equal(read, data) {
		t.Fatalf("ReadBlob: %v", err)
	}
	ra, err := s.ReaderAt(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	if _, err := ra.ReadAt(buf, 500); err != nil || !bytes.Equal(buf, data[500:510]) || ra.Size() != int64(len(data)) {
		t.Fatalf("ReadAt: %v", err)
	}
	ra.Close()
	rc, err := s.Open(ctx, dgst)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(all, data) {
		t.Fatal("Open read different bytes")
	}

	// Putting it again does not read r.
	if _, err := s.Put(ctx, "", iotestErrReader{}, dgst, int64(len(data))); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != dgst {
		t.Fatalf("Walk = %v", walked)
	}
	if err := s.Delete(ctx, dgst); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Delete":   s.Delete(ctx, dgst),
		"Info":     func() error { _, err := s.Info(ctx, dgst); return err }(),
		"ReadBlob": func() error { _, err := s.ReadBlob(ctx, dgst); return err }(),
		"ReaderAt": func() error { _, err := s.ReaderAt(ctx, dgst); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) || !errdefs.Is(err, errdefs.KindNotFound) {
			t.Errorf("%s after Delete: %v, want NotFound", name, err)
		}
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestInvalidDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []digest.Digest{"", "sha256:abc", "md5:0123", "sha256:../../etc/passwd", "nocolon"} {
		if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.KindInvalidArgument) {
			t.Errorf("Info(%q) = %v, want invalid argument", d, err)
		}
		if d != "" {
			if _, err := s.Ingest(ctx, "x", d, 1); !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Errorf("Ingest(%q) = %v, want invalid argument", d, err)
			}
		}
	}
	if _, err := s.Ingest(ctx, "", "", 1); !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("Ingest without ref or digest = %v", err)
	}
}

func TestIngest(t *testing.T) {
	ctx := context.Background()
	data := blob(64<<10, 2)
	dgst := digest.FromBytes(data)
	size := int64(len(data))

	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
	}{
		{"resume after close", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			mustWrite(t, w, data[:1000])
			w.Close()
			w = mustIngest(t, s, dgst, size)
			if w.Offset() != 1000 || w.Digest() != digest.FromBytes(data[:1000]) {
				t.Fatalf("resumed at %d (%s)", w.Offset(), w.Digest())
			}
			mustWrite(t, w, data[1000:])
			if got, err := w.Commit(ctx); err != nil || got != dgst {
				t.Fatalf("Commit = %s, %v", got, err)
			}
			checkClean(t, s)
		}},
		{"digest mismatch discards", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			bad := bytes.Clone(data)
			bad[7] ^= 1
			mustWrite(t, w, bad)
			_, err := w.Commit(ctx)
			if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "discarded") {
				t.Fatalf("Commit = %v, want digest mismatch", err)
			}
			if s.Exists(ctx, dgst) || s.Exists(ctx, digest.FromBytes(bad)) {
				t.Fatal("bad data exposed as a blob")
			}
			checkClean(t, s)
			if w := mustIngest(t, s, dgst, size); w.Offset() != 0 {
				t.Fatalf("offset after discard = %d", w.Offset())
			}
		}},
		{"too much data", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, 10)
			if _, err := w.Write(data[:11]); !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("Write = %v, want size mismatch", err)
			}
			w.Discard()
		}},
		{"too little data keeps it", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			mustWrite(t, w, data[:10])
			if _, err := w.Commit(ctx); !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("Commit = %v, want size mismatch", err)
			}
			mustWrite(t, w, data[10:])
			if _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"other blob under the same ref restarts", func(t *testing.T, s *Store) {
			w, err := s.Ingest(ctx, "ref", dgst, size)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data[:100])
			w.Close()
			other := data[:5000]
			w, err = s.Ingest(ctx, "ref", digest.FromBytes(other), int64(len(other)))
			if err != nil || w.Offset() != 0 {
				t.Fatalf("Ingest = %v, offset %d", err, w.Offset())
			}
			mustWrite(t, w, other)
			if _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"unknown digest and size", func(t *testing.T, s *Store) {
			w, err := s.Ingest(ctx, "build-1", "", -1)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data)
			if got, err := w.Commit(ctx); err != nil || got != dgst {
				t.Fatalf("Commit = %s, %v", got, err)
			}
			checkClean(t, s)
		}},
		{"truncate restarts", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			mustWrite(t, w, []byte("garbage"))
			if err := w.Truncate(0); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, w, data)
			if _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"exists", func(t *testing.T, s *Store) {
			if _, err := s.Put(ctx, "", bytes.NewReader(data), dgst, size); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Ingest(ctx, "", dgst, size); !errors.Is(err, ErrExists) || !errdefs.Is(err, errdefs.KindConflict) {
				t.Fatalf("Ingest = %v, want exists", err)
			}
		}},
		{"put resumes a seekable reader", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			mustWrite(t, w, data[:3000])
			w.Close()
			if _, err := s.Put(ctx, "", bytes.NewReader(data), dgst, size); err != nil {
				t.Fatal(err)
			}
			checkClean(t, s)
		}},
		{"abort", func(t *testing.T, s *Store) {
			w := mustIngest(t, s, dgst, size)
			mustWrite(t, w, data[:3000])
			w.Close()
			if err := s.Abort(ctx, dgst.String()); err != nil {
				t.Fatal(err)
			}
			checkClean(t, s)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore(t)) })
	}
}

func mustIngest(t *testing.T, s *Store, dgst digest.Digest, size int64) Writer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := s.Ingest(ctx, "", dgst, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustWrite(t *testing.T, w Writer, p []byte) {
	t.Helper()
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
}

// checkClean fails unless no ingest data or lock is left behind.
func checkClean(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.ingestRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("ingest debris: %s", e.Name())
	}
}

func TestIngestLocksRef(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := blob(1000, 3)
	dgst := digest.FromBytes(data)
	w := mustIngest(t, s, dgst, 1000)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Ingest(short, "", dgst, 1000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Ingest while the first is open = %v, want it to wait", err)
	}

	result := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := s.Ingest(ctx, "", dgst, 1000)
		result <- err
	}()
	mustWrite(t, w, data)
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-result; !errors.Is(err, ErrExists) {
		t.Fatalf("waiting Ingest = %v, want exists once the first committed", err)
	}
	checkClean(t, s)
}

func TestConcurrentPutsInProcess(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := blob(1<<20, 4)
	dgst := digest.FromBytes(data)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := s.Put(ctx, "", bytes.NewReader(data), dgst, int64(len(data)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got, err := s.ReadBlob(ctx, dgst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadBlob: %v", err)
	}
	checkClean(t, s)
}

func TestGC(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var all []digest.Digest
	for i := range 5 {
		data := blob(1000+i, uint64(10+i))
		d, err := s.Put(ctx, "", bytes.NewReader(data), digest.FromBytes(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d)
	}
	// An interrupted ingest is not a blob and GC leaves it alone.
	w := mustIngest(t, s, digest.FromString("partial"), 100)
	mustWrite(t, w, []byte("part"))
	w.Close()

	keep := map[digest.Digest]bool{all[1]: true, all[3]: true}

	release, err := s.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.GC(short, func(d digest.Digest) bool { return keep[d] }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC under a lease = %v, want it to wait", err)
	}
	release()

	stats, err := s.GC(ctx, func(d digest.Digest) bool { return keep[d] })
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Removed) != 3 || stats.Bytes != 1000+1002+1004 {
		t.Fatalf("GC removed %v (%d bytes)", stats.Removed, stats.Bytes)
	}
	for _, d := range all {
		if s.Exists(ctx, d) != keep[d] {
			t.Errorf("%s: exists=%v, keep=%v", d, s.Exists(ctx, d), keep[d])
		}
	}
	ingests, err := s.Ingests(ctx)
	if err != nil || len(ingests) != 1 || ingests[0].Offset != 4 {
		t.Fatalf("Ingests after GC = %+v, %v", ingests, err)
	}
}

func TestPruneIngests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	idle := mustIngest(t, s, digest.FromString("idle"), 100)
	mustWrite(t, idle, []byte("a"))
	idle.Close()
	busy := mustIngest(t, s, digest.FromString("busy"), 100)
	mustWrite(t, busy, []byte("b"))

	n, err := s.PruneIngests(ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("PruneIngests(1h) = %d, %v; want nothing that recent removed", n, err)
	}
	n, err = s.PruneIngests(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("PruneIngests(0) = %d, %v; want the idle one only", n, err)
	}
	ingests, _ := s.Ingests(ctx)
	if len(ingests) != 1 || ingests[0].Expected != digest.FromString("busy") {
		t.Fatalf("left %+v", ingests)
	}
	busy.Discard()
	checkClean(t, s)
}

func TestCorruptBlobIsReported(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := []byte(`{"a":1}`)
	dgst, err := s.Put(ctx, "", bytes.NewReader(data), digest.FromBytes(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(dgst)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte(`{"a":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(ctx, dgst); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ReadBlob of a corrupt blob = %v", err)
	}
}

// A crash between the steps of Commit or Discard leaves debris that the
// next Ingest and PruneIngests cope with.
func TestCrashDebris(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := blob(5000, 5)
	dgst := digest.FromBytes(data)

	// Crash after the rename, before the ingest was removed: the blob is
	// stored and the next Ingest says so and cleans up.
	w := mustIngest(t, s, dgst, int64(len(data)))
	mustWrite(t, w, data)
	dir := s.refDir(dgst.String())
	target, _ := s.Path(dgst)
	if err := os.Rename(filepath.Join(dir, "data"), target); err != nil {
		t.Fatal(err)
	}
	w.(*writer).f.Close()
	w.(*writer).lock.unlock()
	if _, err := s.Ingest(ctx, "", dgst, int64(len(data))); !errors.Is(err, ErrExists) {
		t.Fatalf("Ingest = %v, want exists", err)
	}
	checkClean(t, s)

	// The same without an expected digest: the ingest starts over.
	w, err := s.Ingest(ctx, "build", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, data)
	os.Remove(filepath.Join(s.refDir("build"), "data"))
	w.Close()
	if w, err = s.Ingest(ctx, "build", "", -1); err != nil || w.Offset() != 0 {
		t.Fatalf("Ingest after lost data = %v", err)
	}
	w.Discard()

	// Crash between removing the directory and the lock file.
	stale := filepath.Join(s.ingestRoot(), "deadbeef.lock")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PruneIngests(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkClean(t, s)
}
