package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// copyBufSize is the buffer file contents are copied through.
const copyBufSize = 1 << 20

// Apply unpacks the layer tar r (gzip, zstd, bzip2 or plain, detected by
// magic bytes) into the directory root and returns the size of the
// uncompressed stream. Whiteouts are applied as opts.Whiteouts says;
// ownership, modes (setuid, setgid, sticky), xattrs, timestamps,
// hardlinks, symlinks, devices and FIFOs are kept.
//
// Hardlink targets must already be in root: under WhiteoutOverlay, in this
// layer itself (a link to a lower layer's file is refused, as no overlay
// upper dir could hold it). Under WhiteoutDelete, an opaque directory
// keeps only what this layer put there, wherever its marker comes.
//
// Every entry is resolved beneath root; an entry that would land outside
// (an absolute or ".."-holding name, a path through a symlink pointing
// out, a hardlink to outside), a device under NoDevices and a header
// claiming an absurd size are refused with an *EntryError (classified
// errdefs.InvalidArgument), and nothing outside root is touched. On error
// root holds part of the layer: the caller discards it.
//
// Xattrs in overlayfs's private namespace (trusted.overlay.*) are never
// taken from a layer. Xattrs the file system does not support
// (ENOTSUP), and security.* or trusted.* ones the caller may not set
// (EPERM), are skipped with a debug log, as docker does; other xattr
// errors fail the entry.
//
// A compressed stream is decompressed on its own goroutine, ahead of the
// writes; if Apply fails, that goroutine may still be in a read of r
// until r returns. Calls for different roots may run concurrently (an
// overlay layer's upper dir does not depend on its parents).
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open layer root %s: %w", root, err)
	}
	defer unix.Close(rootfd)

	dc, comp, err := decompress(r)
	if errors.Is(err, ErrUnsupportedCompression) {
		return 0, errdefs.NotImplemented(err)
	}
	if err != nil {
		return 0, fmt.Errorf("layer stream: %w", err)
	}
	var src io.Reader = dc
	switch comp {
	case Gzip, Bzip2, Zstd:
		ra := newReadahead(dc, copyBufSize, 4)
		defer ra.stop()
		src = ra
	default:
		defer dc.Close()
	}
	cr := &countingReader{r: src, tee: opts.Tee}

	a := &applier{
		opts:  opts,
		root:  rootfd,
		dirs:  newDirCache(rootfd),
		links: newDirCache(rootfd),
		buf:   make([]byte, copyBufSize),
		max:   opts.MaxEntrySize,
		log:   opts.Logger,
		euid:  os.Geteuid(),
		egid:  os.Getegid(),
	}
	defer a.dirs.close()
	defer a.links.close()
	if a.max <= 0 {
		a.max = DefaultMaxEntrySize
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if opts.Whiteouts == WhiteoutDelete {
		a.added = make(map[string]struct{})
	}

	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return cr.n, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("read layer tar: %w", err)
		}
		if err := a.entry(ctx, tr, hdr); err != nil {
			return cr.n, entryError(hdr.Name, err)
		}
	}
	// The rest of the stream (the tar's end blocks and padding) belongs to
	// the uncompressed size, and to the digest a Tee computes.
	if _, err := io.CopyBuffer(writerOnly{io.Discard}, cr, a.buf); err != nil {
		return cr.n, fmt.Errorf("read layer tar: %w", err)
	}
	if err := a.setDirTimes(); err != nil {
		return cr.n, err
	}
	if opts.Sync {
		if err := unix.Syncfs(rootfd); err != nil {
			return cr.n, fmt.Errorf("sync %s: %w", root, err)
		}
	}
	return cr.n, nil
}

// entryError wraps err with the entry's name, classifying refusals.
func entryError(name string, err error) error {
	e := &EntryError{Name: name, Err: err}
	if errors.Is(err, ErrEscape) || errors.Is(err, ErrDeviceRefused) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, errBadEntry) {
		return errdefs.InvalidArgument(e)
	}
	return e
}

// errBadEntry is wrapped by refusals of malformed entries.
var errBadEntry = errors.New("malformed entry")

