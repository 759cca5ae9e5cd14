//go:build unix

package content

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fileLock is a flock(2) held on a lock file. The kernel drops it when the
// process dies, so a kill -9 never leaves a stale lock behind.
type fileLock struct {
	f    *os.File
	path string
}

// lockFile takes a flock on path (created if missing): exclusive, or shared
// when shared is set. It waits, polling, until the lock is free or ctx is
// done: a blocking flock could not be cancelled.
//
// Lock files that are unlinked by their holder (see remove) are safe: after
// locking, the file must still be the one at path, or the lock is retried.
func lockFile(ctx context.Context, path string, shared bool) (*fileLock, error) {
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	wait := time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock %s: %w", path, err)
		}
		for {
			err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
			if err == nil || (err != unix.EWOULDBLOCK && err != unix.EINTR) {
				break
			}
			select {
			case <-ctx.Done():
				f.Close()
				return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
			case <-time.After(wait):
			}
			wait = min(wait*2, 50*time.Millisecond)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		same, err := samePath(f, path)
		if err != nil {
			f.Close()
			return nil, err
		}
		if same {
			return &fileLock{f: f, path: path}, nil
		}
		f.Close() // the holder removed it while we waited: lock the new one
	}
}

// tryLockFile is lockFile without waiting: ok is false when another
// process holds the lock.
func tryLockFile(path string) (l *fileLock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK || err == unix.EINTR {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	if same, err := samePath(f, path); err != nil || !same {
		f.Close()
		return nil, false, err
	}
	return &fileLock{f: f, path: path}, true, nil
}

func samePath(f *os.File, path string) (bool, error) {
	var held, named unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &held); err != nil {
		return false, fmt.Errorf("stat lock %s: %w", path, err)
	}
	if err := unix.Stat(path, &named); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("stat lock %s: %w", path, err)
	}
	return held.Dev == named.Dev && held.Ino == named.Ino, nil
}

// unlock releases the lock.
func (l *fileLock) unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// remove unlinks the lock file, then releases it: waiters notice the file
// is gone and start over on a fresh one.
func (l *fileLock) remove() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.unlock())
}
