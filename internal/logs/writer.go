package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// maxLine is the most bytes of output one entry holds; a longer line is
// stored as several entries, as docker does, so a process that never writes
// a newline cannot make the monitor buffer without bound.
const maxLine = 16 << 10

// flushAt bounds the bytes encoded before they are written out.
const flushAt = 64 << 10

// bufPool holds encode buffers between writes, shared by all Writers, so an
// idle Writer holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

var errClosed = errors.New("log writer is closed")

// Writer appends a container's output to a json-file log and rotates it.
// The Stream writers it returns are safe for concurrent use.
type Writer struct {
	path string
	opts Options
	now  func() time.Time // replaced by tests

	mu     sync.Mutex
	f      *os.File // nil once closed
	size   int64
	buf    []byte  // encoded entries not yet written; only set during a call
	bufp   *[]byte // where buf came from in bufPool
	stdout stream
	stderr stream
	others []*stream
}

type stream struct {
	w    *Writer
	name string
	// partial is output after the last newline; nil while there is none so
	// that an idle stream holds no buffer.
	partial []byte
}

// Open opens the log at path for appending, creating it if needed.
func Open(path string, opts Options) (*Writer, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open container log %s: %w", path, err)
	}
	w := &Writer{path: path, opts: opts.withDefaults(), now: time.Now, f: f, size: fi.Size()}
	w.stdout = stream{w: w, name: "stdout"}
	w.stderr = stream{w: w, name: "stderr"}
	return w, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return f, nil
}

// Stream returns the writer for one output stream, "stdout" or "stderr".
// It splits what it is given into lines and appends one entry per line.
func (w *Writer) Stream(name string) io.Writer {
	switch name {
	case "stdout":
		return &w.stdout
	case "stderr":
		return &w.stderr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.others {
		if s.name == name {
			return s
		}
	}
	s := &stream{w: w, name: name}
	w.others = append(w.others, s)
	return s
}

// Write always consumes p, so that a log that cannot be written never stops
// the copy from the container's pipe; the error says what was lost.
func (s *stream) Write(p []byte) (int, error) {
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, errClosed
	}
	w.begin()
	err := s.split(p, w.now())
	if ferr := w.end(); err == nil {
		err = ferr
	}
	if err != nil {
		// p is consumed either way; what could not be stored is lost.
		return len(p), fmt.Errorf("write container log %s: %w", w.path, err)
	}
	return len(p), nil
}

