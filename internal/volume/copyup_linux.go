package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CopyUp fills a new volume with what the image has at its mount point, as
// docker does when a container first mounts an empty volume: files,
// directories, symlinks, hard links, devices and fifos, with owners, modes,
// times and (best effort) extended attributes, and the mount point's own
// owner and mode on the volume's root. A volume that holds anything, or an
// image without a directory there, is left alone. The caller resolves
// imageDir inside the container's root file system; CopyUp follows no
// symlink below it.
func CopyUp(imageDir, volumeDir string) error {
	var st unix.Stat_t
	err := unix.Lstat(imageDir, &st)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("copy image content into volume: lstat %s: %w", imageDir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	d, err := os.Open(volumeDir)
	if err != nil {
		return fmt.Errorf("copy image content into volume: %w", err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err == nil {
		return nil // not empty: the volume's data wins
	}
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("copy image content into volume: %w", err)
	}
	c := copier{links: map[inode]string{}}
	if err := c.dir(imageDir, volumeDir); err != nil {
		return fmt.Errorf("copy image content %s into volume %s: %w", imageDir, volumeDir, err)
	}
	if err := c.meta(imageDir, volumeDir, &st, false); err != nil {
		return fmt.Errorf("copy image content %s into volume %s: %w", imageDir, volumeDir, err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

// copier remembers the first copy of each multiply linked file, so the
// copy links to it as the source did.
type copier struct {
	links map[inode]string
}

// dir copies src's entries into the existing directory dst.
func (c *copier) dir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		sp, dp := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(sp, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", sp, err)
		}
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFDIR && st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := c.links[key]; ok {
				if err := os.Link(first, dp); err != nil {
					return err
				}
				continue
			}
			c.links[key] = dp
		}
		switch typ {
		case unix.S_IFDIR:
			if err := os.Mkdir(dp, 0o700); err != nil {
				return err
			}
			if err := c.dir(sp, dp); err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := copyFile(sp, dp); err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(sp)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dp); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			if err := unix.Mknod(dp, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", dp, err)
			}
		default:
			continue // sockets: nothing to copy
		}
		if err := c.meta(sp, dp, &st, typ == unix.S_IFLNK); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// meta gives dst src's owner, extended attributes, mode and times, in
// that order: a chown clears set-id bits and file capabilities.
func (c *copier) meta(src, dst string, sys *unix.Stat_t, link bool) error {
	if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return err
	}
	copyXattrs(src, dst)
	if !link {
		if err := unix.Fchmodat(unix.AT_FDCWD, dst, sys.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	times := []unix.Timespec{sys.Atim, sys.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", dst, err)
	}
	return nil
}

// copyXattrs copies what extended attributes it can: the destination file
// system may lack them, or refuse some namespaces.
func copyXattrs(src, dst string) {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range bytes.Split(buf[:size], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		n := string(name)
		vsize, err := unix.Lgetxattr(src, n, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		vsize, err = unix.Lgetxattr(src, n, val)
		if err != nil {
			continue
		}
		_ = unix.Lsetxattr(dst, n, val[:vsize], 0)
	}
}
