package storage

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Store is the layer graph under one storage root: image layers keyed by
// chain ID, each unpacked once and shared by every image and container
// above it, and one writable layer per container. Calls that change the
// graph (and Mount) take a lock file in the root, and records are replaced
// atomically, so CLI processes may use one root at the same time; a
// process killed at any point leaves no half layer visible, and the next
// ApplyLayer, Release, RemoveContainerLayer or Prune removes what it left.
//
// Layout of the root:
//
//	lock                 flock(2) taken by every call that changes the graph
//	driver               the driver this root was created with (see drivers.Pick)
//	layers/<chain>.json  one Layer per committed image layer
//	containers/<id>.json one Container per writable layer
//	pending/<cache>.json a layer being made or deleted; flock(2)ed while its maker lives
//	mnt/<id>             where Mount mounts a container's root
//	<driver>/            the driver's home
type Store struct {
	root   string
	driver Driver
	opts   Options

	// mu and lockf make the root's lock: flock(2) on lockf keeps other
	// processes out, mu other goroutines.
	mu    sync.Mutex
	lockf int // -1 until opened
}

// Options tune a Store.
type Options struct {
	// NoDevices refuses layers that hold device nodes.
	NoDevices bool
	// Sync flushes each layer to disk before it is committed, so a layer
	// survives a power loss as well as a kill -9. Off by default: pulls
	// then cost what tar -x costs.
	Sync bool
}

// Open opens the layer graph in root, kept by d (whose home is usually
// root/<d.Name()>: see drivers.Pick).
func Open(root string, d Driver, opts Options) (*Store, error) {
	for _, dir := range []string{"layers", "containers", "pending", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o700); err != nil {
			return nil, fmt.Errorf("open storage root %s: %w", root, err)
		}
	}
	if name, _, err := ReadDriverChoice(root); err != nil {
		return nil, err
	} else if name != "" && name != d.Name() {
		return nil, errdefs.Conflict(fmt.Errorf("storage root %s was created with driver %q; refusing %q — remove the root or use --storage-driver %s", root, name, d.Name(), name))
	}
	return &Store{root: root, driver: d, opts: opts, lockf: -1}, nil
}

// Driver returns the store's driver.
func (s *Store) Driver() Driver { return s.driver }

// Root returns the storage root.
func (s *Store) Root() string { return s.root }

// rootLock is the storage root's lock, held.
type rootLock struct{ s *Store }

func (s *Store) lock() (rootLock, error) {
	s.mu.Lock()
	if s.lockf < 0 {
		fd, err := openFile(s.path("lock"), unix.O_RDWR|unix.O_CREAT, 0o600)
		if err != nil {
			s.mu.Unlock()
			return rootLock{}, fmt.Errorf("lock storage root %s: %w", s.root, err)
		}
		s.lockf = fd
	}
	if err := flock(s.lockf, unix.LOCK_EX); err != nil {
		s.mu.Unlock()
		return rootLock{}, fmt.Errorf("lock storage root %s: %w", s.root, err)
	}
	return rootLock{s}, nil
}

// Unlock releases the lock.
func (l rootLock) Unlock() {
	_ = flock(l.s.lockf, unix.LOCK_UN)
	l.s.mu.Unlock()
}

// Close releases what the store holds open. A closed store opens it again
// when it is next used.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lockf < 0 {
		return nil
	}
	err := unix.Close(s.lockf)
	s.lockf = -1
	return err
}

func readJSON(path string, v any) error {
	data, err := ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}
