package engine

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-dev/berth/internal/engine/store"
)

// EffectiveConfig is the container's config merged with its image's, as
// docker stores and shows it: image env first (overridden by the user's),
// entrypoint and cmd as they run, labels from both.
func EffectiveConfig(rec *store.Container) *container.Config {
	cfg := *rec.Config
	img := rec.ImageConfig
	if img == nil {
		return &cfg
	}
	env := slices.Clone(cfg.Env)
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	var merged []string
	for _, kv := range img.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !have[k] {
			merged = append(merged, kv)
		}
	}
	cfg.Env = append(merged, env...)
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		cfg.Cmd = img.Cmd
	}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = img.Entrypoint
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = nil
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(img.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	// The user's volumes (-v /path) and the image's together, as docker.
	if len(img.Volumes) > 0 {
		vols := map[string]struct{}{}
		for k, v := range cfg.Volumes {
			vols[k] = v
		}
		for k, v := range img.Volumes {
			vols[k] = v
		}
		cfg.Volumes = vols
	}
	return &cfg
}

// Inspect is docker inspect's JSON for one container.
func (e *Engine) Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return nil, err
	}
	cfg := EffectiveConfig(rec)
	args := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	var path string
	if len(args) > 0 {
		path, args = args[0], args[1:]
	}
	if args == nil {
		args = []string{}
	}
	st := rec.State
	bundle := e.bundleDir(rec.ID)
	out := &container.InspectResponse{
		ID:      rec.ID,
		Created: rec.Created.Format(time.RFC3339Nano),
		Path:    path,
		Args:    args,
		State: &container.State{
			Status:     container.ContainerState(st.Status),
			Running:    st.Status == store.StatusRunning || st.Status == store.StatusPaused,
			Paused:     st.Status == store.StatusPaused,
			Restarting: st.Status == store.StatusRestarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == store.StatusDead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  dockerTime(st.StartedAt),
			FinishedAt: dockerTime(st.FinishedAt),
		},
		Image:          rec.Image,
		ResolvConfPath: filepath.Join(bundle, "resolv.conf"),
		HostnamePath:   filepath.Join(bundle, "hostname"),
		HostsPath:      filepath.Join(bundle, "hosts"),
		LogPath:        rec.LogPath,
		Name:           "/" + rec.Name,
		RestartCount:   rec.RestartCount,
		Driver:         rec.Driver,
		Platform:       "linux",
		HostConfig:     rec.HostConfig,
		Config:         cfg,
		Mounts:         []container.MountPoint{},
	}
	if rec.ImageConfig != nil {
		out.Platform = "linux"
	}
	for _, m := range rec.Mounts {
		out.Mounts = append(out.Mounts, container.MountPoint{
			Type:        mount.Type(m.Type),
			Name:        m.Name,
			Source:      m.Source,
			Destination: m.Destination,
			Driver:      m.Driver,
			Mode:        m.Mode,
			RW:          m.RW,
			Propagation: mount.Propagation(m.Propagation),
		})
	}
	if ls, err := e.images.layersIfCreated(); err == nil && ls != nil {
		data := map[string]string{}
		if mounts, err := ls.ContainerMounts(rec.ID); err == nil {
			for _, m := range mounts {
				for _, o := range m.Options {
					k, v, ok := strings.Cut(o, "=")
					switch {
					case ok && k == "lowerdir":
						data["LowerDir"] = v
					case ok && k == "upperdir":
						data["UpperDir"] = v
					case ok && k == "workdir":
						data["WorkDir"] = v
					}
				}
				if m.Type == "bind" {
					data["UpperDir"] = m.Source
				}
			}
		}
		data["MergedDir"] = filepath.Join(ls.Root(), "mnt", rec.ID)
		out.GraphDriver = &storage.DriverData{Name: rec.Driver, Data: data}
		if size {
			if n, err := ls.ContainerSize(ctx, rec.ID); err == nil {
				out.SizeRw = &n
			}
		}
	}
	out.NetworkSettings = e.networkSettings(rec)
	return out, nil
}

// dockerTime formats t as docker does, with the zero time as
// "0001-01-01T00:00:00Z".
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ListOptions are docker ps's.
type ContainerListOptions struct {
	All     bool
	Filters map[string][]string
}

// ListContainers returns containers, newest first, reconciled with the
// machine; without All only running ones.
func (e *Engine) ListContainers(ctx context.Context, opts ContainerListOptions) ([]*store.Container, error) {
	all, err := e.containers.List()
	if err != nil {
		return nil, err
	}
	var out []*store.Container
	for _, c := range all {
		c = e.refresh(c)
		if !opts.All && !c.Running() && len(opts.Filters["status"]) == 0 && len(opts.Filters["exited"]) == 0 {
			continue
		}
		if !matchContainer(c, opts.Filters) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// matchContainer applies docker ps's filters: id, name, label, status,
// exited, ancestor.
func matchContainer(c *store.Container, f map[string][]string) bool {
	anyOf := func(key string, ok func(string) bool) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return anyOf("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		anyOf("name", func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) &&
		anyOf("status", func(v string) bool { return c.State.Status == v }) &&
		anyOf("exited", func(v string) bool {
			return c.State.Status == store.StatusExited && v == itoa(c.State.ExitCode)
		}) &&
		anyOf("ancestor", func(v string) bool {
			return c.ImageName == v || strings.HasPrefix(strings.TrimPrefix(c.Image, "sha256:"), strings.TrimPrefix(v, "sha256:")) ||
				c.ImageName == v+":latest"
		}) &&
		allLabels(EffectiveConfig(c).Labels, f["label"])
}

func allLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

func itoa(n int) string { return strconv.Itoa(n) }
