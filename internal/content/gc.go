package content

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// GCStats reports what a garbage collection removed.
type GCStats struct {
	Removed []digest.Digest
	Bytes   int64
}

func (s *Store) gcLockPath() string { return filepath.Join(s.dir, "gc.lock") }

// Lease keeps GC from running until release is called: hold one from the
// first blob a pull writes until the image that references its blobs is
// recorded, so no collection sees them unreferenced in between. Leases are
// shared (any number of processes may hold one); GC waits for all to end.
// A process must not call GC while it holds a Lease.
func (s *Store) Lease(ctx context.Context) (release func() error, err error) {
	l, err := lockFile(ctx, s.gcLockPath(), true)
	if err != nil {
		return nil, fmt.Errorf("lease content store: %w", err)
	}
	return l.unlock, nil
}

// GC removes every blob for which keep returns false. It first waits for
// all Leases to end and holds off new ones while it runs; keep is called
// only after that, so a keep that loads the set of referenced blobs on its
// first call sees every finished pull. Ingests are not touched (see
// PruneIngests).
func (s *Store) GC(ctx context.Context, keep func(digest.Digest) bool) (GCStats, error) {
	l, err := lockFile(ctx, s.gcLockPath(), false)
	if err != nil {
		return GCStats{}, fmt.Errorf("garbage collect: %w", err)
	}
	defer l.unlock()
	var stats GCStats
	var dead []Info
	err = s.Walk(ctx, func(info Info) error {
		if !keep(info.Digest) {
			dead = append(dead, info)
		}
		return nil
	})
	if err != nil {
		return stats, fmt.Errorf("garbage collect: %w", err)
	}
	for _, info := range dead {
		if err := s.Delete(ctx, info.Digest); err != nil && !errors.Is(err, ErrNotFound) {
			return stats, fmt.Errorf("garbage collect: %w", err)
		}
		stats.Removed = append(stats.Removed, info.Digest)
		stats.Bytes += info.Size
	}
	return stats, nil
}
