package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ReadOptions selects what Read returns.
type ReadOptions struct {
	// Since and Until bound the entries' times, both inclusive; zero is
	// unbounded.
	Since, Until time.Time
	// Tail is how many of the last entries (within Since and Until) to
	// return; -1 returns all, 0 none (useful with Follow).
	Tail int
	// Follow keeps returning new entries, across rotations, until the
	// context ends, Done is closed, or an entry is past Until.
	Follow bool
	// Done, when closed, ends a Follow once what is in the log is read:
	// close it after the container's output has all been written.
	Done <-chan struct{}
}

// errStop ends a read early without an error (an entry past Until).
var errStop = errors.New("stop")

// pollInterval bounds how long a follower sleeps without a wake-up: the
// whole wait where inotify is unavailable, a safety net where it is.
const pollInterval = time.Second

const readChunk = 32 << 10

// Read calls fn with the entries of the log at path, oldest first, from the
// rotated files and then the current one. A missing log is an empty one;
// lines that are not entries are skipped. fn must not keep Line after it
// returns. With Follow, Read returns ctx's error when ctx ends, and nil when
// Done is closed (after reading everything written until then) or when
// Until has passed. An error from fn ends Read and is returned.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Message) error) error {
	r := &reader{path: path, opts: opts, fn: fn}
	var w waiter = sleeper{}
	if opts.Follow {
		// Watch before reading, so no write after the last read goes unseen.
		if iw, err := newInotify(filepath.Dir(path)); err == nil {
			defer iw.close()
			w = iw
		}
	}
	files, err := openChain(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	idx, off, err := r.start(files)
	if err != nil {
		return fmt.Errorf("read container log: %w", err)
	}
	for i := idx; i < len(files); i++ {
		if i == idx {
			files[i].off = off
		}
		if err := r.drain(ctx, files[i]); err != nil {
			return r.result(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	var cur *logFile
	if len(files) > 0 {
		cur = files[len(files)-1]
		files = files[:len(files)-1]
	}
	err = r.follow(ctx, cur, w)
	return r.result(err)
}

func (r *reader) result(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

type reader struct {
	path    string
	opts    ReadOptions
	fn      func(Message) error
	chunk   []byte // forward reads
	scratch []byte // decoded lines
}

// logFile is one open file of a log and how far it has been read.
type logFile struct {
	f    *os.File
	info fs.FileInfo // identity, to recognise the file after renames
	size int64       // when opened; bounds backward scans
	off  int64       // next byte to read
	rest []byte      // a line not yet complete at off
}

func openLogFile(name string) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{f: f, info: fi, size: fi.Size()}, nil
}

func (lf *logFile) close() {
	if lf != nil {
		lf.f.Close()
	}
}

// lockCurrent opens the current file at path and takes a shared flock on
// it, which the writer's rotation excludes. It returns nil if there is no
// current file.
func lockCurrent(path string) (*logFile, error) {
	for {
		lf, err := openLogFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read container log: %w", err)
		}
		if err := unix.Flock(int(lf.f.Fd()), unix.LOCK_SH); err != nil {
			lf.close()
			return nil, fmt.Errorf("read container log: lock %s: %w", path, err)
		}
		// A rotation may have replaced the file while we waited for the lock.
		if fi, err := os.Stat(path); err == nil && os.SameFile(fi, lf.info) {
			return lf, nil
		}
		lf.close()
	}
}

func unlock(lf *logFile) { unix.Flock(int(lf.f.Fd()), unix.LOCK_UN) }

// openChain opens the log's files, oldest first, the current one last.
func openChain(path string) ([]*logFile, error) {
	cur, err := lockCurrent(path)
	if err != nil {
		return nil, err
	}
	if cur != nil {
		defer unlock(cur)
	}
	var files []*logFile
	for i := 1; ; i++ {
		lf, err := openLogFile(rotatedName(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			for _, f := range files {
				f.close()
			}
			cur.close()
			return nil, fmt.Errorf("read container log: %w", err)
		}
		files = append(files, lf)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	if cur != nil {
		files = append(files, cur)
	}
	return files, nil
}

// start returns where the forward read begins: the file and the offset in it.
func (r *reader) start(files []*logFile) (int, int64, error) {
	if len(files) == 0 {
		return 0, 0, nil
	}
	last := len(files) - 1
	switch {
	case r.opts.Tail >= 0:
		return r.tailStart(files)
	case !r.opts.Since.IsZero():
		// Skip whole files that end before Since.
		for i, lf := range files {
			before := false
			err := scanBackward(lf, func(line []byte, _ int64) bool {
				m, ok := r.decode(line)
				if !ok {
					return true
				}
				before = m.Time.Before(r.opts.Since)
				return false
			})
			if err != nil {
				return 0, 0, err
			}
			if !before {
				return i, 0, nil
			}
		}
		end, err := lastLineEnd(files[last])
		return last, end, err
	}
	return 0, 0, nil
}

// tailStart walks back from the end, across files, to the start of the
// Tail-th last entry within Since and Until, reading only that much.
func (r *reader) tailStart(files []*logFile) (int, int64, error) {
	last := len(files) - 1
	end, err := lastLineEnd(files[last])
	if err != nil || r.opts.Tail == 0 {
		return last, end, err
	}
	idx, off, count := last, end, 0
	for i := last; i >= 0 && count < r.opts.Tail; i-- {
		stop := false
		err := scanBackward(files[i], func(line []byte, o int64) bool {
			m, ok := r.decode(line)
			if ok && !r.opts.Since.IsZero() && m.Time.Before(r.opts.Since) {
				stop = true
				return false
			}
			idx, off = i, o
			if ok && (r.opts.Until.IsZero() || !m.Time.After(r.opts.Until)) {
				count++
			}
			return count < r.opts.Tail
		})
		if err != nil {
			return 0, 0, err
		}
		if stop {
			break
		}
	}
	return idx, off, nil
}

// lastLineEnd is the offset just past the last complete line, so that a
// read starting there does not begin inside an entry being written.
func lastLineEnd(lf *logFile) (int64, error) {
	var end int64
	err := scanBackward(lf, func(line []byte, o int64) bool {
		end = o + int64(len(line)) + 1
		return false
	})
	return end, err
}

// scanBackward calls fn with each complete line of lf (without its newline)
// and its offset, last line first, until fn returns false. It reads the file
// from the end in chunks, so a tail of a large log costs what it returns.
func scanBackward(lf *logFile, fn func(line []byte, off int64) bool) error {
	pos := lf.size
	var carry []byte // the end of a line whose start is before pos
	seenNewline := false
	buf := make([]byte, readChunk)
	for pos > 0 {
		n := int64(len(buf))
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := lf.f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		data := append(buf[:n:n], carry...)
		if !seenNewline {
			// Bytes after the last newline are a write in progress.
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				carry = carry[:0]
				continue
			}
			seenNewline = true
			data = data[:i+1]
		}
		end := len(data) // data[:end] ends with '\n'
		for end > 0 {
			i := bytes.LastIndexByte(data[:end-1], '\n')
			if i < 0 {
				break
			}
			if !fn(data[i+1:end-1], pos+int64(i)+1) {
				return nil
			}
			end = i + 1
		}
		carry = append(carry[:0], data[:end]...)
	}
	if len(carry) > 0 {
		fn(carry[:len(carry)-1], 0)
	}
	return nil
}

// drain reads lf from its offset to its end and hands on each complete
// entry; an incomplete last line is kept for the next drain.
func (r *reader) drain(ctx context.Context, lf *logFile) error {
	if r.chunk == nil {
		r.chunk = make([]byte, readChunk)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := lf.f.ReadAt(r.chunk, lf.off)
		if n > 0 {
			lf.off += int64(n)
			data := r.chunk[:n]
			if len(lf.rest) > 0 {
				lf.rest = append(lf.rest, data...)
				data = lf.rest
			}
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if err := r.handle(data[:i]); err != nil {
					return err
				}
				data = data[i+1:]
			}
			lf.rest = append(lf.rest[:0], data...)
		}
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read container log: %w", err)
		}
	}
}

func (r *reader) decode(line []byte) (Message, bool) {
	m, buf, ok := decodeEntry(line, r.scratch)
	r.scratch = buf
	return m, ok
}

func (r *reader) handle(line []byte) error {
	m, ok := r.decode(line)
	if !ok {
		return nil
	}
	if !r.opts.Since.IsZero() && m.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && m.Time.After(r.opts.Until) {
		return errStop
	}
	return r.fn(m)
}

// follow reads cur and the files that replace it as the log rotates.
func (r *reader) follow(ctx context.Context, cur *logFile, w waiter) (err error) {
	defer func() { cur.close() }()
	stopWake := w.arm(ctx, r.opts.Done)
	defer stopWake()
	for {
		// Noted before reading: once Done is closed, what the writer wrote
		// is all in the files, and one more pass reads it.
		finishing := isClosed(r.opts.Done)
		if cur != nil {
			if err := r.drain(ctx, cur); err != nil {
				return err
			}
		}
		current, err := r.isCurrent(cur)
		if err != nil {
			return err
		}
		if !current {
			if cur != nil {
				// Rotated away: nothing more is written to it after what
				// this last pass reads.
				if err := r.drain(ctx, cur); err != nil {
					return err
				}
			}
			next, err := successor(r.path, cur)
			if err != nil {
				return err
			}
			if next != nil {
				cur.close()
				cur = next
				continue
			}
		}
		if finishing {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		d := pollInterval
		if !r.opts.Until.IsZero() {
			left := time.Until(r.opts.Until)
			if left <= 0 {
				return nil
			}
			d = min(d, left)
		}
		w.wait(ctx, r.opts.Done, d)
	}
}

// isCurrent reports whether path still names cur.
func (r *reader) isCurrent(cur *logFile) (bool, error) {
	if cur == nil {
		return false, nil
	}
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read container log: %w", err)
	}
	return os.SameFile(fi, cur.info), nil
}

// successor opens the file written after prev (the oldest file if prev is
// nil or gone), or returns nil if there is none yet.
func successor(path string, prev *logFile) (*logFile, error) {
	cur, err := lockCurrent(path)
	if err != nil || cur == nil {
		return nil, err
	}
	defer unlock(cur)
	oldest := 0
	for i := 1; ; i++ {
		fi, err := os.Stat(rotatedName(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			cur.close()
			return nil, fmt.Errorf("read container log: %w", err)
		}
		oldest = i
		if prev != nil && os.SameFile(fi, prev.info) {
			// prev is path.i; the next newer one is path.(i-1).
			oldest = i - 1
			break
		}
	}
	// If prev is no longer among the files, every file there is newer than
	// it, and the oldest follows it; entries in files rotated away before
	// this reader got to them are lost, as with docker.
	if oldest == 0 {
		return cur, nil
	}
	next, err := openLogFile(rotatedName(path, oldest))
	cur.close()
	if err != nil {
		return nil, fmt.Errorf("read container log: %w", err)
	}
	return next, nil
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waiter sleeps until the log may have changed.
type waiter interface {
	// arm makes wait return early once ctx ends or done closes.
	arm(ctx context.Context, done <-chan struct{}) (stop func())
	wait(ctx context.Context, done <-chan struct{}, d time.Duration)
}

// sleeper is the fallback waiter: it polls.
type sleeper struct{}

func (sleeper) arm(context.Context, <-chan struct{}) func() { return func() {} }

func (sleeper) wait(ctx context.Context, done <-chan struct{}, d time.Duration) {
	t := time.NewTimer(min(d, 250*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-done:
	case <-t.C:
	}
}
