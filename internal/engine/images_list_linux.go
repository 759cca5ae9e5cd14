package engine

import (
	"context"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/storage"
)

// ListOptions tune List.
type ListOptions struct {
	// All lists intermediate images too (docker's -a); berth makes none
	// yet, so it changes nothing.
	All     bool
	Filters ImageFilters
}

// List returns the images, newest first, as `docker images` does: with a
// reference filter, only the references that match.
func (s *Images) List(ctx context.Context, opts ListOptions) ([]ImageSummary, error) {
	imgs, err := s.is.List(ctx)
	if err != nil {
		return nil, err
	}
	f := opts.Filters
	var before, since *time.Time
	for _, b := range []struct {
		name string
		dst  **time.Time
	}{{f.Before, &before}, {f.Since, &since}} {
		if b.name == "" {
			continue
		}
		img, err := s.is.Get(ctx, b.name)
		if err != nil {
			return nil, err
		}
		t := img.Created
		*b.dst = &t
	}
	out := make([]ImageSummary, 0, len(imgs))
	for _, img := range imgs {
		sum := summaryOf(img)
		if f.Dangling != nil && *f.Dangling != sum.Dangling() {
			continue
		}
		if before != nil && !img.Created.Before(*before) {
			continue
		}
		if since != nil && !img.Created.After(*since) {
			continue
		}
		if !f.matchLabels(img.Labels) {
			continue
		}
		if len(f.Reference) > 0 {
			sum.RepoTags = filterReferences(sum.RepoTags, f.Reference)
			sum.RepoDigests = filterReferences(sum.RepoDigests, f.Reference)
			if len(sum.RepoTags) == 0 && len(sum.RepoDigests) == 0 {
				continue
			}
		}
		out = append(out, sum)
	}
	return out, nil
}

// Inspect returns docker's image inspect view of the image nameOrID names.
func (s *Images) Inspect(ctx context.Context, nameOrID string) (*ImageInspect, error) {
	img, err := s.get(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	cfg, err := s.readConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	out := &ImageInspect{
		ID:            img.ID.String(),
		RepoTags:      nonNil(img.RepoTags),
		RepoDigests:   nonNil(img.RepoDigests),
		Parent:        cfg.Parent,
		Comment:       cfg.Comment,
		DockerVersion: cfg.DockerVersion,
		Author:        cfg.Author,
		Config:        cfg.Config,
		Architecture:  cfg.Architecture,
		Variant:       cfg.Variant,
		Os:            cfg.OS,
		OsVersion:     cfg.OSVersion,
		Size:          img.Size,
		RootFS:        RootFS{Type: cfg.RootFS.Type},
		Metadata:      ImageMetadata{LastTagTime: img.LastTagTime},
	}
	if cfg.Created != nil {
		out.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	st, err := s.layersIfCreated()
	if err != nil {
		return nil, err
	}
	if st != nil {
		out.GraphDriver = graphDriver(st, img.ChainID())
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// graphDriver says where the layers of chain are: overlay's lower and
// upper directories, or the directory holding the whole tree.
func graphDriver(st *storage.Store, chain digest.Digest) GraphDriver {
	d := st.Driver()
	g := GraphDriver{Name: d.Name(), Data: map[string]string{}}
	if chain == "" {
		return g
	}
	top, err := st.Layer(chain)
	if err != nil {
		return g
	}
	if d.Whiteouts() != archive.WhiteoutOverlay { // a full tree per layer
		g.Data["Dir"] = d.Dir(top.CacheID)
		return g
	}
	g.Data["UpperDir"] = d.Dir(top.CacheID)
	var lower []string
	for p := top.Parent; p != ""; {
		l, err := st.Layer(p)
		if err != nil {
			break
		}
		lower = append(lower, d.Dir(l.CacheID))
		p = l.Parent
	}
	if len(lower) > 0 {
		g.Data["LowerDir"] = strings.Join(lower, ":")
	}
	return g
}

// History returns the image's history, newest first, as `docker history`
// shows it: each step's layer sized as unpacked.
func (s *Images) History(ctx context.Context, nameOrID string) ([]HistoryEntry, error) {
	img, err := s.get(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	cfg, err := s.readConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	sizes := map[digest.Digest]int64{}
	for _, l := range img.Layers {
		sizes[l.DiffID] = l.Size
	}
	entries := image.History(cfg, func(d digest.Digest) int64 { return sizes[d] })
	out := make([]HistoryEntry, len(entries))
	for i, e := range entries {
		out[i] = HistoryEntry{Created: e.Created, CreatedBy: e.CreatedBy, Size: e.Size, Comment: e.Comment}
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
	}
	return out, nil
}

// Exists reports whether nameOrID names an image.
func (s *Images) Exists(ctx context.Context, nameOrID string) (bool, error) {
	_, err := s.is.Get(ctx, nameOrID)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return false, nil
	}
	return err == nil, err
}
