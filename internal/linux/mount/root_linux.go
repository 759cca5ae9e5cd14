package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Paths inside a container's rootfs are chosen by the image and the user,
// and the rootfs may hold symlinks that point anywhere. Everything here
// resolves them as if root were "/", so no lookup leaves the root. The
// handle-returning functions use openat2(2) with RESOLVE_IN_ROOT and
// RESOLVE_NO_MAGICLINKS where the kernel has it (5.6 and later), and a
// careful component-by-component walk elsewhere (filepath-securejoin).

// SecureJoin joins unsafePath to root, resolving symlinks as if root were
// "/"; ".." never climbs out of root. The result is a path string, so the
// tree can still change before it is used: to act on a path, prefer
// OpenInRoot, MkdirAllInRoot or CreateMountpoint, which return handles.
func SecureJoin(root, unsafePath string) (string, error) {
	p, err := securejoin.SecureJoin(root, unsafePath)
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", unsafePath, root, err)
	}
	return p, nil
}

// OpenInRoot opens unsafePath inside root and returns an O_PATH handle.
// To mount on it, use "/proc/thread-self/fd/N" as the target; to read or
// write it, re-open that path (never the string path, which may change).
func OpenInRoot(root, unsafePath string) (*os.File, error) {
	f, err := securejoin.OpenInRoot(root, unsafePath)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", unsafePath, root, err)
	}
	return f, nil
}

// MkdirAllInRoot creates unsafePath and any missing parents inside root
// with mode (subject to the umask) and returns a handle to the directory.
// Symlinks resolve inside root; a dangling one is followed, so its target
// is created (inside root), as runc does.
func MkdirAllInRoot(root, unsafePath string, mode os.FileMode) (*os.File, error) {
	rel, err := resolveRel(root, unsafePath)
	if err != nil {
		return nil, err
	}
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return mkdirAll(r, rel, mode)
}

// resolveRel resolves symlinks in unsafePath as SecureJoin does and returns
// the result relative to root. Dangling symlinks thus name what to create.
// Later lookups of the result are scoped to root on their own, so a tree
// that changes in between can at worst send them elsewhere inside root.
func resolveRel(root, unsafePath string) (string, error) {
	resolved, err := SecureJoin(root, unsafePath)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(filepath.Clean(root), resolved)
	if err != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", unsafePath, root, err)
	}
	return rel, nil
}

func openRoot(root string) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", root, err)
	}
	return os.NewFile(uintptr(fd), root), nil
}

func mkdirAll(root *os.File, unsafePath string, mode os.FileMode) (*os.File, error) {
	f, err := securejoin.MkdirAllHandle(root, unsafePath, mode)
	if err != nil {
		return nil, fmt.Errorf("create directory %s in %s: %w", unsafePath, root.Name(), err)
	}
	return f, nil
}

// CreateMountpoint makes sure dest exists inside root as a directory (isDir)
// or as a file to bind-mount a non-directory onto, creating missing parents,
// and returns a handle to it (O_PATH for a file) for mounting through
// /proc/thread-self/fd/N. A missing file is created empty with mknodat(2),
// which neither follows a final symlink nor opens (nor truncates) anything
// already there. Symlinks in dest, dangling ones included, resolve inside
// root, as runc does. Something of the wrong type already at dest is an
// error: the mount would fail anyway, less clearly.
func CreateMountpoint(root, dest string, isDir bool) (*os.File, error) {
	rel, err := resolveRel(root, dest)
	if err != nil {
		return nil, err
	}
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()

	var f *os.File
	if isDir {
		if f, err = mkdirAll(r, rel, 0o755); err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return nil, fmt.Errorf("mount destination %s, or a parent, exists in the rootfs and is not a directory: %w", dest, unix.ENOTDIR)
			}
			return nil, err
		}
	} else {
		dir, base := filepath.Split(rel)
		if base == "" || base == "." || base == ".." {
			return nil, fmt.Errorf("mount destination %s: a file mount needs a file name", dest)
		}
		d, err := mkdirAll(r, dir, 0o755)
		if err != nil {
			return nil, err
		}
		err = unix.Mknodat(int(d.Fd()), base, unix.S_IFREG|0o644, 0)
		d.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create mount point %s in %s: %w", dest, root, err)
		}
		if f, err = securejoin.OpenatInRoot(r, rel); err != nil {
			return nil, fmt.Errorf("open mount point %s in %s: %w", dest, root, err)
		}
	}

	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat mount point %s: %w", dest, err)
	}
	if gotDir := st.Mode&unix.S_IFMT == unix.S_IFDIR; gotDir != isDir {
		f.Close()
		if isDir {
			return nil, fmt.Errorf("mount destination %s exists in the rootfs and is not a directory: %w", dest, unix.ENOTDIR)
		}
		return nil, fmt.Errorf("mount destination %s is a directory in the rootfs, but the source is not: %w", dest, unix.EISDIR)
	}
	return f, nil
}
