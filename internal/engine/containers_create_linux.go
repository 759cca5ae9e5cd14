package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// CreateRequest is docker's container create: a name and the API's config.
type CreateRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Networking is --ip, --network-alias and --mac-address.
	Networking *store.Networking
}

// Create makes a container from req.Config.Image: its record, its
// writable layer and its volumes. The image must be present (the CLI
// pulls it first). It returns the container and warnings for the user.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (_ *store.Container, warnings []string, retErr error) {
	if req.Config == nil || req.Config.Image == "" {
		return nil, nil, errdefs.InvalidArgument(errors.New("no image given"))
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	hc := req.HostConfig
	if err := validateHostConfig(hc); err != nil {
		return nil, nil, err
	}
	name := strings.TrimPrefix(req.Name, "/")
	if name != "" && !validName.MatchString(name) {
		return nil, nil, errdefs.InvalidArgument(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	img, err := e.images.get(ctx, req.Config.Image)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := e.images.readConfig(ctx, img)
	if err != nil {
		return nil, nil, err
	}
	st, err := e.images.Layers()
	if err != nil {
		return nil, nil, err
	}
	id := newID()
	if err := st.CreateContainerLayer(id, img.ChainID()); err != nil {
		return nil, nil, fmt.Errorf("create container: %w", err)
	}
	defer func() {
		if retErr != nil {
			_ = st.RemoveContainerLayer(id)
		}
	}()
	runtimeName := hc.Runtime
	if runtimeName == "" {
		runtimeName = "berth"
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	rec := &store.Container{
		ID:          id,
		Created:     time.Now().UTC(),
		Image:       img.ID.String(),
		ImageName:   req.Config.Image,
		Config:      req.Config,
		ImageConfig: &cfg.Config,
		HostConfig:  hc,
		State:       store.State{Status: store.StatusCreated},
		Driver:      st.Driver().Name(),
		Runtime:     runtimeName,
		Networking:  req.Networking,
	}
	if hc.LogConfig.Type == "json-file" {
		rec.LogPath = filepath.Join(e.containers.Dir(id), id+"-json.log")
	}
	mounts, warn, err := e.resolveMounts(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, warn...)
	rec.Mounts = mounts
	defer func() {
		if retErr != nil {
			e.releaseVolumes(rec, true)
		}
	}()

	unlock, err := e.containers.Lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	if name == "" {
		for i := 0; ; i++ {
			name = randomName()
			if i > 20 {
				name += "_" + ShortID(id)[:4]
			}
			if c, err := e.containers.ByName(name); err != nil {
				return nil, nil, err
			} else if c == nil {
				break
			}
		}
	} else if c, err := e.containers.ByName(name); err != nil {
		return nil, nil, err
	} else if c != nil {
		return nil, nil, errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, c.ID))
	}
	rec.Name = name
	if err := e.containers.Put(rec); err != nil {
		return nil, nil, err
	}
	e.emit("create", rec, nil)
	return rec, warnings, nil
}

// validateHostConfig refuses what dockerd refuses before creating
// anything.
func validateHostConfig(hc *container.HostConfig) error {
	p := hc.RestartPolicy
	switch p.Name {
	case "", container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if p.MaximumRetryCount != 0 {
			return errdefs.InvalidArgument(fmt.Errorf("invalid restart policy: maximum retry count can only be used with 'on-failure'"))
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return errdefs.InvalidArgument(errors.New("invalid restart policy: maximum retry count cannot be negative"))
		}
	default:
		return errdefs.InvalidArgument(fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name))
	}
	if hc.AutoRemove && p.Name != "" && p.Name != container.RestartPolicyDisabled {
		return errdefs.InvalidArgument(errors.New("can't create 'AutoRemove' container with restart policy"))
	}
	switch hc.LogConfig.Type {
	case "", "json-file", "none":
	default:
		return errdefs.InvalidArgument(fmt.Errorf("logger: no log driver named '%s' is registered", hc.LogConfig.Type))
	}
	return nil
}
