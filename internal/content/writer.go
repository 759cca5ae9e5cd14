package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Writer receives one blob. Bytes written are appended to the ingest's
// partial data (after Offset bytes already held) and hashed as they go.
// Commit verifies and publishes the blob; Close without Commit keeps the
// partial data so that the next Ingest with the same ref resumes it.
type Writer interface {
	io.Writer
	// Offset is how many bytes the writer holds: after a resumed Ingest,
	// the caller continues the download from here (an HTTP Range request).
	Offset() int64
	// Digest is the digest of the bytes held so far.
	Digest() digest.Digest
	// Truncate drops the bytes after size (at most Offset): Truncate(0)
	// restarts a download whose source cannot seek.
	Truncate(size int64) error
	// Commit syncs the data, checks its size and digest against what
	// Ingest was told, and renames it into place atomically. It returns
	// the blob's digest. A digest mismatch (or too much data) discards the
	// partial data; too little data is an error that keeps it. Committing
	// a blob that another writer stored first succeeds.
	Commit(ctx context.Context) (digest.Digest, error)
	// Close releases the writer, keeping any uncommitted data for a later
	// resume. It is a no-op after Commit or Discard.
	Close() error
	// Discard removes the partial data and releases the writer.
	Discard() error
}

type ingestMeta struct {
	Ref      string        `json:"ref"`
	Expected digest.Digest `json:"expected,omitempty"`
	Size     int64         `json:"size"`
	Started  time.Time     `json:"started"`
}

type writer struct {
	s    *Store
	meta ingestMeta
	dir  string
	lock *fileLock
	f    *os.File
	dg   digest.Digester
	off  int64
	done bool
}

// Ingest starts or resumes writing the blob expected (size bytes) under ref.
// Use the expected digest as ref (Ingest does when ref is empty) so that two
// processes pulling the same blob share one download: the second waits for
// the first's writer to close, then resumes its data or finds the blob
// stored. expected may be empty when the digest is only known at the end (a
// build, an import), and size negative when the size is unknown.
//
// If the expected blob is already stored, Ingest returns an error wrapping
// ErrExists. If a previous ingest under ref was interrupted (a crash, a
// kill -9, a lost connection), the writer starts at its Offset; if it was
// for a different digest or size, its data is dropped.
func (s *Store) Ingest(ctx context.Context, ref string, expected digest.Digest, size int64) (Writer, error) {
	if expected != "" {
		if err := validate(expected); err != nil {
			return nil, err
		}
		if ref == "" {
			ref = expected.String()
		}
	}
	if ref == "" {
		return nil, errdefs.InvalidArgument(errors.New("ingest: a ref or an expected digest is required"))
	}
	if size < 0 {
		size = -1
	}
	dir := s.refDir(ref)
	if expected != "" && s.Exists(ctx, expected) {
		// An ingest left for a stored blob is debris (a crash after the
		// commit's rename): remove it unless a writer holds it.
		if l, ok, _ := tryLockFile(dir + ".lock"); ok {
			_ = errors.Join(os.RemoveAll(dir), l.remove()) // best effort
		}
		return nil, errdefs.Conflict(fmt.Errorf("blob %s: %w", expected, ErrExists))
	}
	lock, err := lockFile(ctx, dir+".lock", false)
	if err != nil {
		return nil, fmt.Errorf("ingest %s: %w", ref, err)
	}
	if expected != "" && s.Exists(ctx, expected) { // committed while we waited
		cleanup := errors.Join(os.RemoveAll(dir), lock.remove())
		return nil, errors.Join(errdefs.Conflict(fmt.Errorf("blob %s: %w", expected, ErrExists)), cleanup)
	}
	w := &writer{s: s, dir: dir, lock: lock, meta: ingestMeta{Ref: ref, Expected: expected, Size: size}}
	if err := w.resume(); err != nil {
		if err := w.start(); err != nil {
			lock.unlock()
			return nil, fmt.Errorf("ingest %s: %w", ref, err)
		}
	}
	return w, nil
}

