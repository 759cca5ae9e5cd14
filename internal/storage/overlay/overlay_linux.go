// Package overlay keeps layers as overlayfs directories: each layer's diff
// holds only its own changes, and a container's root is an overlay mount of
// its writable diff over the image's diffs.
//
// Layout of the home directory:
//
//	l/<link>           short symlink to <id>/diff, so lowerdir options stay short
//	<id>/diff          the layer's files (overlay whiteouts included)
//	<id>/stack         the links of the layer and of those below it, top
//	                   first: "l/<link>:l/<link>..."
//	<id>/work          overlay's work directory; only writable layers have one
//	features.json      what the kernel supports, probed once per kernel
package overlay

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/storage"
)

// Name is the driver's name.
const Name = "overlay"

const linkDir = "l"

// Driver is the overlay storage driver.
type Driver struct {
	home string
	feat features
}

// features is what a test mount found the kernel supports.
type features struct {
	Kernel   string `json:"kernel"`
	Volatile bool   `json:"volatile"`
	// IndexOff is set where the kernel turns the inodes index on by
	// default: it ties upper and lower layers together, so layers shared
	// between containers must not use it.
	IndexOff bool `json:"indexOff"`
}

// New returns the overlay driver keeping its layers in home. The first use
// on a kernel checks that overlayfs is there and works on home's file
// system with a test mount, and remembers what it found; where it does not
// work, the error matches storage.ErrUnsupported.
func New(home string) (*Driver, error) {
	d := &Driver{home: home}
	kernel := kernelRelease()
	if err := readJSON(d.path("features.json"), &d.feat); err == nil && d.feat.Kernel == kernel {
		return d, nil
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.path(linkDir), 0o700); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	feat, err := probe(home)
	if err != nil {
		return nil, err
	}
	feat.Kernel = kernel
	d.feat = feat
	data, _ := json.Marshal(feat)
	if err := storage.WriteFileAtomic(d.path("features.json"), data, false); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	return d, nil
}

// Supported reports whether the kernel lists overlayfs, without mounting
// anything; New also checks that a mount works.
func Supported() error {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(line, "nodev")) == "overlay" {
			return nil
		}
	}
	return storage.Unsupported(errors.New("the kernel has no overlayfs (not in /proc/filesystems; try modprobe overlay)"))
}

