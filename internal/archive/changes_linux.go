package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Changes lists how upper differs from the layers below it, sorted by
// path, each path slash-rooted ("/etc/hosts").
//
// With WhiteoutOverlay, upper is an overlayfs upper dir and lower its lower
// dirs, topmost first, themselves in overlay format: only upper is walked;
// a whiteout device is a Delete, anything else is a Modify when a lower
// layer shows that path and an Add otherwise (an opaque upper directory
// hides everything below it). Redirected directories (redirect_dir) are
// not understood.
//
// With WhiteoutDelete, upper is a full tree and lower[0] the full tree of
// its parent (none: everything is added); they are compared by type, mode,
// owner, device number, size, modification time and symlink target, as
// docker does. A deleted directory is one Delete, not one per file in it.
//
// In both modes the directories above a change are listed as changed
// (docker's `C /etc` next to `A /etc/new`).
func Changes(ctx context.Context, lower []string, upper string, mode WhiteoutMode) ([]Change, error) {
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open layer %s: %w", upper, err)
	}
	defer unix.Close(ufd)

	var out []Change
	if mode == WhiteoutOverlay {
		o := &overlayDiff{lower: lower, out: &out}
		vis := make([]int, len(lower))
		for i := range lower {
			vis[i] = i
		}
		err = o.dir(ctx, ufd, "", vis)
	} else {
		lfd := -1
		if len(lower) > 0 && lower[0] != "" {
			lfd, err = unix.Open(lower[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("open layer %s: %w", lower[0], err)
			}
			defer unix.Close(lfd)
		}
		_, err = diffDirs(ctx, ufd, lfd, "", &out)
	}
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", upper, err)
	}
	sortChanges(out)
	return out, nil
}

// sortChanges orders changes by path, a deletion before anything else at
// the same path.
func sortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(a, b Change) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return boolRank(a.Kind != ChangeDelete) - boolRank(b.Kind != ChangeDelete)
	})
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func slashPath(rel string) string { return "/" + rel }

// sortedNames lists directory fd, sorted.
func sortedNames(fd int) ([]string, error) {
	names, err := readDirNames(fd)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// diffDirs compares upper directory u with lower directory l (-1: none)
// at rel, appending to out; it reports whether anything below changed.
func diffDirs(ctx context.Context, u, l int, rel string, out *[]Change) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	unames, err := sortedNames(u)
	if err != nil {
		return false, fmt.Errorf("list %q: %w", slashPath(rel), err)
	}
	var lnames []string
	if l >= 0 {
		if lnames, err = sortedNames(l); err != nil {
			return false, fmt.Errorf("list lower %q: %w", slashPath(rel), err)
		}
	}
	changed := false
	i, j := 0, 0
	for i < len(unames) || j < len(lnames) {
		var name string
		inU, inL := false, false
		switch {
		case j >= len(lnames) || (i < len(unames) && unames[i] < lnames[j]):
			name, inU = unames[i], true
			i++
		case i >= len(unames) || lnames[j] < unames[i]:
			name, inL = lnames[j], true
			j++
		default:
			name, inU, inL = unames[i], true, true
			i++
			j++
		}
		p := joinPath(rel, name)
		if !inU {
			*out = append(*out, Change{ChangeDelete, slashPath(p)})
			changed = true
			continue
		}
		var ust, lst unix.Stat_t
		if err := unix.Fstatat(u, name, &ust, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, fmt.Errorf("stat %q: %w", slashPath(p), err)
		}
		same := false
		if inL {
			if err := unix.Fstatat(l, name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return false, fmt.Errorf("stat lower %q: %w", slashPath(p), err)
			}
			if same, err = sameFile(u, l, name, &ust, &lst); err != nil {
				return false, fmt.Errorf("compare %q: %w", slashPath(p), err)
			}
		}
		if !same {
			kind := ChangeAdd
			if inL {
				kind = ChangeModify
			}
			*out = append(*out, Change{kind, slashPath(p)})
			changed = true
		}
		if !isDir(&ust) {
			continue
		}
		cu, err := openDirAt(u, name)
		if err != nil {
			return false, fmt.Errorf("open %q: %w", slashPath(p), err)
		}
		cl := -1
		if inL && isDir(&lst) {
			if cl, err = openDirAt(l, name); err != nil {
				unix.Close(cu)
				return false, fmt.Errorf("open lower %q: %w", slashPath(p), err)
			}
		}
		sub, err := diffDirs(ctx, cu, cl, p, out)
		unix.Close(cu)
		if cl >= 0 {
			unix.Close(cl)
		}
		if err != nil {
			return false, err
		}
		if sub && same {
			*out = append(*out, Change{ChangeModify, slashPath(p)})
		}
		changed = changed || sub
	}
	return changed, nil
}

