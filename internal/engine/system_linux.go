package engine

import (
	"context"
	"errors"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Info is Images.Info with the container counts filled in.
func (e *Engine) Info(ctx context.Context, opts InfoOptions) (*Info, error) {
	info, err := e.images.Info(ctx, opts)
	if err != nil {
		return nil, err
	}
	all, err := e.ListContainers(ctx, ContainerListOptions{All: true})
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		info.Containers++
		switch c.State.Status {
		case store.StatusPaused:
			info.ContainersPaused++
		case store.StatusRunning, store.StatusRestarting:
			info.ContainersRunning++
		default:
			info.ContainersStopped++
		}
	}
	return info, nil
}

// PruneImages removes dangling images (with opts.All, every image) that
// no container uses and that pass opts.Filters, as docker image prune
// does, and returns what went.
func (e *Engine) PruneImages(ctx context.Context, opts PruneOptions) (RemoveResult, error) {
	var res RemoveResult
	containers, err := e.containers.List()
	if err != nil {
		return res, err
	}
	used := map[string]bool{}
	for _, c := range containers {
		used[c.Image] = true
	}
	imgs, err := e.images.is.List(ctx)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, img := range imgs {
		dangling := len(img.RepoTags) == 0 && len(img.RepoDigests) == 0
		if (!opts.All && !dangling) || used[img.ID.String()] || !opts.Filters.matchLabels(img.Labels) {
			continue
		}
		r, err := e.images.Remove(ctx, img.ID.String(), true)
		res.Untagged = append(res.Untagged, r.Untagged...)
		res.Deleted = append(res.Deleted, r.Deleted...)
		res.SpaceReclaimed += r.SpaceReclaimed
		if err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// SystemPruneOptions are docker system prune's flags.
type SystemPruneOptions struct {
	All     bool // every unused image, not only dangling ones
	Volumes bool // also anonymous volumes no container uses
}

// SystemPruneReport is what system prune removed.
type SystemPruneReport struct {
	Containers     []string
	Images         RemoveResult
	Volumes        []string
	SpaceReclaimed int64
}

// SystemPrune removes stopped containers, then unused images and, with
// opts.Volumes, unused anonymous volumes, as docker system prune does.
func (e *Engine) SystemPrune(ctx context.Context, opts SystemPruneOptions) (SystemPruneReport, error) {
	var rep SystemPruneReport
	var errs []error
	removed, reclaimed, err := e.PruneContainers(ctx)
	rep.Containers, rep.SpaceReclaimed = removed, reclaimed
	if err != nil {
		errs = append(errs, err)
	}
	if opts.Volumes {
		vs, err := e.Volumes()
		if err == nil {
			var size int64
			rep.Volumes, size, err = vs.Prune(nil)
			rep.SpaceReclaimed += size
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	rep.Images, err = e.PruneImages(ctx, PruneOptions{All: opts.All})
	rep.SpaceReclaimed += rep.Images.SpaceReclaimed
	if err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}
