package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/drivers"
)

// ImagesOptions say where the image stores live and how to reach
// registries.
type ImagesOptions struct {
	// Root is berth's root dir (--root): content/, image/, storage/ and
	// engine/ live under it.
	Root string
	// StorageDriver is the driver asked for (--storage-driver); "" lets
	// the first use of the root pick one. A root keeps its driver.
	StorageDriver string
	// Storage tunes the layer store.
	Storage storage.Options
	// Registry says how to reach registries (credentials, insecure
	// registries, CAs).
	Registry registry.Options
}

// Images is berth's image service over the stores under one root. It holds
// no lock between calls: any number of CLI processes may use one root.
type Images struct {
	opts ImagesOptions
	cs   *content.Store
	is   *image.Store

	mu     sync.Mutex
	st     *storage.Store // opened at first use
	reason string         // why its driver was picked
}

// OpenImages opens (creating them if needed) the content and image stores
// under opts.Root. The layer store is opened, and its driver picked, when
// first needed.
func OpenImages(opts ImagesOptions) (*Images, error) {
	if opts.Root == "" {
		return nil, errdefs.InvalidArgument(errors.New("open images: no root directory"))
	}
	abs, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("open images: %w", err)
	}
	opts.Root = abs
	if err := os.MkdirAll(filepath.Join(abs, "engine", "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("open images: %w", err)
	}
	cs, err := content.Open(abs)
	if err != nil {
		return nil, err
	}
	is, err := image.Open(abs)
	if err != nil {
		return nil, err
	}
	return &Images{opts: opts, cs: cs, is: is}, nil
}

// Close releases what the service holds open.
func (s *Images) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil
	}
	return s.st.Close()
}

// Root returns berth's root dir.
func (s *Images) Root() string { return s.opts.Root }

// Content returns the content store.
func (s *Images) Content() *content.Store { return s.cs }

// Store returns the image store.
func (s *Images) Store() *image.Store { return s.is }

// tmpDir is where archives are unpacked and spooled, under the root.
func (s *Images) tmpDir() string { return filepath.Join(s.opts.Root, "engine", "tmp") }

func (s *Images) storageRoot() string { return filepath.Join(s.opts.Root, "storage") }

// Layers returns the layer store, picking its driver at first use of the
// root (or refusing a --storage-driver other than the root's).
func (s *Images) Layers() (*storage.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st != nil {
		return s.st, nil
	}
	d, reason, err := drivers.Pick(s.storageRoot(), s.opts.StorageDriver)
	if err != nil {
		return nil, err
	}
	st, err := storage.Open(s.storageRoot(), d, s.opts.Storage)
	if err != nil {
		return nil, err
	}
	s.st, s.reason = st, reason
	return st, nil
}

// layersIfCreated returns the layer store if the root has one already; nil
// (and no driver picked) otherwise. Read-only commands use it.
func (s *Images) layersIfCreated() (*storage.Store, error) {
	if name, _, err := storage.ReadDriverChoice(s.storageRoot()); err != nil || name == "" {
		return nil, err
	}
	return s.Layers()
}

// holdLock takes the root's image lock, shared: held by whoever holds
// layer references that no recorded image accounts for yet (a pull, a
// load, an import in progress), so that reconcile, which takes it
// exclusively, never takes those references away.
// beginWrite prepares a pull, load or import: the layer store, the engine
// lock (shared, so rmi's repair of reference counts waits) and a content
// lease (so no GC deletes blobs before the image is recorded). done
// releases both.
func (s *Images) beginWrite(ctx context.Context) (st *storage.Store, done func(), err error) {
	if st, err = s.Layers(); err != nil {
		return nil, nil, err
	}
	unlock, err := s.holdLock(ctx)
	if err != nil {
		return nil, nil, err
	}
	releaseLease, err := s.cs.Lease(ctx)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, func() {
		_ = releaseLease()
		unlock()
	}, nil
}

func (s *Images) holdLock(ctx context.Context) (release func(), err error) {
	return flockPath(ctx, filepath.Join(s.opts.Root, "engine", "images.lock"), unix.LOCK_SH)
}

// tryExclusive takes the root's image lock exclusively if no one holds it.
func (s *Images) tryExclusive() (release func(), ok bool, err error) {
	path := filepath.Join(s.opts.Root, "engine", "images.lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, true, nil
}

// flockPath takes flock(2) how on path, waiting for ctx.
func flockPath(ctx context.Context, path string, how int) (func(), error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, ctx.Err()
		case <-sleepTick():
		}
	}
}

// get resolves nameOrID in the image store.
func (s *Images) get(ctx context.Context, nameOrID string) (image.Image, error) {
	return s.is.Get(ctx, nameOrID)
}

// readConfig reads and parses img's config from the content store.
func (s *Images) readConfig(ctx context.Context, img image.Image) (*image.Config, error) {
	data, err := s.cs.ReadBlob(ctx, img.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", img.ShortID(), err)
	}
	return image.ParseConfig(data)
}

// record stores img under refs, with the reference to its top layer that
// the caller took: when the image was stored already, that reference is one
// too many and is dropped.
func (s *Images) record(ctx context.Context, st *storage.Store, img image.Image, refs []image.Reference) (image.Image, error) {
	start := timeNow()
	out, err := s.is.Put(ctx, img, refs...)
	if err != nil {
		return image.Image{}, err
	}
	if chain := img.ChainID(); chain != "" && out.Added.Before(start) {
		// Stored before: it holds a reference of its own already.
		if err := st.Release(chain); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			return out, err
		}
	}
	return out, nil
}

// releaseAll drops layer references taken for an image that will not be
// recorded.
func releaseAll(st *storage.Store, chains []digest.Digest) {
	for i := len(chains) - 1; i >= 0; i-- {
		if chains[i] == "" {
			continue
		}
		_ = st.Release(chains[i]) // best effort: reconcile repairs the count
	}
}
