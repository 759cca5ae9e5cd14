//go:build mips

package cgroups

import "unsafe"

// ptr64 is a __aligned_u64 field of union bpf_attr that holds a Go pointer,
// so the garbage collector sees it (high half first: big-endian).
type ptr64 struct {
	_ uint32
	p unsafe.Pointer
}
