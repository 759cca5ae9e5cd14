package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/storage"
)

// Remove is `docker rmi nameOrID`: it untags the reference, and deletes the
// image when nothing names it any more (or, given an ID, deletes the image
// and its references; force deletes one referenced from several
// repositories). The deleted image's layers are released in the layer
// store, which deletes those no other image or container holds, and its
// blobs no other image needs are collected.
func (s *Images) Remove(ctx context.Context, nameOrID string, force bool) (RemoveResult, error) {
	rep, err := s.is.Remove(ctx, nameOrID, image.RemoveOptions{Force: force})
	if err != nil {
		return RemoveResult{}, err
	}
	res := RemoveResult{Untagged: rep.Untagged}
	if len(rep.Deleted) == 0 {
		return res, nil
	}
	freed, err := s.release(ctx, rep.Deleted)
	for _, img := range rep.Deleted {
		res.Deleted = append(res.Deleted, img.ID)
	}
	res.SpaceReclaimed = freed
	if err != nil {
		return res, err
	}
	// Layers a killed pull left referenced go now, if no pull runs.
	if st, err := s.layersIfCreated(); err != nil || st == nil {
		return res, err
	} else if err := s.reconcile(ctx, st); err != nil {
		return res, err
	}
	return res, nil
}

// release drops the deleted images' references to their layers, then
// collects the blobs no image needs. It returns the size of the layers
// deleted.
func (s *Images) release(ctx context.Context, deleted []image.Image) (int64, error) {
	var errs []error
	var freed int64
	st, err := s.layersIfCreated()
	if err != nil {
		return 0, err
	}
	if st != nil {
		before, err := layerSizes(st)
		if err != nil {
			return 0, err
		}
		for _, img := range deleted {
			chain := img.ChainID()
			if chain == "" {
				continue
			}
			if err := st.Release(chain); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
				errs = append(errs, fmt.Errorf("release layers of image %s: %w", img.ShortID(), err))
			}
		}
		after, err := layerSizes(st)
		if err != nil {
			return 0, err
		}
		for chain, size := range before {
			if _, ok := after[chain]; !ok {
				freed += size
			}
		}
	}
	if _, err := s.is.GC(ctx, s.cs); err != nil {
		errs = append(errs, err)
	}
	return freed, errors.Join(errs...)
}

func layerSizes(st *storage.Store) (map[digest.Digest]int64, error) {
	layers, err := st.Layers()
	if err != nil {
		return nil, fmt.Errorf("list layers: %w", err)
	}
	out := make(map[digest.Digest]int64, len(layers))
	for _, l := range layers {
		out[l.ChainID] = l.Size
	}
	return out, nil
}

// PruneOptions tune Prune.
type PruneOptions struct {
	// All removes every image no container uses, not only dangling ones.
	All bool
	// Filters limit what is removed: label=K[=V] and until=... are docker's;
	// berth reads label.
	Filters ImageFilters
}

// Prune removes dangling images (with All, every image no container uses),
// as `docker image prune` does, then repairs the layer store's reference
// counts if no pull or load is running, and deletes the layers and blobs
// nothing needs.
func (s *Images) Prune(ctx context.Context, opts PruneOptions) (RemoveResult, error) {
	imgs, err := s.is.List(ctx)
	if err != nil {
		return RemoveResult{}, err
	}
	var res RemoveResult
	var deleted []image.Image
	for _, img := range imgs {
		if !opts.All && !img.Dangling() {
			continue
		}
		if !opts.Filters.matchLabels(img.Labels) {
			continue
		}
		rep, err := s.is.Remove(ctx, img.ID.String(), image.RemoveOptions{Force: true})
		if errdefs.Is(err, errdefs.KindNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return res, err
		}
		res.Untagged = append(res.Untagged, rep.Untagged...)
		for _, d := range rep.Deleted {
			res.Deleted = append(res.Deleted, d.ID)
		}
		deleted = append(deleted, rep.Deleted...)
	}
	st, err := s.layersIfCreated()
	if err != nil {
		return res, err
	}
	var before map[digest.Digest]int64
	if st != nil {
		if before, err = layerSizes(st); err != nil {
			return res, err
		}
	}
	if _, err := s.release(ctx, deleted); err != nil {
		return res, err
	}
	// Debris of killed pulls; downloads interrupted today stay, to resume.
	if _, err := s.cs.PruneIngests(ctx, 24*time.Hour); err != nil {
		return res, err
	}
	if st != nil {
		if err := s.reconcile(ctx, st); err != nil {
			return res, err
		}
		if _, err := st.Prune(); err != nil {
			return res, fmt.Errorf("prune layers: %w", err)
		}
		after, err := layerSizes(st)
		if err != nil {
			return res, err
		}
		for chain, size := range before {
			if _, ok := after[chain]; !ok {
				res.SpaceReclaimed += size
			}
		}
	}
	return res, nil
}

// reconcile makes each layer's reference count what the recorded images
// say (one per image whose top layer it is), repairing counts left wrong by
// a process killed between taking a reference and recording its image. It
// does nothing while a pull, load or import holds the image lock.
func (s *Images) reconcile(ctx context.Context, st *storage.Store) error {
	unlock, ok, err := s.tryExclusive()
	if err != nil || !ok {
		return err
	}
	defer unlock()
	imgs, err := s.is.List(ctx)
	if err != nil {
		return err
	}
	want := map[digest.Digest]int{}
	for _, img := range imgs {
		if c := img.ChainID(); c != "" {
			want[c]++
		}
	}
	layers, err := st.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	for _, l := range layers {
		for n := l.Refs; n > want[l.ChainID]; n-- {
			if err := st.Release(l.ChainID); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
				return fmt.Errorf("repair layer %s: %w", l.ChainID, err)
			}
		}
		for n := l.Refs; n < want[l.ChainID]; n++ {
			if _, _, err := st.ApplyLayer(ctx, l.Parent, l.DiffID, errReader{}); err != nil {
				return fmt.Errorf("repair layer %s: %w", l.ChainID, err)
			}
		}
	}
	return nil
}

// errReader stands for a layer that must exist already.
type errReader struct{}

func (errReader) Read([]byte) (int, error) {
	return 0, errors.New("the layer is gone")
}
