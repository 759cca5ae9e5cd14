package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// CopyOptions are docker cp's flags.
type CopyOptions struct {
	// FollowLink copies what a source symlink points to, not the link (-L).
	FollowLink bool
	// Archive keeps the files' owners (-a); otherwise files copied into a
	// container belong to its root, and files copied out to the caller.
	Archive bool
}

// Paths in the container are resolved in its root filesystem, mounted for
// the copy if the container is stopped (a running one's is mounted
// already and stays so). Paths under volumes and bind mounts of a running
// container are not seen: the copy reads and writes the container's own
// layer there.

// CopyFromContainer copies src in container ref to the host path dst, or,
// when dst is "-", writes it to w as a tar. It returns the bytes of tar
// copied.
func (e *Engine) CopyFromContainer(ctx context.Context, ref, src, dst string, w io.Writer, opts CopyOptions) (int64, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return 0, err
	}
	var n int64
	err = e.withRootfs(rec, func(root string) error {
		obj, err := openSource(root, src, opts.FollowLink)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", src, rec.Name))
			}
			return fmt.Errorf("copy %s from %s: %w", src, rec.Name, err)
		}
		defer obj.f.Close()
		if dst == "-" {
			top := obj.base
			if obj.contents {
				top = ""
			}
			cw := &countingWriter{w: w}
			err := tarResource(ctx, cw, obj, top)
			n = cw.n
			return err
		}
		n, err = extractOnHost(ctx, obj, dst, opts.Archive)
		return err
	})
	return n, err
}

// CopyToContainer copies the host path src to dst in container ref, or,
// when src is "-", extracts the tar read from r into the directory dst.
// It returns the bytes of tar copied.
func (e *Engine) CopyToContainer(ctx context.Context, ref, src, dst string, r io.Reader, opts CopyOptions) (int64, error) {
	rec, err := e.Get(ref)
	if err != nil {
		return 0, err
	}
	if rec.HostConfig != nil && rec.HostConfig.ReadonlyRootfs {
		return 0, errdefs.Permission(errors.New("container rootfs is marked read-only"))
	}
	var obj *cpObject
	if src != "-" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return 0, err
		}
		// Abs cleans away the "/" or "/." that docker's rules look at.
		if obj, err = openSource("/", abs+keepSuffix(src), opts.FollowLink); err != nil {
			return 0, err
		}
		defer obj.f.Close()
	}
	var n int64
	err = e.withRootfs(rec, func(root string) error {
		notFound := func(p string) error {
			return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, rec.Name))
		}
		d, err := statDest(root, dst)
		if err != nil {
			return fmt.Errorf("copy to %s: %w", rec.Name, err)
		}
		if obj == nil {
			if !d.exists || !d.isDir {
				return errdefs.InvalidArgument(fmt.Errorf("destination \"%s:%s\" must be a directory", rec.Name, dst))
			}
			n, err = extractInto(ctx, root, d.path, r, "", !opts.Archive)
			return err
		}
		dir, name, err := cpTarget(obj.source(), d)
		if err != nil {
			return errdefs.InvalidArgument(err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarResource(ctx, pw, obj, ".")) }()
		n, err = extractInto(ctx, root, dir, pr, name, !opts.Archive)
		pr.CloseWithError(io.ErrClosedPipe)
		if errors.Is(err, fs.ErrNotExist) {
			return notFound(dir)
		}
		return err
	})
	return n, err
}

// keepSuffix is the "/" or "/." that ends p, which Abs would clean away.
func keepSuffix(p string) string {
	switch {
	case strings.HasSuffix(p, "/."):
		return "/."
	case strings.HasSuffix(p, "/") && p != "/":
		return "/"
	}
	return ""
}

// withRootfs runs fn with the container's root filesystem mounted,
// unmounting it after unless the container runs (as export does).
func (e *Engine) withRootfs(rec *store.Container, fn func(root string) error) error {
	st, err := e.images.Layers()
	if err != nil {
		return err
	}
	root, err := st.Mount(rec.ID)
	if err != nil {
		return fmt.Errorf("mount rootfs of %s: %w", rec.Name, err)
	}
	defer func() {
		if cur, err := e.containers.Get(rec.ID); err == nil && !cur.Running() {
			_ = st.Unmount(rec.ID)
		}
	}()
	return fn(root)
}