// split turns p, after any pending partial line, into entries.
func (s *stream) split(p []byte, t time.Time) error {
	w := s.w
	for len(p) > 0 {
		if len(s.partial) > 0 {
			n := len(p)
			if i := bytes.IndexByte(p, '\n'); i >= 0 {
				n = i + 1
			}
			n = min(n, maxLine-len(s.partial))
			s.partial = append(s.partial, p[:n]...)
			p = p[n:]
			if s.partial[len(s.partial)-1] != '\n' && len(s.partial) < maxLine {
				continue // p is used up; wait for more
			}
			k := len(s.partial)
			if s.partial[k-1] != '\n' {
				k = runeCut(s.partial)
			}
			if err := w.add(s.name, s.partial[:k], t); err != nil {
				return err
			}
			s.keep(s.partial[k:])
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i >= 0 && i < maxLine {
			if err := w.add(s.name, p[:i+1], t); err != nil {
				return err
			}
			p = p[i+1:]
			continue
		}
		if len(p) >= maxLine {
			k := runeCut(p[:maxLine])
			if err := w.add(s.name, p[:k], t); err != nil {
				return err
			}
			p = p[k:]
			continue
		}
		s.keep(p)
		return nil
	}
	return nil
}

// keep makes rest the pending partial line, dropping the buffer when empty.
func (s *stream) keep(rest []byte) {
	if len(rest) == 0 {
		s.partial = nil
		return
	}
	s.partial = append(s.partial[:0], rest...)
}

// runeCut returns how much of b to store so that a piece of a long line does
// not end inside a UTF-8 sequence (which would turn into U+FFFD twice).
func runeCut(b []byte) int {
	for j := len(b) - 1; j >= 0 && j >= len(b)-utf8.UTFMax; j-- {
		if utf8.RuneStart(b[j]) {
			if j > 0 && !utf8.FullRune(b[j:]) {
				return j
			}
			break
		}
	}
	return len(b)
}

// begin and end bracket a locked call that adds entries: the encode buffer
// is borrowed from the pool only for its duration.
func (w *Writer) begin() {
	w.bufp = bufPool.Get().(*[]byte)
	w.buf = (*w.bufp)[:0]
}

func (w *Writer) end() error {
	err := w.flush()
	if cap(w.buf) <= 1<<20 {
		*w.bufp = w.buf[:0]
		bufPool.Put(w.bufp)
	}
	w.buf, w.bufp = nil, nil
	return err
}

// add encodes one entry, rotating first if it would take the file past
// MaxSize. An entry larger than MaxSize still goes into a file of its own.
func (w *Writer) add(stream string, line []byte, t time.Time) error {
	start := len(w.buf)
	w.buf = appendEntry(w.buf, stream, line, t)
	if w.size+int64(len(w.buf)) > w.opts.MaxSize && w.size+int64(start) > 0 {
		entry := w.buf[start:]
		w.buf = w.buf[:start]
		if err := w.flush(); err != nil {
			return err
		}
		err := w.rotate()
		// On failure the entry still goes into the current file: a log
		// past its size loses less than a log that drops output.
		w.buf = append(w.buf[:0], entry...)
		if err != nil {
			return err
		}
	}
	if len(w.buf) >= flushAt {
		return w.flush()
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	w.buf = w.buf[:0]
	return err
}

func rotatedName(path string, i int) string { return path + "." + strconv.Itoa(i) }

// tmpName is where the next current file is created before it replaces path.
func tmpName(path string) string { return path + ".new" }

// rotate starts a new current file. It holds an exclusive flock on the old
// one throughout, and path always names a complete file (a hard link keeps
// the old one at path until the rename of the new one replaces it), so a
// reader that locks the current file sees the set of files either before or
// after a rotation, never in between.
func (w *Writer) rotate() error {
	if err := unix.Flock(int(w.f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock for rotation: %w", err)
	}
	f, err := w.rotateLocked()
	if err != nil {
		unix.Flock(int(w.f.Fd()), unix.LOCK_UN)
		return err
	}
	w.f.Close() // also drops the lock
	w.f, w.size = f, 0
	return nil
}

func (w *Writer) rotateLocked() (*os.File, error) {
	n := w.opts.MaxFiles
	// The rotated files are path.1 .. path.k, without gaps.
	k := 0
	for k < n-1 {
		if _, err := os.Lstat(rotatedName(w.path, k+1)); err != nil {
			break
		}
		k++
	}
	if k > 0 && k == n-1 {
		if err := os.Remove(rotatedName(w.path, k)); err != nil {
			return nil, fmt.Errorf("rotate: %w", err)
		}
		k--
	}
	for i := k; i >= 1; i-- {
		if err := os.Rename(rotatedName(w.path, i), rotatedName(w.path, i+1)); err != nil {
			return nil, fmt.Errorf("rotate: %w", err)
		}
	}
	tmp := tmpName(w.path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	if n > 1 {
		err = os.Link(w.path, rotatedName(w.path, 1))
		if err != nil {
			// Some filesystems refuse hard links: rename instead, and
			// readers wait out the moment without a current file.
			err = os.Rename(w.path, rotatedName(w.path, 1))
		}
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("rotate: %w", err)
	}
	return f, nil
}

// Close writes out any partial lines and closes the log.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	w.begin()
	t := w.now()
	var err error
	for _, s := range append([]*stream{&w.stdout, &w.stderr}, w.others...) {
		if len(s.partial) > 0 && err == nil {
			err = w.add(s.name, s.partial, t)
		}
		s.partial = nil
	}
	if ferr := w.end(); err == nil {
		err = ferr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return fmt.Errorf("close container log %s: %w", w.path, err)
	}
	return nil
}

// Remove deletes the log at path and its rotated files.
func Remove(path string) error {
	var errs []error
	for _, p := range []string{path, tmpName(path)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for i := 1; ; i++ {
		err := os.Remove(rotatedName(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove container log: %w", err)
	}
	return nil
}
