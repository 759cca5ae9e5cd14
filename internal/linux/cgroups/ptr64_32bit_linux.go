//go:build 386 || arm || mipsle

package cgroups

import "unsafe"

// ptr64 is a __aligned_u64 field of union bpf_attr that holds a Go pointer,
// so the garbage collector sees it (low half first: little-endian).
type ptr64 struct {
	p unsafe.Pointer
	_ uint32
}
