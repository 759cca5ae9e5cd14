package archive

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// CleanEntryName turns a tar entry's name (or a hardlink's target) into a
// clean path relative to the layer root: "" for the root itself, no
// leading or trailing slash, no "." components. Absolute names and names
// holding a ".." component are refused with an error wrapping ErrEscape,
// even where the ".." would stay inside.
func CleanEntryName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty name")
	}
	if name[0] == '/' {
		return "", fmt.Errorf("absolute %w", ErrEscape)
	}
	for rest := name; rest != ""; {
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		if comp == ".." {
			return "", ErrEscape
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name holds a NUL byte")
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// splitPath splits a clean relative path into its directory ("" for the
// root) and its last component.
func splitPath(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// joinPath joins a clean relative directory ("" for the root) and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// whiteoutKind classifies an entry's base name.
type whiteoutKind int

const (
	notWhiteout whiteoutKind = iota
	whiteoutFile
	whiteoutOpaque
	whiteoutMeta // other .wh..wh. names: skipped
)

// parseWhiteout says whether base names a whiteout and, for a file
// whiteout, which name it hides.
func parseWhiteout(base string) (whiteoutKind, string) {
	if !strings.HasPrefix(base, WhiteoutPrefix) {
		return notWhiteout, ""
	}
	if base == WhiteoutOpaqueDir {
		return whiteoutOpaque, ""
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		return whiteoutMeta, ""
	}
	return whiteoutFile, base[len(WhiteoutPrefix):]
}

// mapID maps a container ID onto a host ID through a user namespace's
// mappings; no mappings is the identity.
func mapID(id int, maps []specs.LinuxIDMapping) (int, bool) {
	if len(maps) == 0 {
		return id, true
	}
	if id < 0 {
		return 0, false
	}
	for _, m := range maps {
		if uint64(id) >= uint64(m.ContainerID) && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return int(uint64(m.HostID) + uint64(id) - uint64(m.ContainerID)), true
		}
	}
	return 0, false
}