// resume reopens an interrupted ingest of the same blob and rehashes its
// data. Any error means "start over".
func (w *writer) resume() error {
	raw, err := os.ReadFile(filepath.Join(w.dir, "meta.json"))
	if err != nil {
		return err
	}
	var m ingestMeta
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	if m.Ref != w.meta.Ref || m.Expected != w.meta.Expected || m.Size != w.meta.Size {
		return errors.New("ingest is for another blob")
	}
	f, err := os.OpenFile(filepath.Join(w.dir, "data"), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	dg := w.algorithm().Digester()
	n, err := io.Copy(dg.Hash(), f)
	if err == nil && m.Size >= 0 && n > m.Size {
		err = errors.New("ingest holds more than the expected size")
	}
	if err != nil {
		f.Close()
		return err
	}
	w.meta, w.f, w.dg, w.off = m, f, dg, n
	return nil
}

// start creates a fresh ingest: metadata first (atomically), then data.
func (w *writer) start() error {
	if err := os.RemoveAll(w.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return err
	}
	w.meta.Started = time.Now().UTC()
	raw, err := json.Marshal(w.meta)
	if err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, "meta.json.tmp")
	if err := writeSynced(tmp, raw); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, "meta.json")); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(w.dir, "data"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w.f, w.dg, w.off = f, w.algorithm().Digester(), 0
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func (w *writer) algorithm() digest.Algorithm {
	if w.meta.Expected != "" {
		return w.meta.Expected.Algorithm()
	}
	return digest.Canonical
}

func (w *writer) name() string {
	if w.meta.Expected != "" {
		return w.meta.Expected.String()
	}
	return w.meta.Ref
}

var errClosed = errors.New("writer is closed")

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write blob %s: %w", w.name(), errClosed)
	}
	if w.meta.Size >= 0 && w.off+int64(len(p)) > w.meta.Size {
		return 0, fmt.Errorf("write blob %s: more than the expected %d bytes: %w", w.name(), w.meta.Size, ErrSizeMismatch)
	}
	n, err := w.f.WriteAt(p, w.off)
	w.dg.Hash().Write(p[:n])
	w.off += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob %s: %w", w.name(), err)
	}
	return n, nil
}

func (w *writer) Offset() int64         { return w.off }
func (w *writer) Digest() digest.Digest { return w.dg.Digest() }

func (w *writer) Truncate(size int64) error {
	if w.done {
		return fmt.Errorf("truncate blob %s: %w", w.name(), errClosed)
	}
	if size < 0 || size > w.off {
		return errdefs.InvalidArgument(fmt.Errorf("truncate blob %s to %d bytes: it holds %d", w.name(), size, w.off))
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("truncate blob %s: %w", w.name(), err)
	}
	dg := w.algorithm().Digester()
	if _, err := io.Copy(dg.Hash(), io.NewSectionReader(w.f, 0, size)); err != nil {
		return fmt.Errorf("truncate blob %s: %w", w.name(), err)
	}
	w.dg, w.off = dg, size
	return nil
}