// cpObject is a copy's source, held open by an O_PATH handle so that
// nothing can swap it for a symlink out of the root meanwhile.
type cpObject struct {
	f        *os.File
	st       unix.Stat_t
	base     string // its name, for the copy's top entry
	contents bool   // "DIR/.": the directory's contents, not itself
}

func (o *cpObject) isDir() bool { return o.st.Mode&unix.S_IFMT == unix.S_IFDIR }

func (o *cpObject) source() cpSource {
	return cpSource{IsDir: o.isDir(), Contents: o.contents, Base: o.base}
}

// openSource opens p inside root: symlinks resolve as if root were "/"
// and never lead out. The last element is not followed (a link is copied
// as a link) unless follow is set or p ends in "/" or "/.".
func openSource(root, p string, follow bool) (*cpObject, error) {
	contents := strings.HasSuffix(p, "/.")
	follow = follow || strings.HasSuffix(p, "/") || contents
	clean := path.Clean("/" + p)
	obj := &cpObject{base: path.Base(clean), contents: contents}
	if clean == "/" {
		obj.base, obj.contents = "", true
	}
	var err error
	if follow || clean == "/" {
		obj.f, err = securejoin.OpenInRoot(root, clean)
	} else {
		var parent *os.File
		if parent, err = securejoin.OpenInRoot(root, path.Dir(clean)); err == nil {
			var fd int
			fd, err = unix.Openat(int(parent.Fd()), obj.base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			parent.Close()
			if err == nil {
				obj.f = os.NewFile(uintptr(fd), clean)
			} else {
				err = &os.PathError{Op: "open", Path: clean, Err: err}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := unix.Fstat(int(obj.f.Fd()), &obj.st); err != nil {
		obj.f.Close()
		return nil, &os.PathError{Op: "stat", Path: clean, Err: err}
	}
	if contents && !obj.isDir() {
		obj.f.Close()
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: not a directory", p))
	}
	return obj, nil
}

// cpSource and cpDest are what docker cp's rules look at.
type cpSource struct {
	IsDir    bool
	Contents bool   // a directory's contents ("DIR/.")
	Base     string // the source's name
}

type cpDest struct {
	path   string // clean, absolute in its root
	given  string // as the user wrote it
	exists bool
	isDir  bool
}

// cpTarget applies docker cp's rules: it returns the directory the copy
// lands in and the name the source gets there ("" when a directory's
// contents land in it directly).
func cpTarget(src cpSource, dst cpDest) (dir, name string, err error) {
	assertsDir := strings.HasSuffix(dst.given, "/") || strings.HasSuffix(dst.given, "/.")
	switch {
	case dst.exists && dst.isDir:
		if src.Contents {
			return dst.path, "", nil
		}
		return dst.path, src.Base, nil
	case dst.exists:
		if src.IsDir {
			return "", "", fmt.Errorf("cannot copy a directory to a file: %s", dst.given)
		}
		if assertsDir {
			return "", "", fmt.Errorf("%s: not a directory", dst.given)
		}
		return filepath.Dir(dst.path), filepath.Base(dst.path), nil
	default:
		if !src.IsDir && assertsDir {
			return "", "", fmt.Errorf("destination directory %s does not exist", dst.given)
		}
		// A directory (or its contents) becomes the new directory dst.
		return filepath.Dir(dst.path), filepath.Base(dst.path), nil
	}
}

// statDest looks at a copy's destination inside root, following links
// (in root) as docker does.
func statDest(root, p string) (cpDest, error) {
	d := cpDest{path: path.Clean("/" + p), given: p}
	f, err := securejoin.OpenInRoot(root, d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return d, err
	}
	d.exists, d.isDir = true, st.Mode&unix.S_IFMT == unix.S_IFDIR
	return d, nil
}

// extractInto extracts the tar r into directory dir inside root, its
// top entry renamed to name ("" keeps the names), owned by root when
// rootOwned. It returns the bytes read.
func extractInto(ctx context.Context, root, dir string, r io.Reader, name string, rootOwned bool) (int64, error) {
	h, err := securejoin.OpenInRoot(root, dir)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s: not a directory", dir))
	}
	return applyRebased(ctx, fmt.Sprintf("/proc/self/fd/%d", h.Fd()), r, name, rootOwned, false)
}

// extractOnHost copies obj to the host path dst by docker cp's rules.
func extractOnHost(ctx context.Context, obj *cpObject, dst string, archiveMode bool) (int64, error) {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return 0, err
	}
	d := cpDest{path: abs, given: dst}
	if fi, err := os.Stat(abs); err == nil {
		d.exists, d.isDir = true, fi.IsDir()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	dir, name, err := cpTarget(obj.source(), d)
	if err != nil {
		return 0, errdefs.InvalidArgument(err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return 0, err
	} else if !fi.IsDir() {
		return 0, errdefs.InvalidArgument(fmt.Errorf("%s: not a directory", dir))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarResource(ctx, pw, obj, ".")) }()
	n, err := applyRebased(ctx, dir, pr, name, false, !archiveMode)
	pr.CloseWithError(io.ErrClosedPipe)
	return n, err
}

// applyRebased extracts the tar r into dir, renaming its top entry to
// name. Names that would be whiteouts are refused: a copy only adds.
func applyRebased(ctx context.Context, dir string, r io.Reader, name string, rootOwned, callerOwned bool) (int64, error) {
	cr := &cpCountingReader{r: r}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rebaseTar(pw, cr, name, rootOwned)) }()
	_, err := archive.Apply(ctx, dir, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete, NoOwnership: callerOwned})
	pr.CloseWithError(io.ErrClosedPipe)
	var ee *archive.EntryError
	if errors.As(err, &ee) {
		return cr.n, errdefs.InvalidArgument(fmt.Errorf("copy %s: %w", strings.TrimPrefix(ee.Name, "./"), ee.Err))
	}
	return cr.n, err
}