type countingReader struct {
	r   io.Reader
	tee io.Writer
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && c.tee != nil {
		if _, werr := c.tee.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	return n, err
}

type writerOnly struct{ io.Writer }

type dirTime struct {
	rel string
	ts  [2]unix.Timespec
}

type applier struct {
	opts  ApplyOptions
	root  int
	dirs  *dirCache // parents of entries
	links *dirCache // parents of hardlink targets
	buf   []byte
	max   int64
	log   *slog.Logger
	// added holds what this layer put in place (and the parents of that),
	// for opaque directories under WhiteoutDelete.
	added    map[string]struct{}
	dirTimes []dirTime
	// euid and egid own what Apply creates, unless a setgid parent gives
	// its group: chown is skipped where it would change nothing.
	euid, egid int
}

// needChown says whether something just created in directory dir (which
// the last a.dirs.get opened) needs a chown to belong to uid:gid.
func (a *applier) needChown(dir string, uid, gid int) bool {
	if uid < 0 {
		return false
	}
	if uid != a.euid {
		return true
	}
	st, err := a.dirs.stat(dir)
	if err != nil {
		return true
	}
	if st.Mode&unix.S_ISGID != 0 {
		return gid != int(st.Gid)
	}
	return gid != a.egid
}

func (a *applier) entry(ctx context.Context, tr *tar.Reader, hdr *tar.Header) error {
	rel, err := CleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Size < 0 || hdr.Size > a.max {
		return fmt.Errorf("%w: the header claims %d bytes, the limit is %d", ErrTooLarge, hdr.Size, a.max)
	}
	dir, base := splitPath(rel)
	if rel != "" {
		switch kind, name := parseWhiteout(base); kind {
		case whiteoutOpaque:
			return a.opaque(dir)
		case whiteoutMeta:
			return nil
		case whiteoutFile:
			if name == "" || name == "." || name == ".." {
				return fmt.Errorf("%w: whiteout of %q", errBadEntry, name)
			}
			return a.whiteout(dir, name)
		}
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if rel == "" && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("%w: the layer root must be a directory", errBadEntry)
	}
	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = a.dir(rel, hdr, uid, gid)
	case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeCont:
		err = a.file(ctx, tr, rel, hdr, uid, gid)
	case tar.TypeSymlink:
		err = a.symlink(rel, hdr, uid, gid)
	case tar.TypeLink:
		err = a.hardlink(rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.node(rel, hdr, uid, gid)
	default:
		return fmt.Errorf("%w: unsupported tar entry type %q", errBadEntry, hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	a.markAdded(rel)
	return nil
}

// markAdded records rel and its parents as this layer's (WhiteoutDelete).
func (a *applier) markAdded(rel string) {
	if a.added == nil {
		return
	}
	for rel != "" {
		if _, ok := a.added[rel]; ok {
			return
		}
		a.added[rel] = struct{}{}
		rel, _ = splitPath(rel)
	}
}

func (a *applier) owner(hdr *tar.Header) (int, int, error) {
	if a.opts.NoOwnership {
		return -1, -1, nil
	}
	uid, ok := mapID(hdr.Uid, a.opts.UIDMaps)
	if !ok {
		return 0, 0, fmt.Errorf("%w: uid %d has no mapping in the user namespace", errBadEntry, hdr.Uid)
	}
	gid, ok := mapID(hdr.Gid, a.opts.GIDMaps)
	if !ok {
		return 0, 0, fmt.Errorf("%w: gid %d has no mapping in the user namespace", errBadEntry, hdr.Gid)
	}
	return uid, gid, nil
}

// perm turns a tar mode into the permission bits for chmod, setuid,
// setgid and sticky included.
func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func timesOf(hdr *tar.Header) [2]unix.Timespec {
	mtime := hdr.ModTime
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{timespec(atime), timespec(mtime)}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// parent resolves the directory an entry goes into, creating what is
// missing.
func (a *applier) parent(dir string) (int, error) {
	fd, err := a.dirs.get(dir, true)
	if errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("parent %q is not a directory", dir)
	}
	if err != nil && !errors.Is(err, ErrEscape) {
		return -1, fmt.Errorf("open parent %q: %w", dir, err)
	}
	return fd, err
}

// create runs mk and, if the name is taken, removes what holds it and runs
// mk again.
func (a *applier) create(pfd int, base string, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	if err := a.remove(pfd, base); err != nil {
		return err
	}
	return mk()
}

// remove deletes name in dirfd, a directory with all it holds; a missing
// name is not an error.
func (a *applier) remove(dirfd int, name string) error {
	err := removeAllAt(dirfd, name)
	if err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	a.dirs.markStale()
	a.links.markStale()
	return nil
}

func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// readDirNames lists a directory fd (without "." and ".."), leaving the fd
// open and its offset at the end.
func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

func (a *applier) dir(rel string, hdr *tar.Header, uid, gid int) error {
	ts := timesOf(hdr)
	if rel == "" {
		if err := a.meta(a.root, hdr, uid, gid, false); err != nil {
			return err
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel, ts})
		return nil
	}
	dir, base := splitPath(rel)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	opaque := false
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // merge into the directory already there
		} else {
			// overlayfs makes a directory over a whiteout opaque: do as it does.
			opaque = a.opts.Whiteouts == WhiteoutOverlay && isWhiteout(&st)
			if err = a.remove(pfd, base); err != nil {
				return err
			}
			err = unix.Mkdirat(pfd, base, 0o700)
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if err := a.meta(fd, hdr, uid, gid, false); err != nil {
		return err
	}
	if opaque {
		if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque: %w", err)
		}
	}
	a.dirTimes = append(a.dirTimes, dirTime{rel, ts})
	return nil
}

// meta sets owner, mode and xattrs on an open file or directory, and its
// times when withTimes.
func (a *applier) meta(fd int, hdr *tar.Header, uid, gid int, withTimes bool) error {
	if uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if err := unix.Fchmod(fd, perm(hdr)); err != nil {
		return fmt.Errorf("chmod %o: %w", perm(hdr), err)
	}
	if err := a.xattrs(hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	}); err != nil {
		return err
	}
	if withTimes {
		ts := timesOf(hdr)
		if err := futimens(fd, &ts); err != nil {
			return fmt.Errorf("set times: %w", err)
		}
	}
	return nil
}

