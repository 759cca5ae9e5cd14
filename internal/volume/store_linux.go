// Package volume holds named volumes (docker's "local" driver: a directory
// per volume, or a file system mounted on it at use time) and the parsers of
// docker run's -v, --mount and --tmpfs flags.
package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Volume is a volume as docker's inspect shows it.
type Volume = volume.Volume

// DriverName is the only volume driver berth has.
const DriverName = "local"

const (
	dirName    = "volumes"     // under berth's root
	dataDir    = "_data"       // the volume's contents, its Mountpoint
	metaFile   = "volume.json" // record
	mountsFile = "mounts"      // how many users hold a driver-mounted volume
	lockFile   = ".lock"
	tmpPrefix  = ".tmp-"   // a volume being created
	trashPref  = ".trash-" // a volume being removed
)

// Store holds the volumes under one root. Each call takes a flock on the
// store, so concurrent berth processes (and goroutines) see each change
// whole.
type Store struct {
	dir string

	// InUse, set by the engine, lists the IDs of the containers that use
	// the named volume; nil means no volume is in use. It is called with
	// the store's lock held, so it must not call back into the Store.
	InUse func(name string) []string
}

// record is volume.json.
type record struct {
	CreatedAt time.Time         `json:"CreatedAt"`
	Driver    string            `json:"Driver"`
	Labels    map[string]string `json:"Labels"`
	Options   map[string]string `json:"Options"`
}

// Open opens (creating if needed) the volume store under berth's root
// directory root, and clears what an interrupted create or remove left.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errdefs.InvalidArgument(errors.New("open volume store: no root directory given"))
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open volume store under %s: %w", root, err)
	}
	s := &Store{dir: filepath.Join(abs, dirName)}
	// 0701 as docker's: containers running as other users may traverse
	// to a volume's directory but not list the volumes.
	if err := os.MkdirAll(s.dir, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, tmpPrefix) || strings.HasPrefix(n, trashPref) {
			_ = removeDir(filepath.Join(s.dir, n))
		}
	}
	return s, nil
}

// Dir is the directory holding the volumes.
func (s *Store) Dir() string { return s.dir }

// lock takes flock(2) how on the store's lock file. Each call opens its
// own file description, so goroutines of one process exclude each other too.
func (s *Store) lock(how int) (unlock func(), err error) {
	path := filepath.Join(s.dir, lockFile)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock volume store: %w", err)
	}
	for {
		err = unix.Flock(fd, how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock volume store %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// Create creates volume name with the local driver's options (type,
// device, o) and labels, and returns it. An empty name makes an anonymous
// volume with a random name. As docker's, creating a volume that exists
// returns it; only different driver options given again are refused.
func (s *Store) Create(name string, driverOpts, labels map[string]string) (Volume, error) {
	anonymous := name == ""
	if anonymous {
		n, err := randomName()
		if err != nil {
			return Volume{}, err
		}
		name = n
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[AnonymousLabel] = ""
	}
	if err := ValidateName(name); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	if err := validateOpts(driverOpts); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()

	if rec, err := s.read(name); err == nil {
		if len(driverOpts) > 0 && !maps.Equal(driverOpts, rec.Options) {
			return Volume{}, errdefs.Conflict(fmt.Errorf("create %s: volume name must be unique: volume %s exists with other options", name, name))
		}
		return s.volume(name, rec), nil
	} else if !errdefs.Is(err, errdefs.KindNotFound) {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}

	rec := record{CreatedAt: time.Now(), Driver: DriverName, Labels: maps.Clone(labels), Options: maps.Clone(driverOpts)}
	if err := s.write(name, rec); err != nil {
		return Volume{}, fmt.Errorf("create %s: %w", name, err)
	}
	return s.volume(name, rec), nil
}

// write makes volume name appear whole: built in a temporary directory,
// then renamed into place.
func (s *Store) write(name string, rec record) error {
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o701); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	// 0755 as docker's; a copy-up from the image sets the real mode.
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	data, err := json.Marshal(rec)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, metaFile), data); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, s.path(name)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return syncDir(s.dir)
}

