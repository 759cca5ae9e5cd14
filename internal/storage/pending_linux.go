package storage

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// pending records a driver layer that is being made or deleted. Its file
// is flock(2)ed while the process doing that lives; one found unlocked was
// left by a dead process and is finished off.
type pending struct {
	// On is the layer the pending one stands on; it must stay until the
	// pending one is committed or gone.
	On digest.Digest `json:"on,omitempty"`
	// Container is the container whose writable layer is being made: its
	// mount point goes with the layer.
	Container string `json:"container,omitempty"`
}

// begin records that cacheID is being made, as p says, and holds the
// record's lock until the returned lock is dropped. Call it under the store
// lock, so that no recovery sees the record before it is locked.
func (s *Store) begin(cacheID string, p pending) (*fileLock, error) {
	m, err := lockFile(s.pendingPath(cacheID), true)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(p)
	if err := writeAll(m.fd, s.pendingPath(cacheID), data); err != nil {
		m.Unlock()
		_ = os.Remove(s.pendingPath(cacheID))
		return nil, err
	}
	return m, nil
}

// abort deletes a layer begin started that will not be committed.
func (s *Store) abort(cacheID string, p pending) {
	lock, err := s.lock()
	if err != nil {
		return // recovery deletes it later
	}
	defer lock.Unlock()
	s.dropLocked(cacheID, p)
	_ = s.collectLocked(p.On)
}

// dropLocked deletes what the uncommitted pending operation p on cacheID
// made.
func (s *Store) dropLocked(cacheID string, p pending) {
	if p.Container != "" && validID(p.Container) == nil {
		if _, err := os.Lstat(s.containerPath(p.Container)); errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(s.mountPath(p.Container))
		}
	}
	s.discardLocked(cacheID)
}

// discardLocked deletes driver layer cacheID and its pending record; if
// the driver fails, the record stays for recovery to try again.
func (s *Store) discardLocked(cacheID string) {
	if err := s.driver.Remove(cacheID); err != nil {
		return
	}
	_ = os.Remove(s.pendingPath(cacheID))
}

// recoverLocked finishes what dead processes left pending: driver layers
// that no record names are deleted.
func (s *Store) recoverLocked() error {
	ents, err := os.ReadDir(s.path("pending"))
	if err != nil || len(ents) == 0 {
		return err
	}
	var owned map[string]bool
	for _, e := range ents {
		cacheID, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		m, err := tryLockExisting(s.pendingPath(cacheID))
		if err != nil {
			continue // its maker is alive
		}
		if owned == nil {
			if owned, err = s.cacheIDsLocked(); err != nil {
				m.Unlock()
				return err
			}
		}
		p, _ := s.readPending(cacheID)
		if owned[cacheID] {
			// Committed just before its maker died.
			_ = os.Remove(s.pendingPath(cacheID))
		} else {
			s.dropLocked(cacheID, p)
		}
		m.Unlock()
		if p.On != "" {
			if err := s.collectLocked(p.On); err != nil {
				return err
			}
		}
	}
	return nil
}

// cacheIDsLocked returns the driver layers that records name.
func (s *Store) cacheIDsLocked() (map[string]bool, error) {
	owned := map[string]bool{}
	layers, err := s.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		owned[l.CacheID] = true
	}
	cs, err := s.Containers()
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		owned[c.CacheID] = true
	}
	return owned, nil
}

func (s *Store) writePending(cacheID string, p pending) error {
	data, _ := json.Marshal(p)
	return WriteFileAtomic(s.pendingPath(cacheID), data, true)
}

// writePendingUnsynced marks a container layer for deletion: not synced,
// as a kill -9 keeps it (page cache) and a writable layer does not survive
// a host crash intact anyway. Saves two fsyncs on every rm.
func (s *Store) writePendingUnsynced(cacheID string, p pending) error {
	data, _ := json.Marshal(p)
	return WriteFileAtomic(s.pendingPath(cacheID), data, false)
}

func (s *Store) readPending(cacheID string) (pending, error) {
	var p pending
	err := readJSON(s.pendingPath(cacheID), &p)
	return p, err
}

func (s *Store) pendingPath(cacheID string) string { return s.path("pending", cacheID+".json") }
