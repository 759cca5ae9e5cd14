package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Container is a container's writable layer.
type Container struct {
	ID string `json:"id"`
	// Image is the chain ID of the layer the container's root starts from,
	// "" for an empty root.
	Image   digest.Digest `json:"image,omitempty"`
	CacheID string        `json:"cacheID"`
	Created time.Time     `json:"created"`
}

// CreateContainerLayer makes container id's writable layer on top of the
// image layer image ("" for an empty root).
func (s *Store) CreateContainerLayer(id string, image digest.Digest) error {
	if err := validID(id); err != nil {
		return err
	}
	lock, err := s.lock()
	if err != nil {
		return err
	}
	if _, err := os.Lstat(s.containerPath(id)); err == nil {
		lock.Unlock()
		return errdefs.Conflict(fmt.Errorf("create container layer %s: it exists already", id))
	}
	var imageCache string
	if image != "" {
		l, err := s.layer(image)
		if err != nil {
			lock.Unlock()
			return fmt.Errorf("create container layer %s: image: %w", id, err)
		}
		imageCache = l.CacheID
	}
	cacheID := RandomID(16)
	mark, err := s.begin(cacheID, pending{On: image, Container: id})
	lock.Unlock()
	if err != nil {
		return fmt.Errorf("create container layer %s: %w", id, err)
	}
	defer mark.Unlock()
	if err := s.driver.Create(cacheID, imageCache, true); err != nil {
		s.abort(cacheID, pending{On: image, Container: id})
		return fmt.Errorf("create container layer %s: %w", id, err)
	}
	// The mount point is made now, so that Mount, on the way to the
	// container's start, need not.
	if err := os.Mkdir(s.mountPath(id), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		s.abort(cacheID, pending{On: image, Container: id})
		return fmt.Errorf("create container layer %s: %w", id, err)
	}
	if lock, err = s.lock(); err != nil {
		s.abort(cacheID, pending{On: image, Container: id})
		return err
	}
	defer lock.Unlock()
	if _, err := os.Lstat(s.containerPath(id)); err == nil {
		s.discardLocked(cacheID)
		return errdefs.Conflict(fmt.Errorf("create container layer %s: it exists already", id))
	}
	c := Container{ID: id, Image: image, CacheID: cacheID, Created: time.Now().UTC()}
	data, _ := json.Marshal(&c)
	// Not synced: kill -9 cannot lose it, and a container's writable layer
	// does not outlive a host crash intact anyway (overlay mounts it volatile).
	if err := WriteFileAtomic(s.containerPath(id), data, false); err != nil {
		s.dropLocked(cacheID, pending{Container: id})
		return fmt.Errorf("create container layer %s: %w", id, err)
	}
	_ = os.Remove(s.pendingPath(cacheID))
	return nil
}

// RemoveContainerLayer unmounts and deletes container id's writable layer,
// and the image layers under it that nothing holds any more.
func (s *Store) RemoveContainerLayer(id string) error {
	lock, err := s.lock()
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := s.recoverLocked(); err != nil {
		return err
	}
	c, err := s.container(id)
	if err != nil {
		return fmt.Errorf("remove container layer: %w", err)
	}
	mnt := s.mountPath(id)
	if err := Unmount(mnt); err != nil {
		return fmt.Errorf("remove container layer %s: %w", id, err)
	}
	if err := os.Remove(mnt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove container layer %s: %w", id, err)
	}
	if err := s.writePendingUnsynced(c.CacheID, pending{}); err != nil {
		return fmt.Errorf("remove container layer %s: %w", id, err)
	}
	if err := os.Remove(s.containerPath(id)); err != nil {
		return fmt.Errorf("remove container layer %s: %w", id, err)
	}
	s.discardLocked(c.CacheID)
	return s.collectLocked(c.Image)
}

// ContainerMounts says what to mount for container id's root.
func (s *Store) ContainerMounts(id string) ([]Mount, error) {
	c, err := s.Container(id)
	if err != nil {
		return nil, err
	}
	return s.driver.Mounts(c.CacheID)
}