// probe mounts a small overlay in home to see that it works there and
// whether the volatile option does.
func probe(home string) (features, error) {
	var f features
	if fsName, err := storage.FSName(home); err == nil && fsName == "overlayfs" {
		return f, storage.Unsupported(fmt.Errorf("%s is on overlayfs, which cannot hold upper layers", home))
	}
	dir, err := os.MkdirTemp(home, ".probe-")
	if err != nil {
		return f, fmt.Errorf("overlay: %w", err)
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return f, fmt.Errorf("overlay: %w", err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%[1]s/l1:%[1]s/l2,upperdir=%[1]s/upper,workdir=%[1]s/work", dir)
	merged := filepath.Join(dir, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts+",volatile"); err == nil {
		f.Volatile = true
	} else if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return f, storage.Unsupported(fmt.Errorf("a test overlay mount in %s (%s) failed: %w", home, storage.FSNameOr(home), err))
	}
	if err := unix.Unmount(merged, 0); err != nil {
		_ = unix.Unmount(merged, unix.MNT_DETACH)
	}
	if idx, err := os.ReadFile("/sys/module/overlay/parameters/index"); err == nil {
		f.IndexOff = bytes.HasPrefix(idx, []byte("Y"))
	}
	return f, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Name returns "overlay".
func (d *Driver) Name() string { return Name }

// Whiteouts returns archive.WhiteoutOverlay: each diff holds only its
// layer's changes.
func (d *Driver) Whiteouts() archive.WhiteoutMode { return archive.WhiteoutOverlay }

// Dir returns the layer's diff directory.
func (d *Driver) Dir(id string) string { return d.path(id, "diff") }

// Create makes layer id over parent.
func (d *Driver) Create(id, parent string, writable bool) error {
	if err := validID(id); err != nil {
		return err
	}
	var below string
	if parent != "" {
		stack, err := d.stack(parent)
		if err != nil {
			return fmt.Errorf("overlay: create layer %s: parent: %w", id, err)
		}
		below = ":" + stack
	}
	if err := os.Mkdir(d.path(id), 0o700); err != nil {
		return fmt.Errorf("overlay: create layer %s: %w", id, err)
	}
	if err := os.Mkdir(d.path(id, "diff"), 0o755); err != nil {
		return fmt.Errorf("overlay: create layer %s: %w", id, err)
	}
	if writable {
		if err := os.Mkdir(d.path(id, "work"), 0o700); err != nil {
			return fmt.Errorf("overlay: create layer %s: %w", id, err)
		}
	}
	// The stack names the link before the link exists, so that Remove of a
	// layer whose Create was interrupted finds the link.
	for {
		link := linkDir + "/" + shortName()
		if err := storage.WriteFile(d.path(id, "stack"), []byte(link+below), 0o600); err != nil {
			return fmt.Errorf("overlay: create layer %s: %w", id, err)
		}
		err := os.Symlink("../"+id+"/diff", d.path(link))
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("overlay: create layer %s: %w", id, err)
		}
	}
}

// stack reads layer id's stack: its link and its lower layers' links, top
// first, as "l/<link>:l/<link>...".
func (d *Driver) stack(id string) (string, error) {
	data, err := storage.ReadFile(d.path(id, "stack"))
	if err != nil {
		return "", err
	}
	stack := string(data)
	for _, l := range strings.Split(stack, ":") {
		if name, ok := strings.CutPrefix(l, linkDir+"/"); !ok || !validLink(name) {
			return "", fmt.Errorf("layer %s: corrupt stack file: %q", id, stack)
		}
	}
	return stack, nil
}

// Mounts returns an overlay of the layer over the layers below it, or a
// bind mount of a layer that has nothing below it. Container layers are
// mounted volatile: the kernel then skips syncing the backing file system
// at unmount, and what a container wrote may be lost in a host crash.
func (d *Driver) Mounts(id string) ([]storage.Mount, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	writable := true
	if _, err := os.Lstat(d.path(id, "work")); errors.Is(err, fs.ErrNotExist) {
		writable = false
	} else if err != nil {
		return nil, fmt.Errorf("overlay: layer %s: %w", id, err)
	}
	stack, err := d.stack(id)
	if err != nil {
		return nil, fmt.Errorf("overlay: layer %s: %w", id, err)
	}
	links := strings.Split(stack, ":")
	if len(links) == 1 {
		// Nothing below: overlay needs a lower layer, and this needs none.
		mode := "ro"
		if writable {
			mode = "rw"
		}
		return []storage.Mount{{Type: "bind", Source: d.Dir(id), Options: []string{"bind", mode}}}, nil
	}
	if writable {
		links = links[1:] // the layer itself is the upper dir
	}
	lowers := make([]string, len(links))
	for i, l := range links {
		lowers[i] = d.path(l)
	}
	var opts []string
	if d.feat.IndexOff {
		opts = append(opts, "index=off")
	}
	opts = append(opts, "lowerdir="+strings.Join(lowers, ":"))
	if !writable {
		return []storage.Mount{{Type: "overlay", Source: "overlay", Options: append(opts, "ro")}}, nil
	}
	opts = append(opts, "upperdir="+d.Dir(id), "workdir="+d.path(id, "work"))
	if d.feat.Volatile {
		opts = append(opts, "volatile")
		// A volatile mount leaves this behind and the kernel refuses to
		// mount over it again; the layer is throwaway by design.
		marker := d.path(id, "work", "work", "incompat", "volatile")
		if _, err := os.Lstat(marker); err == nil {
			if err := os.RemoveAll(marker); err != nil {
				return nil, fmt.Errorf("overlay: layer %s: %w", id, err)
			}
		}
	}
	return []storage.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

// Remove deletes layer id.
func (d *Driver) Remove(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if data, err := storage.ReadFile(d.path(id, "stack")); err == nil {
		link, _, _ := strings.Cut(string(data), ":")
		if name, ok := strings.CutPrefix(link, linkDir+"/"); ok && validLink(name) {
			if err := os.Remove(d.path(link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("overlay: remove layer %s: %w", id, err)
			}
		}
	}
	if err := os.RemoveAll(d.path(id)); err != nil {
		return fmt.Errorf("overlay: remove layer %s: %w", id, err)
	}
	return nil
}

// Exists reports whether layer id is there.
func (d *Driver) Exists(id string) bool {
	if validID(id) != nil {
		return false
	}
	_, err := os.Lstat(d.Dir(id))
	return err == nil
}

// Status describes the driver.
func (d *Driver) Status() storage.Status {
	yes := func(b bool) string {
		if b {
			return "true"
		}
		return "false"
	}
	backing := storage.FSNameOr(d.home)
	return storage.Status{
		Driver:    Name,
		Home:      d.home,
		BackingFS: backing,
		Details: [][2]string{
			{"Backing Filesystem", backing},
			{"Supports d_type", "true"},
			{"Volatile container layers", yes(d.feat.Volatile)},
			{"Native Overlay Diff", "true"},
		},
	}
}

// Cleanup removes links whose layer is gone and test mounts' leftovers.
func (d *Driver) Cleanup() error {
	ents, err := os.ReadDir(d.path(linkDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("overlay: cleanup: %w", err)
	}
	for _, e := range ents {
		p := d.path(linkDir, e.Name())
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(p)
		}
	}
	probes, _ := filepath.Glob(d.path(".probe-*"))
	for _, p := range probes {
		_ = unix.Unmount(filepath.Join(p, "merged"), unix.MNT_DETACH)
		_ = os.RemoveAll(p)
	}
	return nil
}

func (d *Driver) path(elem ...string) string {
	return filepath.Join(append([]string{d.home}, elem...)...)
}

// shortName returns a random link name: 10 base32 characters (50 bits), so
// that even a few hundred layers fit in one page of mount options.
func shortName() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return string(b)
}

func validLink(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/.")
}

func validID(id string) error {
	if id == linkDir || strings.HasSuffix(id, ".json") {
		return fmt.Errorf("overlay: invalid layer id %q", id)
	}
	return storage.ValidLayerID("overlay", id)
}

func readJSON(path string, v any) error {
	data, err := storage.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
