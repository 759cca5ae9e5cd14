package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cacheVersion names the compiler's output format and logic; change it when
// either changes, so that old cache entries are no longer found.
const cacheVersion = "berth seccomp cache 1"

// CompileCached is Compile with a cache of compiled programs in dir, keyed
// by a hash of cfg, the libseccomp version and API level, the architecture
// and the kernel release. Compiling Docker's profile takes milliseconds
// (libseccomp's BPF generation, worse with the x86 and x32 architectures
// Docker adds); reading a cache entry takes microseconds.
//
// The cache is trusted: a file in it becomes a container's filter. dir is
// created with mode 0700 if missing, and is refused unless it is a directory
// owned by this user that no one else may write; put it under berth's run
// directory (a tmpfs, emptied at boot), e.g. /run/berth/seccomp. Entries are
// written atomically (a temporary file renamed into place); failing to write
// one is not an error, as the program is still returned. Anything in dir may
// be deleted at any time.
func CompileCached(cfg *specs.LinuxSeccomp, dir string) (*Program, error) {
	if cfg == nil {
		return Compile(cfg)
	}
	key := cacheKey(cfg)
	if err := checkCacheDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, key+".bpf")
	if b, err := os.ReadFile(path); err == nil {
		var p Program
		if p.UnmarshalBinary(b) == nil {
			return &p, nil
		}
	}
	p, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	_ = writeCache(dir, path, p) // best effort: the next start compiles again
	return p, nil
}

func checkCacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seccomp cache %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("seccomp cache %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("seccomp cache %s: not a directory owned by uid %d and writable only by it; remove it or fix its owner and mode", dir, os.Geteuid())
	}
	return nil
}

func writeCache(dir, path string, p *Program) error {
	b, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// hostKey is what, besides the profile, decides the compiled program.
var hostKey = sync.OnceValue(func() string {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s", cacheVersion, libVersion(), runtime.GOARCH,
		unix.ByteSliceToString(uts.Release[:]))
})

// cacheKey hashes the host key and every field of cfg that Compile reads,
// each length-prefixed. (encoding/json would take half of a cache hit.)
func cacheKey(cfg *specs.LinuxSeccomp) string {
	b := make([]byte, 0, 8192)
	num := func(v uint64) { b = binary.AppendUvarint(b, v) }
	str := func(s string) { num(uint64(len(s))); b = append(b, s...) }
	opt := func(p *uint) {
		if p == nil {
			num(0)
			return
		}
		num(1)
		num(uint64(*p))
	}
	str(hostKey())
	str(string(cfg.DefaultAction))
	opt(cfg.DefaultErrnoRet)
	num(uint64(len(cfg.Architectures)))
	for _, a := range cfg.Architectures {
		str(string(a))
	}
	num(uint64(len(cfg.Flags)))
	for _, f := range cfg.Flags {
		str(string(f))
	}
	str(cfg.ListenerPath)
	str(cfg.ListenerMetadata)
	num(uint64(len(cfg.Syscalls)))
	for _, sc := range cfg.Syscalls {
		num(uint64(len(sc.Names)))
		for _, n := range sc.Names {
			str(n)
		}
		str(string(sc.Action))
		opt(sc.ErrnoRet)
		num(uint64(len(sc.Args)))
		for _, a := range sc.Args {
			num(uint64(a.Index))
			num(a.Value)
			num(a.ValueTwo)
			str(string(a.Op))
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
