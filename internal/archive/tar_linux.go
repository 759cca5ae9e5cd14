package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteTar writes a layer tar holding changes, read from root, in path
// order: added and modified paths as they are in root, deleted ones as
// ".wh." files. Root may be an overlayfs upper dir: its whiteout devices
// are written as ".wh." files and its opaque directories get a
// ".wh..wh..opq" entry (so for overlay, pass the upper dir, not the merged
// mount, and mount without metacopy). Files with several links are written
// once and then as hardlinks; xattrs go in PAX records (never
// trusted.overlay.*); times are truncated to the second and user and group
// names left out, so the same tree gives the same tar.
//
// Paths in root are resolved beneath it (a symlink never leads the reader
// out); a path that vanished since the changes were computed is an error.
func WriteTar(ctx context.Context, w io.Writer, root string, changes []Change) error {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open layer %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	cs := slices.Clone(changes)
	sortChanges(cs)

	tw := newTarWriter(w, true)
	dirs := newDirCache(rootfd)
	defer dirs.close()
	for i, c := range cs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i > 0 && cs[i-1] == c {
			continue
		}
		rel, err := CleanEntryName(strings.TrimPrefix(c.Path, "/"))
		if err != nil {
			return fmt.Errorf("change %q: %w", c.Path, err)
		}
		if rel == "" {
			continue // the root itself is not an entry
		}
		if c.Kind == ChangeDelete {
			if err := tw.whiteout(rel); err != nil {
				return err
			}
			continue
		}
		dir, base := splitPath(rel)
		pfd, err := dirs.get(dir, false)
		if err != nil {
			return fmt.Errorf("changed path %q: open parent: %w", c.Path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("changed path %q: %w", c.Path, err)
		}
		if isWhiteout(&st) {
			if err := tw.whiteout(rel); err != nil {
				return err
			}
			continue
		}
		if err := tw.entry(pfd, rel, base, &st); err != nil {
			return err
		}
	}
	return tw.close()
}

// TarDir writes the whole tree under root (not root itself) as a tar, for
// export: depth first, each directory's entries sorted by name, with
// hardlinks, xattrs (never trusted.overlay.*) and PAX headers as WriteTar.
// Sockets are left out, as docker does.
func TarDir(ctx context.Context, w io.Writer, root string) error {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	tw := newTarWriter(w, false)
	if err := tw.walk(ctx, rootfd, ""); err != nil {
		return err
	}
	return tw.close()
}

type devIno struct{ dev, ino uint64 }

type tarWriter struct {
	tw    *tar.Writer
	links map[devIno]string
	buf   []byte
	// diff: a layer diff: opaque directories get their ".wh..wh..opq".
	diff  bool
	names []byte // llistxattr buffer, reused
}

func newTarWriter(w io.Writer, diff bool) *tarWriter {
	return &tarWriter{
		tw:    tar.NewWriter(w),
		links: make(map[devIno]string),
		buf:   make([]byte, copyBufSize),
		diff:  diff,
	}
}

func (t *tarWriter) close() error {
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return nil
}

func (t *tarWriter) walk(ctx context.Context, dirfd int, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, err := sortedNames(dirfd)
	if err != nil {
		return fmt.Errorf("list %q: %w", slashPath(rel), err)
	}
	for _, name := range names {
		p := joinPath(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", slashPath(p), err)
		}
		if err := t.entry(dirfd, p, name, &st); err != nil {
			return err
		}
		if !isDir(&st) {
			continue
		}
		cfd, err := openDirAt(dirfd, name)
		if err != nil {
			return fmt.Errorf("open %q: %w", slashPath(p), err)
		}
		err = t.walk(ctx, cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

var epoch = time.Unix(0, 0)

// whiteout writes the ".wh." entry that deletes rel.
func (t *tarWriter) whiteout(rel string) error {
	dir, base := splitPath(rel)
	return t.marker(joinPath(dir, WhiteoutPrefix+base))
}

func (t *tarWriter) marker(name string) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, ModTime: epoch, Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar entry %q: %w", name, err)
	}
	return nil
}

// entry writes rel, named base in directory pfd, whose lstat is st.
func (t *tarWriter) entry(pfd int, rel, base string, st *unix.Stat_t) error {
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if st.Nlink > 1 {
			key := devIno{uint64(st.Dev), st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				t.links[key] = rel
			}
		}
	case unix.S_IFLNK:
		target, err := readlinkat(pfd, base)
		if err != nil {
			return fmt.Errorf("readlink %q: %w", slashPath(rel), err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets: not archived
	}
	opaque := false
	if hdr.Typeflag != tar.TypeLink { // a hardlink shares its first name's xattrs
		var err error
		if opaque, err = t.xattrs(pfd, base, hdr); err != nil {
			return fmt.Errorf("read xattrs of %q: %w", slashPath(rel), err)
		}
	}

	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		if err := t.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar entry %q: %w", rel, err)
		}
		if opaque && t.diff {
			return t.marker(joinPath(rel, WhiteoutOpaqueDir))
		}
		return nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", slashPath(rel), err)
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return fmt.Errorf("stat %q: %w", slashPath(rel), err)
	}
	if fst.Ino != st.Ino || fst.Dev != st.Dev {
		return fmt.Errorf("%q changed while being archived", slashPath(rel))
	}
	hdr.Size = fst.Size
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar entry %q: %w", rel, err)
	}
	for n := hdr.Size; n > 0; {
		chunk := t.buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		got, err := unix.Read(fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %q: %w", slashPath(rel), err)
		}
		if got == 0 {
			return fmt.Errorf("%q shrank while being archived", slashPath(rel))
		}
		if _, err := t.tw.Write(chunk[:got]); err != nil {
			return fmt.Errorf("write tar entry %q: %w", rel, err)
		}
		n -= int64(got)
	}
	return nil
}

// xattrs puts the extended attributes of base (in pfd) into hdr's PAX
// records, leaving out overlayfs's own; it reports whether base is an
// opaque overlay directory.
func (t *tarWriter) xattrs(pfd int, base string, hdr *tar.Header) (bool, error) {
	path := "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
	if t.names == nil {
		t.names = make([]byte, 4096)
	}
	var n int
	for {
		var err error
		n, err = unix.Llistxattr(path, t.names)
		if err == unix.ERANGE {
			t.names = make([]byte, 2*len(t.names))
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		break
	}
	opaque := false
	for _, name := range strings.Split(string(t.names[:n]), "\x00") {
		if name == "" {
			continue
		}
		value, err := getxattr(path, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		if strings.HasPrefix(name, overlayXattrPrefix) {
			if name == overlayOpaqueXattr && bytes.Equal(value, []byte("y")) {
				opaque = true
			}
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattrPrefix+name] = string(value)
	}
	return opaque, nil
}

func getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			size, err := unix.Lgetxattr(path, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, size+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
