package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// readUserDBs reads /etc/passwd and /etc/group of the rootfs. A missing
// file reads as empty (numeric ids still work, as with docker).
func readUserDBs(rootfs string) ([]passwdEntry, []groupEntry, error) {
	var passwd []passwdEntry
	var groups []groupEntry
	err := withRootfsFile(rootfs, "/etc/passwd", func(r io.Reader) (err error) {
		passwd, err = parsePasswd(r)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	err = withRootfsFile(rootfs, "/etc/group", func(r io.Reader) (err error) {
		groups, err = parseGroup(r)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return passwd, groups, nil
}

// withRootfsFile opens name inside rootfs, resolving symlinks as if rootfs
// were "/" (the image chose them, and they may point anywhere), and calls fn
// with its contents; fn gets nil when the file does not exist. Only regular
// files are read: a FIFO or device there would block or read the host.
func withRootfsFile(rootfs, name string, fn func(io.Reader) error) error {
	h, err := securejoin.OpenInRoot(rootfs, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fn(nil)
		}
		return fmt.Errorf("open %s in the container's root filesystem: %w", name, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s in the container's root filesystem: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("read %s in the container's root filesystem: not a regular file", name)
	}
	f, err := securejoin.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open %s in the container's root filesystem: %w", name, err)
	}
	defer f.Close()
	return fn(f)
}

// User is a "user[:group]" resolved against a root filesystem's passwd
// and group files, as the container's process gets it.
type User struct {
	UID, GID       uint32
	AdditionalGIDs []uint32
	Home           string
}

// ResolveUser resolves userSpec (docker's -u) inside rootfs: what exec
// needs for a process in a running container, by the rules Generate uses.
func ResolveUser(rootfs, userSpec string) (User, error) {
	passwd, groups, err := readUserDBs(rootfs)
	if err != nil {
		return User{}, err
	}
	u, err := resolveUser(userSpec, passwd, groups)
	if err != nil {
		return User{}, err
	}
	out := User{UID: uint32(u.uid), GID: uint32(u.gid), Home: u.home}
	for _, g := range u.sgids {
		out.AdditionalGIDs = append(out.AdditionalGIDs, uint32(g))
	}
	return out, nil
}
