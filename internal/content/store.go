// Package content keeps blobs (layers, manifests, configs) by digest under
// berth's root: <root>/content/blobs/<alg>/<hex>. A blob becomes visible only
// once its bytes are on disk, synced and verified against its digest, by an
// atomic rename; a download in progress lives in <root>/content/ingest and is
// resumed from its offset by the next writer with the same ref, even after a
// kill -9. Processes that share the root coordinate with flock(2): one writer
// per ref, and garbage collection excluded while a Lease is held.
package content

import (
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // lets go-digest validate and compute sha512 digests
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

var (
	// ErrNotFound is wrapped by errors about a blob the store does not hold.
	ErrNotFound = errors.New("blob not found")
	// ErrExists is wrapped by Ingest when the expected blob is already
	// stored: the caller can skip the download.
	ErrExists = errors.New("blob already exists")
	// ErrDigestMismatch is wrapped by Commit and ReadBlob when the bytes do
	// not hash to the expected digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch is wrapped by Write and Commit when the bytes do not
	// add up to the expected size.
	ErrSizeMismatch = errors.New("size mismatch")
)

// Info describes one stored blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// ReaderAt reads a stored blob at any offset.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store is a content-addressed blob store rooted at one directory. It holds
// no open files or locks between calls, so any number of processes may use
// the same root at once.
type Store struct {
	dir string // <root>/content
}

// Open returns the store under root (berth's root dir), creating
// <root>/content and its subdirectories if needed.
func Open(root string) (*Store, error) {
	s := &Store{dir: filepath.Join(root, "content")}
	for _, d := range []string{s.blobsDir(digest.Canonical), s.ingestRoot()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open content store %s: %w", s.dir, err)
		}
	}
	return s, nil
}

// Dir returns the directory the store lives in (<root>/content).
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobsDir(alg digest.Algorithm) string {
	return filepath.Join(s.dir, "blobs", string(alg))
}

func (s *Store) ingestRoot() string { return filepath.Join(s.dir, "ingest") }

// Path returns where the blob dgst lives, whether or not it exists. It is
// meant for code that hands the file to something else (a tar reader, a
// save); write only through Ingest.
func (s *Store) Path(dgst digest.Digest) (string, error) {
	if err := validate(dgst); err != nil {
		return "", err
	}
	return filepath.Join(s.blobsDir(dgst.Algorithm()), dgst.Encoded()), nil
}

func validate(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("invalid digest %q: %w", string(dgst), err))
	}
	return nil
}

func notFound(dgst digest.Digest) error {
	return errdefs.NotFound(fmt.Errorf("blob %s: %w", dgst, ErrNotFound))
}

// Info returns the size and creation time of the blob dgst.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.Path(dgst)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, notFound(dgst)
		}
		return Info{}, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// Exists reports whether the blob dgst is stored. An invalid digest is
// never stored.
func (s *Store) Exists(ctx context.Context, dgst digest.Digest) bool {
	_, err := s.Info(ctx, dgst)
	return err == nil
}

type blobReader struct {
	*os.File
	size int64
}

func (r *blobReader) Size() int64 { return r.size }

// ReaderAt opens the blob dgst for reading at any offset.
func (s *Store) ReaderAt(ctx context.Context, dgst digest.Digest) (ReaderAt, error) {
	f, err := s.open(dgst)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return &blobReader{File: f, size: fi.Size()}, nil
}

// Open opens the blob dgst for reading from the start.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (io.ReadSeekCloser, error) {
	return s.open(dgst)
}

func (s *Store) open(dgst digest.Digest) (*os.File, error) {
	p, err := s.Path(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, notFound(dgst)
		}
		return nil, fmt.Errorf("open blob %s: %w", dgst, err)
	}
	return f, nil
}

// ReadBlob returns the whole blob dgst, verified against its digest: for
// manifests, indexes and configs, which are small and read often.
func (s *Store) ReadBlob(ctx context.Context, dgst digest.Digest) ([]byte, error) {
	f, err := s.open(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if got := dgst.Algorithm().FromBytes(data); got != dgst {
		return nil, fmt.Errorf("read blob %s: stored bytes hash to %s (%w): the store is corrupt; remove the image and pull it again", dgst, got, ErrDigestMismatch)
	}
	return data, nil
}

// Delete removes the blob dgst. Readers that already opened it keep reading.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.Path(dgst)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return notFound(dgst)
		}
		return fmt.Errorf("delete blob %s: %w", dgst, err)
	}
	return nil
}

// Walk calls fn for each stored blob, in no particular order, until fn
// returns an error (which Walk returns) or ctx is done. Files that are not
// blobs are skipped.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	algs, err := os.ReadDir(filepath.Join(s.dir, "blobs"))
	if err != nil {
		return fmt.Errorf("walk content store %s: %w", s.dir, err)
	}
	for _, a := range algs {
		alg := digest.Algorithm(a.Name())
		if !a.IsDir() || !alg.Available() {
			continue
		}
		entries, err := os.ReadDir(s.blobsDir(alg))
		if err != nil {
			return fmt.Errorf("walk content store %s: %w", s.dir, err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(alg, e.Name())
			if !e.Type().IsRegular() || dgst.Validate() != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while walking
				}
				return fmt.Errorf("walk content store %s: %w", s.dir, err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// refDir names the ingest directory of ref: the hash of the ref, so any
// string (a digest, a URL) is a safe ref.
func (s *Store) refDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.ingestRoot(), fmt.Sprintf("%x", sum))
}

// syncDir makes a rename or an unlink in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
