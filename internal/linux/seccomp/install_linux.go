package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SockFilter must have the kernel's struct sock_filter layout.
var _ [8 - unsafe.Sizeof(SockFilter{})]struct{}
var _ [unsafe.Sizeof(SockFilter{}) - 8]struct{}

// Install loads p into the kernel with seccomp(SECCOMP_SET_MODE_FILTER). It
// makes no libseccomp call and allocates nothing unless it fails.
//
// Without SECCOMP_FILTER_FLAG_TSYNC the filter applies to the calling thread
// only (and what it execs or starts): call it on a locked OS thread right
// before execve. The caller must have set PR_SET_NO_NEW_PRIVS or hold
// CAP_SYS_ADMIN, or the kernel refuses with EACCES.
func (p *Program) Install() error {
	if len(p.Filter) == 0 || len(p.Filter) > maxInstructions {
		return fmt.Errorf("install seccomp filter: %d instructions, want 1 to %d", len(p.Filter), maxInstructions)
	}
	prog := unix.SockFprog{
		Len:    uint16(len(p.Filter)),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&p.Filter[0])),
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("install seccomp filter: %w (set no_new_privs first, or hold CAP_SYS_ADMIN)", errno)
	case errno == unix.EINVAL && p.Flags != 0:
		return fmt.Errorf("install seccomp filter with flags %#x: %w (does the kernel support these flags?)", p.Flags, errno)
	case errno != 0:
		return fmt.Errorf("install seccomp filter: %w", errno)
	case r != 0 && p.Flags&FlagTSync != 0:
		return fmt.Errorf("install seccomp filter: thread %d could not be synchronized (TSYNC)", r)
	}
	return nil
}
