package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyTree copies the tree at src to dst, which must not exist, keeping
// what a layer holds: owners, modes (setuid included), extended attributes
// (file capabilities included), timestamps, hard links, symlinks, device
// nodes, FIFOs and sockets. File data is reflinked where the file system
// can, and copied in the kernel otherwise.
func CopyTree(src, dst string) error {
	c := copier{links: map[fileKey]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	return c.copyDir(src, dst, &st)
}

type fileKey struct{ dev, ino uint64 }

type copier struct {
	// links maps files with more than one link to their first copy.
	links map[fileKey]string
	buf   []byte
}

func (c *copier) copyDir(src, dst string, st *unix.Stat_t) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	for _, name := range names {
		s, d := filepath.Join(src, name), filepath.Join(dst, name)
		var cst unix.Stat_t
		if err := unix.Lstat(s, &cst); err != nil {
			return fmt.Errorf("copy %s: %w", s, err)
		}
		if err := c.copyEntry(s, d, &cst); err != nil {
			return fmt.Errorf("copy %s: %w", s, err)
		}
	}
	// The directory's own metadata last: its timestamps change while it is
	// filled, and a read-only mode would stop filling it.
	return c.copyMeta(src, dst, st)
}

func (c *copier) copyEntry(src, dst string, st *unix.Stat_t) error {
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFDIR {
		return c.copyDir(src, dst, st)
	}
	if st.Nlink > 1 {
		key := fileKey{uint64(st.Dev), st.Ino}
		if first, ok := c.links[key]; ok {
			return os.Link(first, dst)
		}
		c.links[key] = dst
	}
	switch mode {
	case unix.S_IFREG:
		if err := c.copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown file type %o", mode)
	}
	return c.copyMeta(src, dst, st)
}

func (c *copier) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		// No reflinks here: copy_file_range(2) through io.Copy.
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// copyMeta copies owner, mode, extended attributes and timestamps, in the
// order that keeps each: chown clears setuid bits and file capabilities.
func (c *copier) copyMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&07777); err != nil {
			return err
		}
	}
	if err := c.copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (c *copier) copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if errors.Is(err, unix.ENOTSUP) || err == nil && size == 0 {
		return nil
	} else if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	list := make([]byte, size)
	if size, err = unix.Llistxattr(src, list); err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range strings.Split(string(list[:size]), "\x00") {
		if name == "" {
			continue
		}
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
		if len(c.buf) < n {
			c.buf = make([]byte, n)
		}
		if n, err = unix.Lgetxattr(src, name, c.buf[:n]); err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
		if err := unix.Lsetxattr(dst, name, c.buf[:n], 0); err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}
