package storage

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// FSName names the file system path is on, as docker's "Backing
// Filesystem" does.
func FSName(path string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", path, err)
	}
	switch int64(st.Type) {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs", nil
	case unix.XFS_SUPER_MAGIC:
		return "xfs", nil
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs", nil
	case unix.TMPFS_MAGIC:
		return "tmpfs", nil
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs", nil
	case 0x2fc12fc1: // ZFS_SUPER_MAGIC
		return "zfs", nil
	case unix.NFS_SUPER_MAGIC:
		return "nfs", nil
	case unix.F2FS_SUPER_MAGIC:
		return "f2fs", nil
	case unix.SQUASHFS_MAGIC:
		return "squashfs", nil
	case unix.FUSE_SUPER_MAGIC:
		return "fuse", nil
	}
	return fmt.Sprintf("unknown (0x%x)", st.Type), nil
}

// FSNameOr is FSName, saying "unknown" where statfs fails.
func FSNameOr(path string) string {
	name, err := FSName(path)
	if err != nil {
		return "unknown"
	}
	return name
}

// ReadFile reads a small file. It makes three system calls where
// os.ReadFile makes ten (os registers each file it opens with the poller):
// storage reads a few files on the way to every container start.
func ReadFile(path string) ([]byte, error) {
	fd, err := openFile(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		buf = buf[:len(buf)+n]
		if n == 0 || len(buf) < cap(buf) {
			// A short read of a regular file is its end.
			return buf, nil
		}
		buf = append(buf, 0)[:len(buf)]
	}
}

// WriteFile creates or truncates path and writes data, as os.WriteFile
// does, in fewer system calls.
func WriteFile(path string, data []byte, perm uint32) error {
	fd, err := openFile(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, perm)
	if err != nil {
		return err
	}
	err = writeAll(fd, path, data)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &fs.PathError{Op: "close", Path: path, Err: cerr}
	}
	return err
}

func openFile(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func writeAll(fd int, path string, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: path, Err: err}
		}
		data = data[n:]
	}
	return nil
}

// WriteFileAtomic replaces path with data: readers see the old or the new
// content, never part of it, even after kill -9. With sync it also survives
// a power loss once it returns.
func WriteFileAtomic(path string, data []byte, sync bool) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp"+RandomID(4))
	fd, err := openFile(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = writeAll(fd, tmp, data)
	if err == nil && sync {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Rename(tmp, path)
	}
	if err != nil {
		_ = unix.Unlink(tmp)
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	if sync {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	fd, err := openFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// RandomID returns n random bytes in hex.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fileLock is an exclusive flock(2) held until Unlock; the kernel drops it
// when the process dies, kill -9 included.
type fileLock struct{ fd int }

func lockFile(path string, block bool) (*fileLock, error) {
	return lockFileFlags(path, unix.O_CREAT, block)
}

// tryLockExisting locks path, which must exist, without waiting.
func tryLockExisting(path string) (*fileLock, error) {
	return lockFileFlags(path, 0, false)
}

func lockFileFlags(path string, flags int, block bool) (*fileLock, error) {
	fd, err := openFile(path, unix.O_RDWR|flags, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !block {
		how |= unix.LOCK_NB
	}
	if err := flock(fd, how); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &fileLock{fd: fd}, nil
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// Unlock drops the lock.
func (l *fileLock) Unlock() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}
