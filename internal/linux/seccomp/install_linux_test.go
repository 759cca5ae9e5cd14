//go:build linux && cgo

package seccomp

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The install tests re-exec the test binary: the child reads a marshalled
// Program on stdin, sets no_new_privs, installs it on its locked main
// thread, makes the syscalls named in $BERTH_SECCOMP_CALLS and prints
// "name=errno" lines. A filter cannot be removed, so it must not be
// installed in the test process itself.

func TestMain(m *testing.M) {
	if calls, ok := os.LookupEnv("BERTH_SECCOMP_CALLS"); ok {
		os.Exit(child(calls, os.Getenv("BERTH_SECCOMP_THREAD") == "other"))
	}
	os.Exit(m.Run())
}

func child(calls string, otherThread bool) int {
	runtime.LockOSThread() // never unlocked: the filter stays with this thread
	b, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var p Program
	if err := p.UnmarshalBinary(b); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "no_new_privs:", err)
		return 2
	}
	if calls == "allocs" {
		// Install an allow-all filter a few times (filters stack).
		allow := &Program{Filter: []SockFilter{{Code: bpfRetK, K: unix.SECCOMP_RET_ALLOW}}}
		var ierr error
		n := testing.AllocsPerRun(3, func() { ierr = allow.Install() })
		fmt.Printf("allocs=%v\nerr=%v\n", n, ierr)
		return 0
	}
	if err := p.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	do := func() string {
		var out strings.Builder
		for _, c := range strings.Split(calls, ",") {
			fmt.Fprintf(&out, "%s=%d\n", c, int(trySyscall(c)))
		}
		return out.String()
	}
	if otherThread {
		done := make(chan string)
		go func() {
			runtime.LockOSThread()
			done <- do()
		}()
		fmt.Print(<-done)
	} else {
		fmt.Print(do())
	}
	return 0
}

// trySyscall makes one harmless call, raw so that it runs on this thread.
func trySyscall(name string) unix.Errno {
	var errno unix.Errno
	switch name {
	case "getcwd":
		var buf [4096]byte
		_, _, errno = unix.RawSyscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	case "getpid":
		_, _, errno = unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
	case "unshare":
		_, _, errno = unix.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUTS, 0, 0)
	case "mount":
		// Without a filter this fails with ENOENT.
		src, _ := unix.BytePtrFromString("none")
		dst, _ := unix.BytePtrFromString("/nonexistent/berth-seccomp-test")
		fstype, _ := unix.BytePtrFromString("tmpfs")
		_, _, errno = unix.RawSyscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(src)), uintptr(unsafe.Pointer(dst)),
			uintptr(unsafe.Pointer(fstype)), 0, 0, 0)
	case "clone3":
		// Without a filter this fails with EINVAL (size 0).
		_, _, errno = unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	case "listmount":
		// Without a filter this fails with EFAULT (kernel >= 6.8).
		_, _, errno = unix.RawSyscall6(unix.SYS_LISTMOUNT, 0, 0, 0, 0, 0, 0)
	default:
		return unix.ENOTSUP
	}
	return errno
}

func runChild(t *testing.T, p *Program, calls []string, otherThread bool) map[string]unix.Errno {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_SECCOMP_CALLS="+strings.Join(calls, ","))
	if otherThread {
		cmd.Env = append(cmd.Env, "BERTH_SECCOMP_THREAD=other")
	}
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	res := map[string]unix.Errno{}
	for _, line := range strings.Fields(string(out)) {
		k, v, _ := strings.Cut(line, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		res[k] = unix.Errno(n)
	}
	return res
}

func TestInstall(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("syscall expectations are written for amd64 and arm64")
	}
	errnoGetcwd := func(ret *uint, flags ...specs.LinuxSeccompFlag) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: flags, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: ret},
		}}
	}
	docker, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	dockerWant := map[string]unix.Errno{
		"getpid": 0, "getcwd": 0, "unshare": unix.EPERM, "mount": unix.EPERM, "clone3": unix.ENOSYS,
	}
	if _, err := libseccomp.GetSyscallFromName("listmount"); err != nil {
		// Too new for libseccomp < 2.6: the profile allows it, but it cannot
		// be named in the filter, so the ENOSYS stub answers, not EPERM.
		dockerWant["listmount"] = unix.ENOSYS
	}
	tests := []struct {
		name        string
		cfg         *specs.LinuxSeccomp
		otherThread bool
		want        map[string]unix.Errno
	}{
		{"errno", errnoGetcwd(nil), false, map[string]unix.Errno{"getcwd": unix.EPERM, "getpid": 0}},
		{"errnoRet", errnoGetcwd(uintp(uint(unix.ENOTSUP))), false, map[string]unix.Errno{"getcwd": unix.ENOTSUP, "getpid": 0}},
		{"other thread untouched", errnoGetcwd(nil), true, map[string]unix.Errno{"getcwd": 0}},
		{"tsync", errnoGetcwd(nil, "SECCOMP_FILTER_FLAG_TSYNC"), true, map[string]unix.Errno{"getcwd": unix.EPERM}},
		{"log flag", errnoGetcwd(nil, specs.LinuxSeccompFlagLog), false, map[string]unix.Errno{"getcwd": unix.EPERM}},
		{"docker default", docker, false, dockerWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var calls []string
			for c := range tt.want {
				calls = append(calls, c)
			}
			got := runChild(t, p, calls, tt.otherThread)
			for c, want := range tt.want {
				if got[c] != want {
					t.Errorf("%s: errno %d (%v), want %d (%v)", c, int(got[c]), got[c], int(want), want)
				}
			}
		})
	}
}

func TestInstallAllocs(t *testing.T) {
	p := &Program{Filter: []SockFilter{{Code: bpfRetK, K: unix.SECCOMP_RET_ALLOW}}}
	b, _ := p.MarshalBinary()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_SECCOMP_CALLS=allocs")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if string(out) != "allocs=0\nerr=<nil>\n" {
		t.Errorf("child reported %q, want no allocations and no error", out)
	}
}

func TestInstallErrors(t *testing.T) {
	if err := (&Program{}).Install(); err == nil {
		t.Error("Install of an empty program: no error")
	}
}
