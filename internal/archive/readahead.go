package archive

import (
	"io"
)

// readahead reads src on its own goroutine into a few large buffers, so
// that decompressing the next chunk overlaps with writing files out of the
// last one. The goroutine owns src and closes it when it ends: at src's
// end or error, or, after stop, once its read in flight returns.
type readahead struct {
	full chan []byte
	free chan []byte
	done chan struct{}
	err  error // set before full is closed
	buf  []byte
	cur  []byte
}

func newReadahead(src io.ReadCloser, size, n int) *readahead {
	ra := &readahead{
		full: make(chan []byte, n),
		free: make(chan []byte, n),
		done: make(chan struct{}),
	}
	for range n {
		ra.free <- make([]byte, size)
	}
	go ra.run(src)
	return ra
}

func (ra *readahead) run(src io.ReadCloser) {
	defer close(ra.full)
	defer src.Close()
	for {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.done:
			return
		}
		n, err := io.ReadFull(src, b[:cap(b)])
		if n > 0 {
			select {
			case ra.full <- b[:n]:
			case <-ra.done:
				return
			}
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			ra.err = err
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		b, ok := <-ra.full
		if !ok {
			return 0, ra.err
		}
		ra.buf, ra.cur = b, b
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// stop tells the goroutine to end; it does not wait for a read in flight.
func (ra *readahead) stop() { close(ra.done) }