// rebaseTar copies the tar r to w, the source's top entry (written as
// ".") renamed to name and the rest moved under it (name "": the top entry
// left out, the rest kept where it is), and, with
// rootOwned, every entry owned by root.
func rebaseTar(w io.Writer, r io.Reader, name string, rootOwned bool) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if name == "" && strings.Trim(path.Clean("/"+hdr.Name), "/") == "" {
			continue // a directory's contents go into one that exists: leave it as it is
		}
		hdr.Name = rebaseName(hdr.Name, name)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = rebaseName(hdr.Linkname, name)
		}
		if strings.HasPrefix(path.Base(hdr.Name), archive.WhiteoutPrefix) {
			return errdefs.InvalidArgument(fmt.Errorf("cannot copy %s: names starting with %s are reserved", hdr.Name, archive.WhiteoutPrefix))
		}
		if rootOwned {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy tar entry %s: %w", hdr.Name, err)
		}
	}
	return tw.Close()
}

// rebaseName puts entry n (relative to the copied source) under name.
func rebaseName(n, name string) string {
	dir := strings.HasSuffix(n, "/")
	n = strings.Trim(path.Clean("/"+n), "/")
	switch {
	case name == "":
	case n == "":
		n = name
	default:
		n = name + "/" + n
	}
	if n == "" {
		n = "."
	}
	if dir && n != "." {
		n += "/"
	}
	return n
}

// tarResource writes obj as a tar whose top entry is named top, a
// directory's entries under it; with top "", a directory's entries alone.
// Sources of a copy are written with top "." (rebaseTar renames it).
func tarResource(ctx context.Context, w io.Writer, obj *cpObject, top string) error {
	name := top
	if name == "" && !obj.isDir() {
		name = "."
	}
	tw := tar.NewWriter(w)
	if name != "" {
		hdr, err := headerOf(obj, name)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := securejoin.Reopen(obj.f, unix.O_RDONLY)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", obj.f.Name(), err)
			}
		}
	}
	if obj.isDir() {
		// The directory's tree, as export writes it, under name.
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(archive.TarDir(ctx, pw, fmt.Sprintf("/proc/self/fd/%d", obj.f.Fd())))
		}()
		err := copyEntries(tw, pr, name)
		pr.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyEntries appends the entries of the tar r to tw under prefix.
func copyEntries(tw *tar.Writer, r io.Reader, prefix string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if prefix != "" {
			hdr.Name = prefix + "/" + hdr.Name
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = prefix + "/" + hdr.Linkname
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar: %w", err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// headerOf describes obj as a tar entry named name.
func headerOf(obj *cpObject, name string) (*tar.Header, error) {
	st := &obj.st
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		if name != "." {
			hdr.Name += "/"
		}
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(obj.f.Fd()), "", buf)
		if err != nil {
			return nil, fmt.Errorf("readlink %s: %w", obj.f.Name(), err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("cannot copy %s: unsupported file type (mode %s)", obj.f.Name(), strconv.FormatUint(uint64(st.Mode), 8)))
	}
	return hdr, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type cpCountingReader struct {
	r io.Reader
	n int64
}

func (c *cpCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
