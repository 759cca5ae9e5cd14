package archive

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once openat2 turns out missing (ENOSYS) or filtered
// (EPERM under old seccomp profiles); tests set it to exercise the
// fallback walk.
var noOpenat2 atomic.Bool

// maxSymlinks bounds the symlinks followed resolving one path, as the
// kernel's MAXSYMLINKS.
const maxSymlinks = 40

// openBeneath opens directory rel (clean, relative, "" for root itself)
// under root, following symlinks only while they stay beneath root:
// absolute symlinks and ".." above root fail with ErrEscape. The fd is
// O_RDONLY|O_DIRECTORY; the caller closes it.
func openBeneath(root int, rel string) (int, error) {
	if rel == "" {
		return unix.Openat(root, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if !noOpenat2.Load() {
		how := unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		}
		for range 16 {
			fd, err := unix.Openat2(root, rel, &how)
			switch err {
			case nil:
				return fd, nil
			case unix.EAGAIN, unix.EINTR:
				continue // a concurrent rename; try again
			case unix.EXDEV:
				return -1, fmt.Errorf("%w through a symlink", ErrEscape)
			case unix.ENOSYS, unix.EPERM:
				noOpenat2.Store(true)
			default:
				return -1, err
			}
			break
		}
	}
	return openBeneathWalk(root, rel)
}

// openBeneathWalk is openBeneath done one component at a time with
// O_NOFOLLOW, for kernels without openat2.
func openBeneathWalk(root int, rel string) (int, error) {
	var stack []int // the directories walked below root
	defer func() {
		for _, fd := range stack {
			unix.Close(fd)
		}
	}()
	cur := func() int {
		if len(stack) == 0 {
			return root
		}
		return stack[len(stack)-1]
	}
	comps := strings.Split(rel, "/")
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				// Entry names hold no "..": this one came from a symlink.
				return -1, fmt.Errorf("%w through a symlink", ErrEscape)
			}
			unix.Close(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			continue
		}
		fd, err := unix.Openat(cur(), c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			stack = append(stack, fd)
		case unix.S_IFLNK:
			target, err := readlinkFd(fd)
			unix.Close(fd)
			if err != nil {
				return -1, err
			}
			if links++; links > maxSymlinks {
				return -1, unix.ELOOP
			}
			if strings.HasPrefix(target, "/") {
				return -1, fmt.Errorf("%w through a symlink", ErrEscape)
			}
			comps = append(strings.Split(target, "/"), comps...)
		default:
			unix.Close(fd)
			return -1, unix.ENOTDIR
		}
	}
	return unix.Openat(cur(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// readlinkFd reads the target of the symlink an O_PATH fd refers to.
func readlinkFd(fd int) (string, error) {
	return readlinkat(fd, "")
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}

// dirCache resolves parent directories beneath a root, keeping the last
// one open: entries of a tar come grouped by directory.
type dirCache struct {
	root   int
	path   string
	fd     int
	stale  bool
	st     unix.Stat_t // of fd
	rootSt *unix.Stat_t
}

func newDirCache(root int) *dirCache {
	return &dirCache{root: root, fd: -1}
}

// get returns an fd for directory rel, owned by the cache: valid until the
// next get or close. With create, missing directories are made (0755) on
// the way.
func (c *dirCache) get(rel string, create bool) (int, error) {
	if rel == "" {
		return c.root, nil
	}
	if c.fd >= 0 && !c.stale && c.path == rel {
		return c.fd, nil
	}
	c.close()
	fd, err := openBeneath(c.root, rel)
	if create && errors.Is(err, unix.ENOENT) {
		fd, err = c.mkdirAll(rel)
	}
	if err != nil {
		return -1, err
	}
	if err := unix.Fstat(fd, &c.st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	c.path, c.fd = rel, fd
	return fd, nil
}

// stat returns the stat of directory rel, which the last get opened.
func (c *dirCache) stat(rel string) (*unix.Stat_t, error) {
	if rel != "" {
		return &c.st, nil
	}
	if c.rootSt == nil {
		var st unix.Stat_t
		if err := unix.Fstat(c.root, &st); err != nil {
			return nil, err
		}
		c.rootSt = &st
	}
	return c.rootSt, nil
}

// mkdirAll creates the missing directories of rel and opens it.
func (c *dirCache) mkdirAll(rel string) (int, error) {
	dir, base := splitPath(rel)
	pfd, err := openBeneath(c.root, dir)
	if errors.Is(err, unix.ENOENT) {
		pfd, err = c.mkdirAll(dir)
	}
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o755)
	unix.Close(pfd)
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	return openBeneath(c.root, rel)
}

// markStale makes the next get resolve its path again: to call after
// anything that may have removed or replaced a directory or a symlink. The
// fd last returned stays open until then.
func (c *dirCache) markStale() { c.stale = true }

func (c *dirCache) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
	}
	c.fd, c.path, c.stale = -1, "", false
}