// metaAt sets owner, xattrs and times on a name that may not be opened (a
// symlink, a device, a FIFO), and its mode unless it is a symlink.
func (a *applier) metaAt(pfd int, base string, hdr *tar.Header, uid, gid int, symlink bool) error {
	if uid >= 0 {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if !symlink {
		// The name was just made by mknodat: not a symlink to follow.
		if err := unix.Fchmodat(pfd, base, perm(hdr), 0); err != nil {
			return fmt.Errorf("chmod %o: %w", perm(hdr), err)
		}
	}
	if err := a.xattrs(hdr, func(name string, value []byte) error {
		return unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(pfd)+"/"+base, name, value, 0)
	}); err != nil {
		return err
	}
	ts := timesOf(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// xattrs sets the entry's extended attributes with set.
func (a *applier) xattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, overlayXattrPrefix) {
			a.log.Debug("skipping overlayfs xattr from a layer", "entry", hdr.Name, "xattr", name)
			continue
		}
		err := set(name, []byte(v))
		switch {
		case err == nil:
		case err == unix.ENOTSUP || err == unix.EOPNOTSUPP,
			err == unix.EPERM && (strings.HasPrefix(name, "security.") || strings.HasPrefix(name, "trusted.")):
			a.log.Debug("skipping xattr", "entry", hdr.Name, "xattr", name, "err", err)
		default:
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func (a *applier) file(ctx context.Context, tr *tar.Reader, rel string, hdr *tar.Header, uid, gid int) error {
	dir, base := splitPath(rel)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	fd := -1
	// O_EXCL, not O_TRUNC: a file already there may be a hardlink that
	// must keep its content.
	err = a.create(pfd, base, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	defer unix.Close(fd)
	if err := a.copyN(ctx, fd, tr, hdr.Size); err != nil {
		return err
	}
	if !a.needChown(dir, uid, gid) {
		uid, gid = -1, -1
	}
	return a.meta(fd, hdr, uid, gid, true)
}

// copyN copies n bytes of the entry's content from tr into fd.
func (a *applier) copyN(ctx context.Context, fd int, tr *tar.Reader, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := a.buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		got, err := io.ReadFull(tr, chunk)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read content: %w", err)
		}
		for w := chunk[:got]; len(w) > 0; {
			m, err := unix.Write(fd, w)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			w = w[m:]
		}
		n -= int64(got)
	}
	return nil
}

func (a *applier) symlink(rel string, hdr *tar.Header, uid, gid int) error {
	if hdr.Linkname == "" {
		return fmt.Errorf("%w: symlink with an empty target", errBadEntry)
	}
	dir, base := splitPath(rel)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	if err := a.create(pfd, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return a.metaAt(pfd, base, hdr, uid, gid, true)
}

func (a *applier) hardlink(rel string, hdr *tar.Header) error {
	target, err := CleanEntryName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == "" || target == rel {
		return fmt.Errorf("%w: hardlink to %q", errBadEntry, hdr.Linkname)
	}
	dir, base := splitPath(rel)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	tdir, tbase := splitPath(target)
	tfd, err := a.links.get(tdir, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("hardlink target %q is not in the layer", hdr.Linkname)
		}
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	// Without AT_SYMLINK_FOLLOW, linkat links a symlink itself, never what
	// it points to.
	err = a.create(pfd, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
	switch err {
	case nil:
		return nil
	case unix.ENOENT:
		return fmt.Errorf("hardlink target %q is not in the layer", hdr.Linkname)
	case unix.EPERM:
		return fmt.Errorf("%w: hardlink target %q is a directory", errBadEntry, hdr.Linkname)
	}
	return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
}

func (a *applier) node(rel string, hdr *tar.Header, uid, gid int) error {
	var mode uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode = unix.S_IFCHR
	case tar.TypeBlock:
		mode = unix.S_IFBLK
	default:
		mode = unix.S_IFIFO
	}
	if mode != unix.S_IFIFO && a.opts.NoDevices {
		return ErrDeviceRefused
	}
	dir, base := splitPath(rel)
	pfd, err := a.parent(dir)
	if err != nil {
		return err
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := a.create(pfd, base, func() error { return unix.Mknodat(pfd, base, mode|perm(hdr)&0o777, dev) }); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return a.metaAt(pfd, base, hdr, uid, gid, false)
}

// whiteout applies ".wh.NAME" in dir.
func (a *applier) whiteout(dir, name string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.parent(dir)
		if err != nil {
			return err
		}
		if err := a.create(pfd, name, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) }); err != nil {
			return fmt.Errorf("make whiteout %q: %w", name, err)
		}
		return nil
	}
	pfd, err := a.dirs.get(dir, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil // nothing there to hide
	}
	if err != nil {
		return fmt.Errorf("open parent %q: %w", dir, err)
	}
	return a.remove(pfd, name)
}