// read loads volume name's record; a name that cannot be a volume's is
// not found (and never joins a path outside the store).
func (s *Store) read(name string) (record, error) {
	var rec record
	if ValidateName(name) != nil {
		return rec, noSuchVolume(name)
	}
	data, err := os.ReadFile(filepath.Join(s.path(name), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, noSuchVolume(name)
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("read volume %s: %w", name, err)
	}
	return rec, nil
}

func noSuchVolume(name string) error {
	return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
}

func (s *Store) volume(name string, rec record) Volume {
	driver := rec.Driver
	if driver == "" {
		driver = DriverName
	}
	return Volume{
		CreatedAt:  rec.CreatedAt.Local().Format(time.RFC3339),
		Driver:     driver,
		Labels:     rec.Labels,
		Mountpoint: filepath.Join(s.path(name), dataDir),
		Name:       name,
		Options:    rec.Options,
		Scope:      "local",
	}
}

// Get returns volume name, or a NotFound error.
func (s *Store) Get(name string) (Volume, error) {
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	rec, err := s.read(name)
	if err != nil {
		return Volume{}, err
	}
	return s.volume(name, rec), nil
}

// List returns the volumes that pass filters (docker's: name, label,
// driver, dangling), in docker's order.
func (s *Store) List(filters map[string][]string) ([]Volume, error) {
	f := Filters(filters)
	if err := f.validate("name", "label", "driver", "dangling"); err != nil {
		return nil, err
	}
	_, hasDangling := f["dangling"]
	dangling, err := f.boolValue("dangling", false)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := s.all()
	if err != nil {
		return nil, err
	}
	out := []Volume{}
	for _, v := range all {
		if !f.matchName(v.Name) || !f.matchAny("driver", v.Driver) || !f.matchLabels(v.Labels) {
			continue
		}
		if hasDangling && (len(s.users(v.Name)) == 0) != dangling {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// all reads every volume, sorted; entries that are not volumes are skipped.
func (s *Store) all() ([]Volume, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []Volume
	for _, e := range entries {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		rec, err := s.read(e.Name())
		if err != nil {
			continue // not a volume (no record): someone else's directory
		}
		out = append(out, s.volume(e.Name(), rec))
	}
	slices.SortFunc(out, func(a, b Volume) int {
		switch {
		case naturalLess(a.Name, b.Name):
			return -1
		case naturalLess(b.Name, a.Name):
			return 1
		}
		return 0
	})
	return out, nil
}

func (s *Store) users(name string) []string {
	if s.InUse == nil {
		return nil
	}
	return s.InUse(name)
}

// Remove removes volume name and its contents. A volume in use is refused,
// even with force; force makes a missing volume no error.
func (s *Store) Remove(name string, force bool) error {
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.read(name); err != nil {
		if force && errdefs.Is(err, errdefs.KindNotFound) {
			return nil
		}
		return err
	}
	if ids := s.users(name); len(ids) > 0 {
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(ids, ", ")))
	}
	if err := s.remove(name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// remove deletes volume name, lock held. Whatever is mounted on its data
// directory is unmounted first, so that a volume of a host directory
// (o=bind) never has the host's files deleted.
func (s *Store) remove(name string) error {
	dir := s.path(name)
	if err := unmountAll(filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	// Renamed away first: the volume disappears at once, and Open clears a
	// removal that was interrupted.
	trash := filepath.Join(s.dir, trashPref+name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(dir, trash); err != nil {
		return err
	}
	_ = syncDir(s.dir)
	return removeDir(trash)
}

// Prune removes the volumes no container uses that pass filters (label,
// label!, all) and returns their names and the bytes they held. As docker
// 23 and later, only anonymous volumes go unless all is true.
func (s *Store) Prune(filters map[string][]string) (removed []string, reclaimed int64, err error) {
	f := Filters(filters)
	if err := f.validate("label", "label!", "all"); err != nil {
		return nil, 0, err
	}
	all, err := f.boolValue("all", false)
	if err != nil {
		return nil, 0, err
	}
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	vols, err := s.all()
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, v := range vols {
		if _, anon := v.Labels[AnonymousLabel]; !all && !anon {
			continue
		}
		if !f.matchLabels(v.Labels) || !f.matchNotLabels(v.Labels) || len(s.users(v.Name)) > 0 {
			continue
		}
		size, _ := dirSize(v.Mountpoint)
		if err := s.remove(v.Name); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", v.Name, err))
			continue
		}
		removed = append(removed, v.Name)
		reclaimed += size
	}
	return removed, reclaimed, errors.Join(errs...)
}

// Size returns the bytes volume name's files hold (hard links once).
func (s *Store) Size(name string) (int64, error) {
	unlock, err := s.lock(unix.LOCK_SH)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if _, err := s.read(name); err != nil {
		return 0, err
	}
	return dirSize(filepath.Join(s.path(name), dataDir))
}

// dirSize sums the sizes of the files under dir, as docker's volume sizes
// do, counting a file with several links once.
func dirSize(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Size
		return nil
	})
	return total, err
}

// writeFileSync writes a new file and syncs it, so the rename that
// publishes it never exposes an empty file after a crash.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileAtomic replaces path with data: a synced temporary file renamed over it.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := writeFileSync(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeDir removes dir after unmounting anything left mounted under its
// data directory, so a leftover bind of a host directory stays untouched.
func removeDir(dir string) error {
	if err := unmountAll(filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
