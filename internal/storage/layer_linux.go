package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Layer is a committed image layer.
type Layer struct {
	ChainID digest.Digest `json:"chainID"`
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"`
	// CacheID names the layer in the driver.
	CacheID string `json:"cacheID"`
	// Size is the size of the layer's uncompressed tar, in bytes (docker's
	// layer size): about what it adds on disk with overlay and btrfs; vfs
	// stores the layers below it again.
	Size int64 `json:"size"`
	// Refs counts the holders of the layer: each ApplyLayer call that
	// returned it, until Release. Child layers and containers hold it too,
	// without being counted here.
	Refs    int       `json:"refs"`
	Created time.Time `json:"created"`
}

// ChainID is the chain ID of the layer diffID stacked on the layer parent
// ("" for a base layer).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return identity.ChainID([]digest.Digest{parent, diffID})
}

// ApplyLayer makes the layer whose tar r holds (diffID is the digest of the
// uncompressed tar) on top of parent ("" for a base layer) and returns its
// chain ID and unpacked size. A layer that exists already is not made
// again and r is not read. Each call takes a reference on the layer that
// Release drops.
func (s *Store) ApplyLayer(ctx context.Context, parent, diffID digest.Digest, r io.Reader) (digest.Digest, int64, error) {
	if err := diffID.Validate(); err != nil {
		return "", 0, errdefs.InvalidArgument(fmt.Errorf("apply layer: diff ID %q: %w", diffID, err))
	}
	chain := ChainID(parent, diffID)
	lock, err := s.lock()
	if err != nil {
		return "", 0, err
	}
	if err := s.recoverLocked(); err != nil {
		lock.Unlock()
		return "", 0, err
	}
	if l, err := s.retainLocked(chain); err != nil || l != nil {
		lock.Unlock()
		if err != nil {
			return "", 0, err
		}
		return chain, l.Size, nil
	}
	var parentCache string
	if parent != "" {
		p, err := s.layer(parent)
		if err != nil {
			lock.Unlock()
			return "", 0, fmt.Errorf("apply layer %s: parent: %w", diffID, err)
		}
		parentCache = p.CacheID
	}
	cacheID := RandomID(16)
	mark, err := s.begin(cacheID, pending{On: parent})
	lock.Unlock()
	if err != nil {
		return "", 0, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	defer mark.Unlock()

	size, err := s.unpack(ctx, cacheID, parentCache, r)
	if err != nil {
		s.abort(cacheID, pending{On: parent})
		return "", 0, fmt.Errorf("apply layer %s: %w", diffID, err)
	}

	if lock, err = s.lock(); err != nil {
		s.abort(cacheID, pending{On: parent})
		return "", 0, err
	}
	defer lock.Unlock()
	if l, err := s.retainLocked(chain); err != nil || l != nil {
		// Another process made the same layer meanwhile: use that one.
		s.discardLocked(cacheID)
		if err != nil {
			return "", 0, err
		}
		return chain, l.Size, nil
	}
	l := Layer{ChainID: chain, DiffID: diffID, Parent: parent, CacheID: cacheID, Size: size, Refs: 1, Created: time.Now().UTC()}
	if err := s.saveLayer(&l); err != nil {
		s.discardLocked(cacheID)
		return "", 0, fmt.Errorf("apply layer %s: commit: %w", diffID, err)
	}
	_ = os.Remove(s.pendingPath(cacheID))
	return chain, size, nil
}

func (s *Store) unpack(ctx context.Context, cacheID, parentCache string, r io.Reader) (int64, error) {
	if err := s.driver.Create(cacheID, parentCache, false); err != nil {
		return 0, err
	}
	dir := s.driver.Dir(cacheID)
	return archive.Apply(ctx, dir, r, archive.ApplyOptions{
		Whiteouts: s.driver.Whiteouts(),
		NoDevices: s.opts.NoDevices,
		Sync:      s.opts.Sync,
	})
}

// retainLocked takes a reference on layer chain if it exists.
func (s *Store) retainLocked(chain digest.Digest) (*Layer, error) {
	l, err := s.layer(chain)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	l.Refs++
	if err := s.saveLayer(&l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Release drops a reference that ApplyLayer took on layer chain and deletes
// the layer, and the layers below it, once nothing holds them.
func (s *Store) Release(chain digest.Digest) error {
	lock, err := s.lock()
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := s.recoverLocked(); err != nil {
		return err
	}
	l, err := s.layer(chain)
	if err != nil {
		return fmt.Errorf("release layer: %w", err)
	}
	if l.Refs > 0 {
		l.Refs--
		if err := s.saveLayer(&l); err != nil {
			return fmt.Errorf("release layer %s: %w", chain, err)
		}
	}
	return s.collectLocked(chain)
}

// Prune deletes every layer nothing holds (left so by a process killed
// between taking a reference and recording its holder, or by a collection
// that was interrupted), and what the driver's Cleanup finds, and returns
// the chain IDs of the layers deleted.
func (s *Store) Prune() ([]digest.Digest, error) {
	lock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := s.recoverLocked(); err != nil {
		return nil, err
	}
	layers, err := s.Layers()
	if err != nil {
		return nil, err
	}
	var removed []digest.Digest
	for _, l := range layers {
		if l.Refs > 0 {
			continue
		}
		if err := s.collectLocked(l.ChainID); err != nil {
			return removed, err
		}
		if _, err := s.layer(l.ChainID); errdefs.Is(err, errdefs.KindNotFound) {
			removed = append(removed, l.ChainID)
		}
	}
	if err := s.driver.Cleanup(); err != nil {
		return removed, err
	}
	return removed, nil
}

// collectLocked deletes layer chain and then its parents for as long as
// nothing holds them.
func (s *Store) collectLocked(chain digest.Digest) error {
	for chain != "" {
		l, err := s.layer(chain)
		if errdefs.Is(err, errdefs.KindNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if l.Refs > 0 {
			return nil
		}
		if held, err := s.heldLocked(chain); err != nil || held {
			return err
		}
		if err := s.writePending(l.CacheID, pending{}); err != nil {
			return fmt.Errorf("delete layer %s: %w", chain, err)
		}
		if err := os.Remove(s.layerPath(chain)); err != nil {
			return fmt.Errorf("delete layer %s: %w", chain, err)
		}
		s.discardLocked(l.CacheID)
		chain = l.Parent
	}
	return nil
}

// heldLocked reports whether a child layer, a container or a layer being
// made stands on layer chain.
func (s *Store) heldLocked(chain digest.Digest) (bool, error) {
	layers, err := s.Layers()
	if err != nil {
		return false, err
	}
	for _, l := range layers {
		if l.Parent == chain {
			return true, nil
		}
	}
	containers, err := s.Containers()
	if err != nil {
		return false, err
	}
	for _, c := range containers {
		if c.Image == chain {
			return true, nil
		}
	}
	ents, err := os.ReadDir(s.path("pending"))
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		cacheID, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		p, _ := s.readPending(cacheID)
		if p.On != chain {
			continue
		}
		// Held only while its maker lives.
		if m, err := tryLockExisting(s.pendingPath(cacheID)); err == nil || errors.Is(err, fs.ErrNotExist) {
			m.Unlock()
			continue
		}
		return true, nil
	}
	return false, nil
}

// Layer returns the committed layer chain.
func (s *Store) Layer(chain digest.Digest) (Layer, error) { return s.layer(chain) }

// Layers lists the committed image layers.
func (s *Store) Layers() ([]Layer, error) {
	ents, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return nil, err
	}
	layers := make([]Layer, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var l Layer
		if err := readJSON(filepath.Join(s.path("layers"), e.Name()), &l); err != nil {
			return nil, err
		}
		layers = append(layers, l)
	}
	return layers, nil
}

func (s *Store) layer(chain digest.Digest) (Layer, error) {
	var l Layer
	if err := chain.Validate(); err != nil {
		return l, errdefs.InvalidArgument(fmt.Errorf("layer %q: %w", chain, err))
	}
	err := readJSON(s.layerPath(chain), &l)
	if errors.Is(err, fs.ErrNotExist) {
		return l, errdefs.NotFound(fmt.Errorf("layer %s: not found", chain))
	}
	return l, err
}

func (s *Store) saveLayer(l *Layer) error {
	data, _ := json.Marshal(l)
	return WriteFileAtomic(s.layerPath(l.ChainID), data, true)
}

func (s *Store) layerPath(chain digest.Digest) string {
	return s.path("layers", strings.Replace(chain.String(), ":", "-", 1)+".json")
}
