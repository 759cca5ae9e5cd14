// Package engine is berth's engine: what users see of images and, later,
// containers. The same functions serve the CLI and the Docker Engine API.
//
// Images (images_*.go) owns the stores under berth's root: the content
// store (blobs), the image store (names and tags) and the layer store
// (unpacked layers, with the storage driver picked at first use). It pulls,
// pushes, imports, saves, loads, lists and removes images as docker does.
package engine

import (
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
)

// ImageSummary is one image as `berth images` lists it.
type ImageSummary struct {
	ID          digest.Digest
	RepoTags    []string // familiar: busybox:latest
	RepoDigests []string // familiar: busybox@sha256:...
	Created     time.Time
	Size        int64
	Labels      map[string]string
	Platform    ocispec.Platform
}

// Dangling reports whether no reference names the image (docker's
// <none>:<none>).
func (s ImageSummary) Dangling() bool { return len(s.RepoTags) == 0 && len(s.RepoDigests) == 0 }

func summaryOf(img image.Image) ImageSummary {
	return ImageSummary{ID: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
		Created: img.Created, Size: img.Size, Labels: img.Labels, Platform: img.Platform}
}

// ImageInspect is `docker image inspect`'s JSON for one image, field for
// field in docker's order.
type ImageInspect struct {
	ID            string          `json:"Id"`
	RepoTags      []string        `json:"RepoTags"`
	RepoDigests   []string        `json:"RepoDigests"`
	Parent        string          `json:"Parent"`
	Comment       string          `json:"Comment"`
	Created       string          `json:"Created"`
	DockerVersion string          `json:"DockerVersion"`
	Author        string          `json:"Author"`
	Config        image.RunConfig `json:"Config"`
	Architecture  string          `json:"Architecture"`
	Variant       string          `json:"Variant,omitempty"`
	Os            string          `json:"Os"`
	OsVersion     string          `json:"OsVersion,omitempty"`
	Size          int64           `json:"Size"`
	GraphDriver   GraphDriver     `json:"GraphDriver"`
	RootFS        RootFS          `json:"RootFS"`
	Metadata      ImageMetadata   `json:"Metadata"`
}

// GraphDriver says where the image's layers are on disk.
type GraphDriver struct {
	Data map[string]string `json:"Data"`
	Name string            `json:"Name"`
}

// RootFS lists the image's layers by diff ID.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers,omitempty"`
}

// ImageMetadata is what berth knows of the image beyond its config.
type ImageMetadata struct {
	LastTagTime time.Time `json:"LastTagTime"`
}

// HistoryEntry is one line of `berth history`.
type HistoryEntry struct {
	// ID is the image's ID on the newest line, "" (docker's <missing>) on
	// the others.
	ID        string
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
}

// RemoveResult is what removing or pruning images did, in docker's terms.
type RemoveResult struct {
	Untagged []string // familiar references
	Deleted  []digest.Digest
	// SpaceReclaimed is the size of the layers deleted from storage.
	SpaceReclaimed int64
}

// DiskUsage is `berth system df` for images.
type DiskUsage struct {
	Images []ImageUsage
	// LayersSize is the size of every layer the images use, each counted
	// once.
	LayersSize int64
	// Reclaimable is what removing the images no container uses would free.
	Reclaimable int64
	// Active counts the images that containers use.
	Active int
}

// ImageUsage is one image's line of `berth system df -v`.
type ImageUsage struct {
	ImageSummary
	SharedSize int64 // in layers other images use too
	UniqueSize int64 // in layers only this image uses
	Containers int
}

// Info is what `berth info` shows.
type Info struct {
	ID                 string
	Images             int
	Containers         int
	ContainersRunning  int
	ContainersPaused   int
	ContainersStopped  int
	Driver             string
	DriverStatus       [][2]string
	DockerRootDir      string
	KernelVersion      string
	OperatingSystem    string
	OSType             string
	Architecture       string
	NCPU               int
	MemTotal           int64
	CgroupDriver       string
	CgroupVersion      string
	DefaultRuntime     string
	Runtimes           []string
	ServerVersion      string
	Name               string
	LoggingDriver      string
	InsecureRegistries []string
}