// Mount mounts container id's root on a directory in the storage root and
// returns that directory; mounting a mounted root returns it again.
func (s *Store) Mount(id string) (string, error) {
	lock, err := s.lock()
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	c, err := s.container(id)
	if err != nil {
		return "", fmt.Errorf("mount container layer: %w", err)
	}
	target := s.mountPath(id)
	mounted, err := IsMountPoint(target)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(target, 0o700)
	}
	if err != nil {
		return "", fmt.Errorf("mount container layer %s: %w", id, err)
	}
	if mounted {
		return target, nil
	}
	mounts, err := s.driver.Mounts(c.CacheID)
	if err != nil {
		return "", fmt.Errorf("mount container layer %s: %w", id, err)
	}
	if err := MountAll(mounts, target); err != nil {
		return "", fmt.Errorf("mount container layer %s: %w", id, err)
	}
	return target, nil
}

// Unmount unmounts what Mount mounted for container id.
func (s *Store) Unmount(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := Unmount(s.mountPath(id)); err != nil {
		return fmt.Errorf("unmount container layer %s: %w", id, err)
	}
	return nil
}

// Diff lists what container id's writable layer added, changed and deleted,
// as `berth diff` shows it.
func (s *Store) Diff(ctx context.Context, id string) ([]archive.Change, error) {
	lower, upper, mode, err := s.diffDirs(id)
	if err != nil {
		return nil, err
	}
	changes, err := archive.Changes(ctx, lower, upper, mode)
	if err != nil {
		return nil, fmt.Errorf("diff container layer %s: %w", id, err)
	}
	return changes, nil
}

// diffDirs returns what archive.Changes compares for container id.
func (s *Store) diffDirs(id string) (lower []string, upper string, mode archive.WhiteoutMode, err error) {
	c, err := s.Container(id)
	if err != nil {
		return nil, "", 0, fmt.Errorf("diff container layer: %w", err)
	}
	mode = s.driver.Whiteouts()
	for chain := c.Image; chain != ""; {
		l, err := s.Layer(chain)
		if err != nil {
			return nil, "", 0, fmt.Errorf("diff container layer %s: %w", id, err)
		}
		lower = append(lower, s.driver.Dir(l.CacheID))
		if mode != archive.WhiteoutOverlay {
			break // a full copy: the layer right below holds all there was
		}
		chain = l.Parent
	}
	return lower, s.driver.Dir(c.CacheID), mode, nil
}

// ContainerSize returns the bytes container id's writable layer holds in
// files it added or changed (docker's SizeRw).
func (s *Store) ContainerSize(ctx context.Context, id string) (int64, error) {
	lower, upper, mode, err := s.diffDirs(id)
	if err != nil {
		return 0, err
	}
	if mode == archive.WhiteoutOverlay {
		return dirSize(upper)
	}
	changes, err := archive.Changes(ctx, lower, upper, mode)
	if err != nil {
		return 0, fmt.Errorf("size of container layer %s: %w", id, err)
	}
	var size int64
	for _, ch := range changes {
		if ch.Kind == archive.ChangeDelete {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(upper, ch.Path)); err == nil && fi.Mode().IsRegular() {
			size += fi.Size()
		}
	}
	return size, nil
}

func dirSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	return size, err
}

// Container returns container id's writable layer.
func (s *Store) Container(id string) (Container, error) { return s.container(id) }

// Containers lists the containers' writable layers.
func (s *Store) Containers() ([]Container, error) {
	ents, err := os.ReadDir(s.path("containers"))
	if err != nil {
		return nil, err
	}
	cs := make([]Container, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var c Container
		if err := readJSON(filepath.Join(s.path("containers"), e.Name()), &c); err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func (s *Store) container(id string) (Container, error) {
	var c Container
	if err := validID(id); err != nil {
		return c, err
	}
	err := readJSON(s.containerPath(id), &c)
	if errors.Is(err, fs.ErrNotExist) {
		return c, errdefs.NotFound(fmt.Errorf("container layer %s: not found", id))
	}
	return c, err
}

func (s *Store) containerPath(id string) string { return s.path("containers", id+".json") }

func (s *Store) mountPath(id string) string { return s.path("mnt", id) }

// validID accepts container IDs and names that are safe as file names.
func validID(id string) error {
	ok := id != "" && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return errdefs.InvalidArgument(fmt.Errorf("container layer id %q: use letters, digits, '_', '.', '-'", id))
	}
	return nil
}
