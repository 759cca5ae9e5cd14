// Package archive reads and writes layer tars: it applies them to a
// directory safely (nothing lands outside the root), translates whiteouts
// for the storage driver at hand, and computes and writes diffs.
//
// Paths inside a layer are resolved as the kernel's RESOLVE_BENEATH (and
// Go's os.Root) does: relative symlinks inside the root are followed,
// while absolute symlinks, ".." climbing above the root and entry names
// that are absolute or hold ".." are refused with an *EntryError naming
// the entry. Apply, Changes, WriteTar and TarDir are Linux-only; on other
// systems they report that they are not implemented.
package archive

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// WhiteoutMode says how deletions recorded in a layer are applied.
type WhiteoutMode int

const (
	// WhiteoutDelete removes the whited-out paths from the target, which
	// already holds the parent's files (vfs, btrfs snapshots).
	WhiteoutDelete WhiteoutMode = iota
	// WhiteoutOverlay turns them into overlayfs whiteouts (0/0 character
	// devices, trusted.overlay.opaque=y directories) in an empty upper dir.
	WhiteoutOverlay
)

func (m WhiteoutMode) String() string {
	switch m {
	case WhiteoutDelete:
		return "delete"
	case WhiteoutOverlay:
		return "overlay"
	}
	return fmt.Sprintf("WhiteoutMode(%d)", int(m))
}

// DefaultMaxEntrySize is the largest file Apply accepts when
// ApplyOptions.MaxEntrySize is zero: 1 TiB. A header claiming more is
// taken as hostile or corrupt.
const DefaultMaxEntrySize = 1 << 40

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// NoDevices refuses character and block device nodes (for drivers or
	// hosts that cannot hold them) with a clear error instead of creating
	// them. FIFOs need no privilege and are always created; overlay
	// whiteouts are not devices in this sense.
	NoDevices bool
	// UIDMaps and GIDMaps map the IDs recorded in the layer (container IDs)
	// onto the IDs files get on disk (host IDs), as a user namespace does.
	// Empty means identity. An ID outside the mapping is an error.
	UIDMaps []specs.LinuxIDMapping
	GIDMaps []specs.LinuxIDMapping
	// NoOwnership leaves files owned by the caller instead of the layer's
	// owners (rootless, without a user namespace to chown into).
	NoOwnership bool
	// MaxEntrySize caps the size a tar header may claim for one file;
	// zero means DefaultMaxEntrySize.
	MaxEntrySize int64
	// Tee, when set, receives every byte of the uncompressed tar stream as
	// it is read (a digester, to check the layer's diff ID on the way).
	Tee io.Writer
	// Sync flushes the root's file system (syncfs) before Apply returns, so
	// that a commit recorded afterwards survives a crash.
	Sync bool
	// Logger receives debug records for what Apply skips (xattrs the file
	// system or the caller's privileges refuse); nil means slog.Default().
	Logger *slog.Logger
}

// ErrEscape is wrapped by the errors for entries that would land outside
// the root: absolute names, ".." components, symlinks that point out, and
// hardlinks to outside.
var ErrEscape = errors.New("path escapes the layer root")

// ErrDeviceRefused is wrapped by the error for a device node met while
// ApplyOptions.NoDevices is set.
var ErrDeviceRefused = errors.New("device nodes are refused here (the storage driver or host cannot hold them)")

// ErrTooLarge is wrapped by the error for a header that claims an absurd size.
var ErrTooLarge = errors.New("entry size exceeds the limit")

// EntryError is an error about one entry of a layer tar. Refusals (escapes,
// devices, absurd sizes) are also classified errdefs.InvalidArgument.
type EntryError struct {
	Name string // the entry's name as the tar records it
	Err  error
}

func (e *EntryError) Error() string { return fmt.Sprintf("layer entry %q: %v", e.Name, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

// ChangeKind says how a path differs from the layers below.
type ChangeKind int

const (
	// ChangeModify marks a path present below and changed (content,
	// metadata, or a directory whose children changed).
	ChangeModify ChangeKind = iota
	// ChangeAdd marks a path absent below.
	ChangeAdd
	// ChangeDelete marks a path present below and removed.
	ChangeDelete
)

// String returns docker's letter for the kind: "C", "A" or "D".
func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one difference between a layer and the layers below it.
type Change struct {
	Kind ChangeKind
	// Path is slash-rooted and clean ("/etc/hosts"), as `docker diff`
	// prints it.
	Path string
}

// String formats the change as `docker diff` does: "A /path".
func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// Whiteout names, as the OCI image spec defines them.
const (
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix starts names reserved for whiteout metadata; the
	// only one with a meaning is WhiteoutOpaqueDir, the others (aufs's
	// .wh..wh.plnk, .wh..wh.aufs) are skipped.
	WhiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix
	WhiteoutOpaqueDir  = WhiteoutMetaPrefix + ".opq"
)

// overlayOpaqueXattr marks an overlayfs upper directory that hides the
// lower directories of the same name.
const overlayOpaqueXattr = "trusted.overlay.opaque"

// overlayXattrPrefix is overlayfs's private xattr namespace: it is never
// taken from a layer (a hostile redirect or metacopy attribute could make
// overlayfs look elsewhere) and never written into one.
const overlayXattrPrefix = "trusted.overlay."

// paxXattrPrefix starts the PAX records that carry extended attributes.
const paxXattrPrefix = "SCHILY.xattr."