// sameFile compares two entries as docker does: type and mode, owner,
// device, size (not for directories), modification time, symlink target.
func sameFile(u, l int, name string, a, b *unix.Stat_t) (bool, error) {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
		return false, nil
	}
	if !isDir(a) && a.Size != b.Size {
		return false, nil
	}
	if !sameTime(a.Mtim, b.Mtim) {
		return false, nil
	}
	if a.Mode&unix.S_IFMT == unix.S_IFLNK {
		ta, err := readlinkat(u, name)
		if err != nil {
			return false, err
		}
		tb, err := readlinkat(l, name)
		if err != nil {
			return false, err
		}
		return ta == tb, nil
	}
	return true, nil
}

// sameTime compares modification times; a time without nanoseconds (as a
// tar restores it) equals any time in the same second.
func sameTime(a, b unix.Timespec) bool {
	return a.Sec == b.Sec && (a.Nsec == b.Nsec || a.Nsec == 0 || b.Nsec == 0)
}

// overlayDiff walks an overlayfs upper dir.
type overlayDiff struct {
	lower []string
	out   *[]Change
}

// dir walks upper directory u at rel; vis lists the lower layers (indexes,
// topmost first) in which rel is a directory that shows through.
func (o *overlayDiff) dir(ctx context.Context, u int, rel string, vis []int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := sortedNames(u)
	if err != nil {
		return fmt.Errorf("list %q: %w", slashPath(rel), err)
	}
	for _, name := range names {
		p := joinPath(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(u, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", slashPath(p), err)
		}
		if isWhiteout(&st) {
			*o.out = append(*o.out, Change{ChangeDelete, slashPath(p)})
			continue
		}
		exists, childVis, err := o.lookup(p, vis)
		if err != nil {
			return err
		}
		kind := ChangeAdd
		if exists {
			kind = ChangeModify
		}
		*o.out = append(*o.out, Change{kind, slashPath(p)})
		if !isDir(&st) {
			continue
		}
		cu, err := openDirAt(u, name)
		if err != nil {
			return fmt.Errorf("open %q: %w", slashPath(p), err)
		}
		if opaque, err := fdIsOpaque(cu); err != nil {
			unix.Close(cu)
			return fmt.Errorf("read xattrs of %q: %w", slashPath(p), err)
		} else if opaque {
			childVis = nil
		}
		err = o.dir(ctx, cu, p, childVis)
		unix.Close(cu)
		if err != nil {
			return err
		}
	}
	return nil
}

// lookup says whether p shows in the lower layers (vis: where its parent
// does) and in which of them p is a directory that shows through.
func (o *overlayDiff) lookup(p string, vis []int) (bool, []int, error) {
	exists := false
	var dirs []int
	for _, i := range vis {
		full := o.lower[i] + "/" + p
		var st unix.Stat_t
		err := unix.Lstat(full, &st)
		if err == unix.ENOENT || err == unix.ENOTDIR {
			continue
		}
		if err != nil {
			return false, nil, fmt.Errorf("stat lower %s: %w", full, err)
		}
		if isWhiteout(&st) {
			break
		}
		exists = true
		if !isDir(&st) {
			break
		}
		dirs = append(dirs, i)
		opaque, err := pathIsOpaque(full)
		if err != nil {
			return false, nil, fmt.Errorf("read xattrs of %s: %w", full, err)
		}
		if opaque {
			break
		}
	}
	return exists, dirs, nil
}

func fdIsOpaque(fd int) (bool, error) {
	var buf [4]byte
	n, err := unix.Fgetxattr(fd, overlayOpaqueXattr, buf[:])
	return opaqueValue(buf[:], n, err)
}

func pathIsOpaque(path string) (bool, error) {
	var buf [4]byte
	n, err := unix.Lgetxattr(path, overlayOpaqueXattr, buf[:])
	return opaqueValue(buf[:], n, err)
}

func opaqueValue(buf []byte, n int, err error) (bool, error) {
	switch {
	case err == nil:
		return bytes.Equal(buf[:n], []byte("y")), nil
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ERANGE):
		return false, nil
	}
	return false, err
}