// opaque applies ".wh..wh..opq" in dir: what the layers below hold there
// is hidden.
func (a *applier) opaque(dir string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		fd, err := a.parent(dir)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(fd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %q opaque: %w", dir, err)
		}
		return nil
	}
	fd, err := a.dirs.get(dir, false)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %q: %w", dir, err)
	}
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dup)
	return a.pruneLower(dup, dir)
}

// pruneLower removes from directory fd (at rel) everything this layer did
// not put there.
func (a *applier) pruneLower(fd int, rel string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("list %q: %w", rel, err)
	}
	for _, n := range names {
		p := joinPath(rel, n)
		if _, ok := a.added[p]; !ok {
			if err := a.remove(fd, n); err != nil {
				return err
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not a directory: nothing below it
		}
		err = a.pruneLower(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// setDirTimes sets directories' times once everything inside them is
// written.
func (a *applier) setDirTimes() error {
	for _, d := range a.dirTimes {
		if d.rel == "" {
			if err := futimens(a.root, &d.ts); err != nil {
				return entryError(".", fmt.Errorf("set times: %w", err))
			}
			continue
		}
		dir, base := splitPath(d.rel)
		pfd, err := a.dirs.get(dir, false)
		if err != nil {
			continue // removed later in the layer
		}
		err = unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.ENOENT {
			return entryError(d.rel, fmt.Errorf("set times: %w", err))
		}
	}
	return nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// futimens sets an open file's access and modification times, to the
// nanosecond.
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
