package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/runtime"
)

// CommitOptions are docker commit's flags.
type CommitOptions struct {
	// Reference names the new image (REPOSITORY[:TAG]); "" leaves it
	// untagged.
	Reference string
	Author    string // -a
	Message   string // -m
	// Changes are Dockerfile instructions applied to the config (-c).
	Changes []string
	// Pause freezes a running container while its layer is read (-p,
	// docker's default).
	Pause bool
}

// Commit makes an image of container ref: its image's layers plus one
// holding the container's changes (none when it changed nothing), with
// the container's config as it runs, changed by opts.Changes.
func (e *Engine) Commit(ctx context.Context, ref string, opts CommitOptions) (image.Image, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return image.Image{}, err
	}
	var refs []image.Reference
	if opts.Reference != "" {
		r, err := image.ParseReference(opts.Reference)
		if err != nil {
			return image.Image{}, err
		}
		if r.Digest != "" {
			return image.Image{}, errdefs.InvalidArgument(fmt.Errorf("refusing to create a tag with a digest reference"))
		}
		refs = append(refs, r.WithDefaultTag())
	}
	base, err := e.images.get(ctx, rec.Image)
	if err != nil {
		return image.Image{}, fmt.Errorf("commit %s: its image %s: %w", rec.Name, ShortID(strings.TrimPrefix(rec.Image, "sha256:")), err)
	}
	baseCfg, err := e.images.readConfig(ctx, base)
	if err != nil {
		return image.Image{}, err
	}
	run := commitRunConfig(rec)
	if err := ApplyChanges(&run, opts.Changes); err != nil {
		return image.Image{}, err
	}

	st, done, err := e.images.beginWrite(ctx)
	if err != nil {
		return image.Image{}, err
	}
	defer done()
	if opts.Pause && rec.State.Status == store.StatusRunning && runtime.ProcessAlive(rec.State.Pid, rec.State.PidStart) {
		if err := e.runtimeOp(rec, "pause"); err != nil {
			return image.Image{}, fmt.Errorf("commit %s: pause: %w", rec.Name, err)
		}
		defer func() { _ = e.runtimeOp(rec, "resume") }()
	}

	changes, err := st.Diff(ctx, rec.ID)
	if err != nil {
		return image.Image{}, fmt.Errorf("commit %s: %w", rec.Name, err)
	}
	created := timeNow().UTC()
	hist := ocispec.History{Created: &created, Author: opts.Author, Comment: opts.Message,
		CreatedBy: strings.Join(EffectiveConfig(rec).Cmd, " ")}
	layers := make([]ocispec.Descriptor, 0, len(base.Layers)+1)
	for _, l := range base.Layers {
		layers = append(layers, l.Blob)
	}
	diffIDs := base.DiffIDs()
	if len(changes) == 0 {
		hist.EmptyLayer = true
	} else {
		desc, diffID, err := e.storeContainerLayer(ctx, rec, changes)
		if err != nil {
			return image.Image{}, fmt.Errorf("commit %s: %w", rec.Name, err)
		}
		layers = append(layers, desc)
		diffIDs = append(diffIDs, diffID)
	}
	cfg := image.Config{
		Created:      &created,
		Author:       opts.Author,
		Architecture: baseCfg.Architecture,
		OS:           baseCfg.OS,
		OSVersion:    baseCfg.OSVersion,
		Variant:      baseCfg.Variant,
		Config:       run,
		RootFS:       ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		History:      append(slices.Clone(baseCfg.History), hist),
		Comment:      opts.Message,
		Container:    rec.ID,
		Parent:       rec.Image,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return image.Image{}, err
	}
	img, err := e.images.storeManifest(ctx, data, &cfg, layers)
	if err != nil {
		return image.Image{}, fmt.Errorf("commit %s: %w", rec.Name, err)
	}
	if err := e.images.unpackStored(ctx, st, &img); err != nil {
		return image.Image{}, fmt.Errorf("commit %s: %w", rec.Name, err)
	}
	out, err := e.images.record(ctx, st, img, refs)
	if err != nil {
		releaseAll(st, []digest.Digest{img.ChainID()})
		return image.Image{}, fmt.Errorf("commit %s: %w", rec.Name, err)
	}
	attrs := map[string]string{"comment": opts.Message}
	if opts.Reference != "" {
		attrs["imageName"] = opts.Reference
	}
	e.emit("commit", rec, attrs)
	return out, nil
}

// storeContainerLayer writes the container's changes as a layer tar into
// the content store.
func (e *Engine) storeContainerLayer(ctx context.Context, rec *store.Container, changes []archive.Change) (ocispec.Descriptor, digest.Digest, error) {
	st, err := e.images.Layers()
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	c, err := st.Container(rec.ID)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	// The layer's own directory (overlay's upper dir), not the mount:
	// WriteTar turns overlay whiteouts into ".wh." entries.
	upper := st.Driver().Dir(c.CacheID)
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := archive.WriteTar(ctx, pw, upper, changes)
		pw.CloseWithError(err)
		written <- err
	}()
	desc, diffID, err := e.images.storeLayer(ctx, pr, ingestRef("commit"))
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if the store gave up
	if werr := <-written; werr != nil && err == nil {
		err = werr
	}
	return desc, diffID, err
}

// commitRunConfig is the config a committed image gets: the image's,
// overridden by what the container runs with (docker keeps both merged in
// the container's config).
func commitRunConfig(rec *store.Container) image.RunConfig {
	var run image.RunConfig
	if rec.ImageConfig != nil {
		run = *rec.ImageConfig
		run.ExposedPorts = maps.Clone(run.ExposedPorts)
		run.Volumes = maps.Clone(run.Volumes)
	}
	cfg := EffectiveConfig(rec)
	run.User = cfg.User
	run.Env = slices.Clone(cfg.Env)
	run.Entrypoint = slices.Clone(cfg.Entrypoint)
	run.Cmd = slices.Clone(cfg.Cmd)
	run.WorkingDir = cfg.WorkingDir
	run.Labels = maps.Clone(cfg.Labels)
	run.StopSignal = cfg.StopSignal
	if cfg.StopTimeout != nil {
		v := *cfg.StopTimeout
		run.StopTimeout = &v
	}
	if len(cfg.Shell) > 0 {
		run.Shell = slices.Clone(cfg.Shell)
	}
	if len(cfg.OnBuild) > 0 {
		run.OnBuild = slices.Clone(cfg.OnBuild)
	}
	if hc := cfg.Healthcheck; hc != nil {
		run.Healthcheck = healthOf(hc)
	}
	for p := range cfg.ExposedPorts {
		if run.ExposedPorts == nil {
			run.ExposedPorts = map[string]struct{}{}
		}
		run.ExposedPorts[p.String()] = struct{}{}
	}
	for v := range cfg.Volumes {
		if run.Volumes == nil {
			run.Volumes = map[string]struct{}{}
		}
		run.Volumes[v] = struct{}{}
	}
	return run
}

func healthOf(hc *container.HealthConfig) *image.HealthConfig {
	return &image.HealthConfig{Test: slices.Clone(hc.Test), Interval: hc.Interval, Timeout: hc.Timeout,
		StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
}
