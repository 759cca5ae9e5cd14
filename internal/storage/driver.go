// Package storage keeps image layers once each, keyed by chain ID, and gives
// each container a writable copy-on-write layer over them. Drivers
// (overlay/, btrfs/, vfs/) implement Driver and pass one conformance suite
// (storagetest/); drivers/ picks one for a storage root.
package storage

import (
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
)

// Mount describes one mount(2) call that makes a layer visible as a root
// filesystem; storage returns it, the runtime performs it (as containerd's
// snapshotters do). MountAll performs a list of them.
type Mount struct {
	// Type is the file system type: "overlay" or "bind".
	Type string `json:"type"`
	// Source is what to mount: a directory for "bind", "overlay" for overlay.
	Source string `json:"source"`
	// Options are mount(8) options: MS_* flags by name ("ro", "bind") and
	// file-system data ("lowerdir=...").
	Options []string `json:"options,omitempty"`
}

// Driver keeps layers on disk, each an id chosen by the caller, and says how
// to mount them. A layer is created over a parent and filled once (a tar
// applied into Dir) before anything is stacked on it; after that only a
// writable layer changes, and only through its mounts. Drivers hold no
// metadata beyond what Mounts needs: the layer graph, reference counts and
// crash recovery are Store's.
type Driver interface {
	// Name is the driver's name as users choose it: "overlay", "btrfs", "vfs".
	Name() string
	// Create makes layer id over parent ("" for none). A writable layer is a
	// container's root: its mounts are read-write.
	Create(id, parent string, writable bool) error
	// Dir is the directory holding layer id's files: where a layer tar is
	// applied before anything is stacked on the layer, and what a diff reads.
	Dir(id string) string
	// Whiteouts says what Dir holds and so how a layer tar is applied into it:
	// WhiteoutOverlay when Dir starts empty and keeps only this layer's
	// changes, WhiteoutDelete when it starts as a full copy of the parent.
	Whiteouts() archive.WhiteoutMode
	// Mounts says what to mount to see layer id with everything below it.
	Mounts(id string) ([]Mount, error)
	// Remove deletes layer id; removing a layer that is not there is not an
	// error. The caller makes sure no layer stacks on it and nothing mounts it.
	Remove(id string) error
	// Exists reports whether layer id is there.
	Exists(id string) bool
	// Status describes the driver for `berth info`.
	Status() Status
	// Cleanup removes what interrupted operations left in the driver's home
	// that no layer owns.
	Cleanup() error
}

// Status describes a driver as `berth info` shows it.
type Status struct {
	// Driver is the driver's name.
	Driver string `json:"driver"`
	// Home is the directory the driver keeps its layers in.
	Home string `json:"home"`
	// BackingFS is the file system Home is on ("extfs", "xfs", "btrfs", ...).
	BackingFS string `json:"backingFS"`
	// Details are driver-specific facts, in order, as docker shows them
	// ("Supports d_type", "true").
	Details [][2]string `json:"details,omitempty"`
}

// ErrUnsupported matches (errors.Is) the errors drivers return when this
// host cannot hold them: a kernel without the file system, a root on the
// wrong file system.
var ErrUnsupported = errors.New("storage driver not supported here")

// Unsupported marks err, which says why, as matching ErrUnsupported without
// adding to its message.
func Unsupported(err error) error { return unsupportedError{err} }

type unsupportedError struct{ err error }

func (e unsupportedError) Error() string        { return e.err.Error() }
func (e unsupportedError) Unwrap() error        { return e.err }
func (e unsupportedError) Is(target error) bool { return target == ErrUnsupported }

// ValidLayerID refuses ids that are not one plain path element, or that
// would collide with a driver's own files (dot files); driver names it.
func ValidLayerID(driver, id string) error {
	if id == "" || strings.Contains(id, "/") || strings.HasPrefix(id, ".") {
		return fmt.Errorf("%s: invalid layer id %q", driver, id)
	}
	return nil
}
