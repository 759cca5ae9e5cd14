// Package store persists berth's containers: one record per container,
// written atomically, mutated under a flock so that concurrent CLI calls
// (and the monitor) never lose each other's writes. A kill -9 at any moment
// leaves each record either old or new, never torn.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/storage"
)

// Status values, as docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// State is a container's runtime state as `inspect` shows it.
type State struct {
	Status     string    `json:"Status"`
	Pid        int       `json:"Pid"`
	PidStart   uint64    `json:"PidStart,omitempty"` // /proc/PID/stat start time, to tell a reused pid
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	OOMKilled  bool      `json:"OOMKilled"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// MountPoint is one of the container's mounts as resolved at create time.
type MountPoint struct {
	Type        string `json:"Type"` // bind, volume, tmpfs
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
	// Anonymous volumes go with the container on rm -v and --rm.
	Anonymous    bool     `json:"Anonymous,omitempty"`
	NonRecursive bool     `json:"NonRecursive,omitempty"`
	TmpfsSize    int64    `json:"TmpfsSize,omitempty"`
	TmpfsMode    uint32   `json:"TmpfsMode,omitempty"`
	Options      []string `json:"Options,omitempty"`
	NoCopy       bool     `json:"NoCopy,omitempty"`
}

// Container is one container's record.
type Container struct {
	ID        string            `json:"ID"`
	Name      string            `json:"Name"` // without the leading slash
	Created   time.Time         `json:"Created"`
	Image     string            `json:"Image"` // image ID (sha256:...)
	ImageName string            `json:"ImageName"`
	Config    *container.Config `json:"Config"`
	// ImageConfig is the image's run config as it was at create time:
	// the container keeps running the same way if the image goes.
	ImageConfig *image.RunConfig      `json:"ImageConfig,omitempty"`
	HostConfig  *container.HostConfig `json:"HostConfig"`
	State       State                 `json:"State"`
	Mounts      []MountPoint          `json:"Mounts,omitempty"`
	Driver      string                `json:"Driver"`
	LogPath     string                `json:"LogPath"`
	// Runtime is "berth" or the name or path of another OCI runtime.
	Runtime      string `json:"Runtime"`
	RestartCount int    `json:"RestartCount"`
	// ManuallyStopped is set by stop and kill: restart policies then
	// leave the container stopped.
	ManuallyStopped bool `json:"ManuallyStopped"`
	// Generation counts starts; the monitor ignores exits of older ones.
	Generation int `json:"Generation"`
	// Networking is what run's --ip, --network-alias, --mac-address ask
	// of the container's network.
	Networking *Networking `json:"Networking,omitempty"`
}

// Networking is a container's wishes for its (first) network.
type Networking struct {
	IP      netip.Addr `json:"IP,omitzero"`
	Aliases []string   `json:"Aliases,omitempty"`
	MAC     string     `json:"MAC,omitempty"`
}

// Running reports whether the container's process is up (paused counts).
func (c *Container) Running() bool {
	return c.State.Status == StatusRunning || c.State.Status == StatusPaused || c.State.Status == StatusRestarting
}

// Store holds the records under dir, one directory per container.
type Store struct {
	dir string
}

// Open opens (creating) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("container store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory of container id: its record, logs and other files.
func (s *Store) Dir(id string) string { return filepath.Join(s.dir, id) }

func (s *Store) recordPath(id string) string { return filepath.Join(s.dir, id, "container.json") }

// Lock takes the store's lock exclusively; every read-modify-write of a
// record happens under it. Readers need no lock: records are replaced
// atomically.
func (s *Store) Lock(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(s.dir, ".lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock container store: %w", err)
	}
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock container store: %w", err)
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Get reads container id's record.
func (s *Store) Get(id string) (*Container, error) {
	data, err := os.ReadFile(s.recordPath(id))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", id))
		}
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("container %s: corrupt record %s: %w", id, s.recordPath(id), err)
	}
	return &c, nil
}

// Put writes c's record atomically. Call it with the lock held.
func (s *Store) Put(c *Container) error {
	if err := os.MkdirAll(s.Dir(c.ID), 0o711); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	// Not synced: a kill -9 cannot lose written data (the page cache
	// keeps it), and container state does not outlive a host crash anyway
	// (the processes are gone); the rename keeps each record whole.
	if err := storage.WriteFileAtomic(s.recordPath(c.ID), data, false); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	s.linkName(c.Name, c.ID)
	return nil
}

// The name index: .names/NAME is a symlink to the ID, so that commands
// given a name find the record without reading every record. It is a
// hint: a lookup checks the record it points to, and falls back to a scan.
func (s *Store) namePath(name string) string { return filepath.Join(s.dir, ".names", name) }

func (s *Store) linkName(name, id string) {
	if name == "" {
		return
	}
	if cur, err := os.Readlink(s.namePath(name)); err == nil && cur == id {
		return
	}
	_ = os.MkdirAll(filepath.Join(s.dir, ".names"), 0o700)
	tmp := s.namePath("." + name + ".tmp-" + id[:min(12, len(id))])
	_ = os.Remove(tmp)
	if os.Symlink(id, tmp) == nil {
		if os.Rename(tmp, s.namePath(name)) != nil {
			_ = os.Remove(tmp)
		}
	}
}

// ForgetName drops name from the index if it names id (after a rename).
func (s *Store) ForgetName(name, id string) { s.unlinkName(name, id) }

func (s *Store) unlinkName(name, id string) {
	if name == "" {
		return
	}
	if cur, err := os.Readlink(s.namePath(name)); err == nil && cur == id {
		_ = os.Remove(s.namePath(name))
	}
}

// byNameIndex resolves name through the index, or returns nil.
func (s *Store) byNameIndex(name string) *Container {
	if name == "" || strings.ContainsAny(name, "/") || strings.HasPrefix(name, ".") {
		return nil
	}
	id, err := os.Readlink(s.namePath(name))
	if err != nil {
		return nil
	}
	c, err := s.Get(id)
	if err != nil || c.Name != name {
		return nil
	}
	return c
}

// Update reads, changes and writes id's record under the lock.
func (s *Store) Update(ctx context.Context, id string, fn func(*Container) error) (*Container, error) {
	unlock, err := s.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return c, err
	}
	return c, s.Put(c)
}

// Delete removes id's record and directory. Call it with the lock held.
func (s *Store) Delete(id string) error {
	if c, err := s.Get(id); err == nil {
		s.unlinkName(c.Name, id)
	}
	// The record goes first, atomically; the rest of the directory is
	// debris a later List ignores if this is interrupted.
	if err := os.Remove(s.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// List reads every record, newest first. Directories without a record
// (an interrupted create or rm) are skipped.
func (s *Store) List() ([]*Container, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := s.Get(e.Name())
		if err != nil {
			if errdefs.Is(err, errdefs.KindNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Find resolves a name, a full ID or a unique ID prefix to a record.
func (s *Store) Find(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, errdefs.InvalidArgument(errors.New("container name or ID is empty"))
	}
	if len(ref) == 64 {
		if c, err := s.Get(ref); err == nil {
			return c, nil
		}
	}
	if c := s.byNameIndex(ref); c != nil {
		return c, nil
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var match []*Container
	for _, c := range all {
		if c.Name == ref || c.ID == ref {
			return c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			match = append(match, c)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("multiple IDs found with provided prefix: %s", ref))
	}
}

// ByName returns the record named name, or nil.
func (s *Store) ByName(name string) (*Container, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.Name == name {
			return c, nil
		}
	}
	return nil, nil
}
