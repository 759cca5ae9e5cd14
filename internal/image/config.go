package image

import (
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config is an image config: the OCI image config with the fields Docker
// adds (docker_version, container_config, healthcheck, ...), so that
// inspect and the runtime spec lose nothing either way.
type Config struct {
	Created      *time.Time `json:"created,omitempty"`
	Author       string     `json:"author,omitempty"`
	Architecture string     `json:"architecture"`
	OS           string     `json:"os"`
	OSVersion    string     `json:"os.version,omitempty"`
	OSFeatures   []string   `json:"os.features,omitempty"`
	Variant      string     `json:"variant,omitempty"`

	Config  RunConfig         `json:"config"`
	RootFS  ocispec.RootFS    `json:"rootfs"`
	History []ocispec.History `json:"history,omitempty"`

	// Docker's additions.
	Comment         string     `json:"comment,omitempty"`
	Container       string     `json:"container,omitempty"`
	ContainerConfig *RunConfig `json:"container_config,omitempty"`
	DockerVersion   string     `json:"docker_version,omitempty"`
	Parent          string     `json:"parent,omitempty"`
}

// RunConfig is how a container of the image runs by default: the OCI
// fields and Docker's additions.
type RunConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`

	Healthcheck *HealthConfig `json:"Healthcheck,omitempty"`
	OnBuild     []string      `json:"OnBuild,omitempty"`
	Shell       []string      `json:"Shell,omitempty"`
	StopTimeout *int          `json:"StopTimeout,omitempty"`
}

// HealthConfig is Docker's HEALTHCHECK; durations are in nanoseconds.
type HealthConfig struct {
	Test          []string      `json:"Test,omitempty"`
	Interval      time.Duration `json:"Interval,omitempty"`
	Timeout       time.Duration `json:"Timeout,omitempty"`
	StartPeriod   time.Duration `json:"StartPeriod,omitempty"`
	StartInterval time.Duration `json:"StartInterval,omitempty"`
	Retries       int           `json:"Retries,omitempty"`
}

// Platform returns the platform the config says the image is for.
func (c *Config) Platform() ocispec.Platform {
	return ocispec.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant,
		OSVersion: c.OSVersion, OSFeatures: c.OSFeatures}
}

// ParseConfig parses and validates an image config: JSON, and a rootfs of
// type "layers" with valid diff IDs. History is not checked against the
// layers (docker runs such images too; History copes).
func ParseConfig(data []byte) (*Config, error) {
	const what = "parse image config"
	var c Config
	if err := strictUnmarshal(data, &c); err != nil {
		return nil, invalid(what, "%v", err)
	}
	if c.RootFS.Type != "layers" {
		return nil, invalid(what, "rootfs type is %q, want \"layers\"", c.RootFS.Type)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, invalid(what, "diff ID %d (%q): %v", i, string(d), err)
		}
	}
	return &c, nil
}

// HistoryEntry is one line of `docker history`.
type HistoryEntry struct {
	Created    time.Time
	CreatedBy  string
	Comment    string
	EmptyLayer bool
	// DiffID and Size are those of the layer the step made; empty and 0
	// for steps that made none.
	DiffID digest.Digest
	Size   int64
}

// History returns the config's history newest first, as `docker history`
// shows it, with each non-empty step matched to its layer and sized by
// layerSize (the unpacked size by diff ID; nil for no sizes). A config
// without history gets one entry per layer.
func History(c *Config, layerSize func(digest.Digest) int64) []HistoryEntry {
	size := func(d digest.Digest) int64 {
		if layerSize == nil {
			return 0
		}
		return layerSize(d)
	}
	var created time.Time
	if c.Created != nil {
		created = *c.Created
	}
	var out []HistoryEntry
	if len(c.History) == 0 {
		for _, d := range c.RootFS.DiffIDs {
			out = append(out, HistoryEntry{Created: created, DiffID: d, Size: size(d)})
		}
	}
	layer := 0
	for _, h := range c.History {
		e := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(c.RootFS.DiffIDs) {
			e.DiffID = c.RootFS.DiffIDs[layer]
			e.Size = size(e.DiffID)
			layer++
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
