//go:build amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x

package cgroups

import "unsafe"

// ptr64 is a __aligned_u64 field of union bpf_attr that holds a Go pointer,
// so the garbage collector sees it.
type ptr64 struct{ p unsafe.Pointer }