func (w *writer) Commit(ctx context.Context) (digest.Digest, error) {
	if w.done {
		return "", fmt.Errorf("commit blob %s: %w", w.name(), errClosed)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("commit blob %s: %w", w.name(), err)
	}
	if w.meta.Size >= 0 && w.off < w.meta.Size {
		return "", fmt.Errorf("commit blob %s: got %d of %d bytes: %w", w.name(), w.off, w.meta.Size, ErrSizeMismatch)
	}
	dgst := w.dg.Digest()
	if w.meta.Expected != "" && dgst != w.meta.Expected {
		err := fmt.Errorf("commit blob %s: %w: the %d bytes received hash to %s; the partial download was discarded, try again",
			w.meta.Expected, ErrDigestMismatch, w.off, dgst)
		return "", errors.Join(errdefs.InvalidArgument(err), w.Discard())
	}
	if err := w.f.Sync(); err != nil {
		return "", fmt.Errorf("commit blob %s: sync: %w", dgst, err)
	}
	target, err := w.s.Path(dgst)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(target); err == nil {
		return dgst, w.Discard() // stored by someone else: same bytes
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return "", fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return "", fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	if err := os.Rename(filepath.Join(w.dir, "data"), target); err != nil {
		return "", fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	if err := syncDir(filepath.Dir(target)); err != nil {
		return "", fmt.Errorf("commit blob %s: sync %s: %w", dgst, filepath.Dir(target), err)
	}
	return dgst, w.Discard()
}

func (w *writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	return errors.Join(w.f.Close(), w.lock.unlock())
}

func (w *writer) Discard() error {
	if w.done {
		return nil
	}
	w.done = true
	// Remove while still holding the lock, and the lock file last, so a
	// waiter never sees half-removed state.
	err := errors.Join(w.f.Close(), os.RemoveAll(w.dir), w.lock.remove())
	if err != nil {
		return fmt.Errorf("discard ingest %s: %w", w.meta.Ref, err)
	}
	return nil
}

// Put writes the blob read from r (from its start) through Ingest, resuming an interrupted
// ingest where r can seek (else starting over), and commits it. A blob
// already stored is not read again.
func (s *Store) Put(ctx context.Context, ref string, r io.Reader, expected digest.Digest, size int64) (digest.Digest, error) {
	w, err := s.Ingest(ctx, ref, expected, size)
	if errors.Is(err, ErrExists) {
		return expected, nil
	}
	if err != nil {
		return "", err
	}
	defer w.Close()
	if off := w.Offset(); off > 0 {
		seeker, ok := r.(io.Seeker)
		if !ok {
			err = w.Truncate(0)
		} else if _, err = seeker.Seek(off, io.SeekStart); err != nil {
			err = w.Truncate(0)
		}
		if err != nil {
			return "", err
		}
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		return "", err
	}
	return w.Commit(ctx)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Abort removes the partial data of ref, waiting for its writer (in this or
// another process) to close. An unknown ref is not an error.
func (s *Store) Abort(ctx context.Context, ref string) error {
	dir := s.refDir(ref)
	lock, err := lockFile(ctx, dir+".lock", false)
	if err != nil {
		return fmt.Errorf("abort ingest %s: %w", ref, err)
	}
	if err := errors.Join(os.RemoveAll(dir), lock.remove()); err != nil {
		return fmt.Errorf("abort ingest %s: %w", ref, err)
	}
	return nil
}

// IngestStatus describes an ingest in progress or interrupted.
type IngestStatus struct {
	Ref       string
	Expected  digest.Digest
	Size      int64 // -1 when unknown
	Offset    int64
	StartedAt time.Time
	UpdatedAt time.Time
}

// Ingests lists the ingests that hold data, whether or not a writer is
// working on them now.
func (s *Store) Ingests(ctx context.Context) ([]IngestStatus, error) {
	entries, err := os.ReadDir(s.ingestRoot())
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []IngestStatus
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.ingestRoot(), e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			continue
		}
		var m ingestMeta
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, "data"))
		if err != nil {
			continue
		}
		out = append(out, IngestStatus{Ref: m.Ref, Expected: m.Expected, Size: m.Size, Offset: fi.Size(),
			StartedAt: m.Started, UpdatedAt: fi.ModTime()})
	}
	return out, nil
}

// PruneIngests removes ingests that no writer holds and that have not been
// written to for olderThan, and debris that a crash left (an ingest
// directory without data, a lock file without a directory). It returns the
// number of ingests removed.
func (s *Store) PruneIngests(ctx context.Context, olderThan time.Duration) (int, error) {
	entries, err := os.ReadDir(s.ingestRoot())
	if err != nil {
		return 0, fmt.Errorf("prune ingests: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		name := e.Name()
		if filepath.Ext(name) == ".lock" {
			_ = s.pruneLock(filepath.Join(s.ingestRoot(), name), olderThan) // best effort: debris only
			continue
		}
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.ingestRoot(), name)
		if fi, err := os.Stat(filepath.Join(dir, "data")); err == nil && time.Since(fi.ModTime()) < olderThan {
			continue
		}
		if _, err := os.Stat(dir + ".lock"); errors.Is(err, fs.ErrNotExist) {
			if err := os.WriteFile(dir+".lock", nil, 0o600); err != nil {
				return removed, fmt.Errorf("prune ingests: %w", err)
			}
		}
		lock, ok, err := tryLockFile(dir + ".lock")
		if err != nil || !ok {
			continue // a writer holds it, or it just went away
		}
		if err := errors.Join(os.RemoveAll(dir), lock.remove()); err != nil {
			return removed, fmt.Errorf("prune ingests: %w", err)
		}
		removed++
	}
	return removed, nil
}

// pruneLock removes a lock file whose ingest directory is gone (a crash
// between the two removals).
func (s *Store) pruneLock(path string, olderThan time.Duration) error {
	dir := path[:len(path)-len(".lock")]
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil || time.Since(fi.ModTime()) < olderThan {
		return err
	}
	lock, ok, err := tryLockFile(path)
	if err != nil || !ok {
		return err
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		return errors.Join(err, lock.unlock()) // a writer created it meanwhile
	}
	return lock.remove()
}
