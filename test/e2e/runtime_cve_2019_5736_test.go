package e2e

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// CVE-2019-5736: a container process that gets hold of /proc/PID/exe of the
// runtime's init (while it is still berth) could later reopen it for writing
// and overwrite the host's binary. berth runs init from a detached read-only
// bind mount of itself, so that reopen fails with EROFS.
func TestRuntimeCVE20195736BinaryNotWritable(t *testing.T) {
	r := newRuntimeEnv(t)
	before := fileSum(t, r.bin)
	id := r.newID()
	b := r.bundle(id, "sleep", "1000")
	r.must("create", "--bundle", b.Dir, id)
	pid := r.state(id).Pid

	// Init is berth until start: hold on to its executable.
	exe, err := unix.Open(fmt.Sprintf("/proc/%d/exe", pid), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open init's exe: %v", err)
	}
	defer unix.Close(exe)
	var held, host unix.Stat_t
	if err := unix.Fstat(exe, &held); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(r.bin, &host); err != nil {
		t.Fatal(err)
	}
	if held.Dev != host.Dev || held.Ino != host.Ino {
		t.Fatalf("init does not run the berth binary %s", r.bin)
	}

	r.must("start", id)
	waitFor(t, func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	// berth no longer runs there, so ETXTBSY no longer protects the file.
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", exe), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		t.Fatalf("reopened init's berth binary for writing")
	}
	if !errors.Is(err, unix.EROFS) {
		t.Fatalf("reopen for writing: %v, want EROFS", err)
	}
	// The same file through its ordinary path is writable: the read-only
	// mount is what refused.
	if fd, err := unix.Open(r.bin, unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
		t.Logf("the binary itself is not writable here (%v): the check above proves less", err)
	} else {
		unix.Close(fd)
	}
	if after := fileSum(t, r.bin); !bytes.Equal(before, after) {
		t.Fatalf("host binary %s changed", r.bin)
	}
}

func fileSum(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return sum[:]
}
