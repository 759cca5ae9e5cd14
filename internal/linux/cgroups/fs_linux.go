package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dirOps is the seam between a manager and cgroupfs directories: the kernel
// fills a new cgroup directory with its interface files and rmdir removes
// them all, while a fake tree in tests does both by hand.
type dirOps struct {
	mkdir func(dir string) error
	rmdir func(dir string) error
}

var kernelDirs = dirOps{
	mkdir: func(dir string) error { return os.Mkdir(dir, 0o755) },
	rmdir: func(dir string) error { return unix.Rmdir(dir) },
}

// mkdirAll makes rel below mount one level at a time and returns the
// directories it made, top first; existing ones are fine.
func (o dirOps) mkdirAll(mount, rel string, each func(dir string, made bool) error) ([]string, error) {
	var made []string
	dir := mount
	for _, comp := range strings.Split(strings.Trim(rel, "/"), "/") {
		dir = filepath.Join(dir, comp)
		err := o.mkdir(dir)
		switch {
		case err == nil:
			made = append(made, dir)
		case !errors.Is(err, fs.ErrExist):
			return made, classify(fmt.Errorf("create cgroup %s: %w", dir, err), err)
		}
		if each != nil {
			if err := each(dir, err == nil); err != nil {
				return made, err
			}
		}
	}
	return made, nil
}

// undo removes directories that mkdirAll made, deepest first.
func (o dirOps) undo(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		_ = o.rmdir(made[i])
	}
}

// removeTree removes dir and its child cgroups, children first. rmdir fails
// with EBUSY while exiting processes still hold the cgroup: retry briefly.
func (o dirOps) removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := o.removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for i := 0; ; i++ {
		err := o.rmdir(dir)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || i == 7 {
			return classify(fmt.Errorf("remove cgroup %s (are its processes gone?): %w", dir, err), err)
		}
		time.Sleep(delay)
		delay *= 2 // ~255 ms in all
	}
}

// writeFile writes val to an existing cgroup file.
func writeFile(dir, name, val string) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// setField writes a resource value and words a failure after the spec field.
func setField(field, dir, name, val string) error {
	return writeErr(field, dir, name, val, writeFile(dir, name, val))
}

// writeErr words a failed write of val to dir/name after the spec field.
func writeErr(field, dir, name, val string, err error) error {
	if err == nil {
		return nil
	}
	cause := errnoOf(err)
	file := filepath.Join(dir, name)
	if errors.Is(cause, fs.ErrNotExist) {
		return fieldErr(field, fmt.Sprintf("%s is not supported here (no %s: controller not enabled, or not in this kernel)", val, file), cause)
	}
	return fieldErr(field, fmt.Sprintf("%s refused by the kernel (writing %s)", val, file), cause)
}

// errnoOf strips *fs.PathError, whose message repeats the path.
func errnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func readString(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(bytes.TrimSpace(b)), err
}

// readUint reads a single-number file; "max" and v1's "unlimited"
// (page-rounded MaxInt64) read as 0.
func readUint(dir, name string) (uint64, error) {
	s, err := readString(dir, name)
	if err != nil {
		return 0, err
	}
	return parseUint(s)
}

func parseUint(s string) (uint64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil // -1: unlimited
		}
		return 0, err
	}
	if v >= math.MaxInt64-pageSize {
		return 0, nil
	}
	return v, nil
}

// readKV reads "key value" lines (memory.stat, cpu.stat, memory.events).
func readKV(dir, name string) (map[string]uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	kv := make(map[string]uint64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv, nil
}

// readProcs lists the pids in cgroup.procs of dir and of every child cgroup.
func readProcs(dir string, out []int) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(dir); serr != nil {
				return out, errdefs.NotFound(fmt.Errorf("list processes of cgroup %s: %w", dir, serr))
			}
		}
		return out, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return out, fmt.Errorf("list processes of cgroup %s: bad pid %q", dir, f)
		}
		out = append(out, pid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if out, err = readProcs(filepath.Join(dir, e.Name()), out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// addProc writes pid to dir/cgroup.procs.
func addProc(dir string, pid int) error {
	if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
		cause := errnoOf(err)
		return classify(fmt.Errorf("add process %d to cgroup %s: %w", pid, dir, cause), cause)
	}
	return nil
}

// exists reports whether p exists; other errors count as absent.
func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// notFound is Load's error for a cgroup that is not there.
func notFound(path string) error {
	return errdefs.NotFound(fmt.Errorf("cgroup %s: %w", path, fs.ErrNotExist))
}

// backoff sleeps a little longer each time, up to 10ms.
func backoff(i int) {
	time.Sleep(min(time.Duration(1<<min(i, 7))*100*time.Microsecond, 10*time.Millisecond))
}

const freezeTimeout = 10 * time.Second
