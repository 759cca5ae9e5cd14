package logs

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// inotify wakes a follower when anything in the log's directory changes:
// writes to the current file and the renames of a rotation alike.
type inotify struct {
	f   *os.File
	buf []byte
}

func newInotify(dir string) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	mask := uint32(unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A non-blocking descriptor lets the runtime poller serve it, so a read
	// deadline both bounds the wait and cancels it.
	return &inotify{f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 4096)}, nil
}

func (w *inotify) close() { w.f.Close() }

func (w *inotify) arm(ctx context.Context, done <-chan struct{}) func() {
	wake := func() { w.f.SetReadDeadline(time.Unix(1, 0)) }
	stopCtx := context.AfterFunc(ctx, wake)
	quit := make(chan struct{})
	if done != nil {
		go func() {
			select {
			case <-done:
				wake()
			case <-quit:
			}
		}()
	}
	return func() {
		stopCtx()
		close(quit)
	}
}

func (w *inotify) wait(ctx context.Context, done <-chan struct{}, d time.Duration) {
	w.f.SetReadDeadline(time.Now().Add(d))
	// Checked after setting the deadline: a wake-up that came just before
	// was overwritten, but then ctx or done already shows it.
	if ctx.Err() != nil || isClosed(done) {
		return
	}
	w.f.Read(w.buf) // the events themselves do not matter, only that one came
}
