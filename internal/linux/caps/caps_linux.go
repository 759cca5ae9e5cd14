package caps

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	lastCapOnce sync.Once
	lastCap     Cap
)

// LastCap returns the highest capability the running kernel knows. It reads
// /proc/sys/kernel/cap_last_cap once; where /proc is not mounted it probes
// the bounding set with PR_CAPBSET_READ instead.
func LastCap() Cap {
	lastCapOnce.Do(func() {
		if c, ok := readLastCap(); ok {
			lastCap = c
			return
		}
		lastCap = probeLastCap()
	})
	return lastCap
}

// readLastCap reads cap_last_cap into a stack buffer (no allocation).
func readLastCap() (Cap, bool) {
	fd, err := unix.Open("/proc/sys/kernel/cap_last_cap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	var buf [16]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil || n == 0 {
		return 0, false
	}
	v, digits := 0, 0
	for _, b := range buf[:n] {
		if b < '0' || b > '9' {
			break
		}
		v = v*10 + int(b-'0')
		digits++
	}
	if digits == 0 || v > 63 {
		return 0, false
	}
	return Cap(v), true
}

// probeLastCap finds the last capability by binary search: PR_CAPBSET_READ
// fails with EINVAL for numbers the kernel does not know.
func probeLastCap() Cap {
	lo, hi := Cap(0), Cap(63) // lo is known valid (CAP_CHOWN), hi+1 invalid
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if _, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(mid), 0, 0, 0); err != nil {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo
}

// Applying a Config, in the order runc uses. Capabilities belong to a thread:
// every step acts on the calling thread only, so run them all on the locked
// OS thread that then calls execve (whose credentials the new program gets).
//
//  1. DropBounding, while still privileged (it needs CAP_SETPCAP).
//  2. KeepCaps(true), so the permitted set survives a change from uid 0.
//  3. The caller changes groups, gid and uid.
//  4. ApplyAfterUserChange: clears keepcaps, sets effective, permitted and
//     inheritable with capset(2), then clears the ambient set and raises
//     each ambient capability.
//
// Apply does all four with the caller's user change in the middle.

// Apply runs the whole sequence; changeUser (nil when the user stays the
// same) switches groups, gid and uid on the calling thread.
func (c *Config) Apply(changeUser func() error) error {
	if err := c.DropBounding(); err != nil {
		return err
	}
	if changeUser != nil {
		if err := KeepCaps(true); err != nil {
			return err
		}
		if err := changeUser(); err != nil {
			return err
		}
	}
	return c.ApplyAfterUserChange()
}

// DropBounding removes from the calling thread's bounding set every
// capability the kernel has that c.Bounding lacks. Capabilities already out
// of the bounding set are left alone, so a runtime without CAP_SETPCAP only
// fails when there is really something to drop.
func (c *Config) DropBounding() error {
	last := LastCap()
	for i := Cap(0); i <= last; i++ {
		if c.Bounding.Has(i) {
			continue
		}
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0)
		if err != nil || in == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil {
			return fmt.Errorf("drop %s from the bounding set (needs CAP_SETPCAP, before the user changes): %w", i, err)
		}
	}
	return nil
}

// KeepCaps sets (on) or clears PR_SET_KEEPCAPS on the calling thread. While
// set, a change from uid 0 to another uid keeps the permitted set (the
// effective set is still cleared); execve clears it.
func KeepCaps(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, v, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps %d: %w", v, err)
	}
	return nil
}

// ApplyAfterUserChange clears keepcaps, sets the effective, permitted and
// inheritable sets with capset(2), then makes the ambient set exactly
// c.Ambient. Call it after the user change (or instead of one).
func (c *Config) ApplyAfterUserChange() error {
	if err := KeepCaps(false); err != nil {
		return err
	}
	known := All(LastCap())
	eff, prm, inh, amb := c.Effective&known, c.Permitted&known, c.Inheritable&known, c.Ambient&known
	if extra := eff &^ prm; extra != 0 {
		return errdefs.InvalidArgument(fmt.Errorf("process.capabilities: effective %s not in permitted", strings.Join(extra.Names(), ",")))
	}
	if extra := amb &^ (prm & inh); extra != 0 {
		return errdefs.InvalidArgument(fmt.Errorf("process.capabilities: ambient %s not in both permitted and inheritable", strings.Join(extra.Names(), ",")))
	}

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		shift := 32 * uint(i)
		data[i] = unix.CapUserData{
			Effective:   uint32(eff >> shift),
			Permitted:   uint32(prm >> shift),
			Inheritable: uint32(inh >> shift),
		}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities (permitted may only shrink, inheritable must stay within bounding and permitted): %w", err)
	}

	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		if amb == 0 && errors.Is(err, unix.EINVAL) {
			return nil // kernel without ambient capabilities (before 4.3): nothing to do
		}
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	for i := Cap(0); amb != 0 && i < 64; i++ {
		if !amb.Has(i) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w", i, err)
		}
		amb = amb.Without(i)
	}
	return nil
}

// Current reads the capability sets of process pid (0: the calling process,
// as its main thread holds them) from /proc/PID/status.
func Current(pid int) (Config, error) {
	p := "/proc/self/status"
	if pid != 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return Config{}, fmt.Errorf("read capabilities: %w", err)
	}
	c, err := parseStatus(b)
	if err != nil {
		return Config{}, fmt.Errorf("read capabilities from %s: %w", p, err)
	}
	return c, nil
}

// parseStatus reads the Cap* lines of a /proc/PID/status file. CapAmb is
// optional (kernels before 4.3 lack it); the others are required.
func parseStatus(b []byte) (Config, error) {
	var c Config
	var seen int
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		if len(line) < 7 || string(line[:3]) != "Cap" || line[6] != ':' {
			continue
		}
		var dst *Set
		switch string(line[3:6]) {
		case "Inh":
			dst = &c.Inheritable
		case "Prm":
			dst = &c.Permitted
		case "Eff":
			dst = &c.Effective
		case "Bnd":
			dst = &c.Bounding
		case "Amb":
			dst = &c.Ambient
		default:
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(line[7:])), 16, 64)
		if err != nil {
			return Config{}, fmt.Errorf("bad %s line: %w", line[:6], err)
		}
		*dst = Set(v)
		if dst != &c.Ambient {
			seen++
		}
	}
	if seen < 4 {
		return Config{}, errors.New("no CapInh, CapPrm, CapEff and CapBnd lines")
	}
	return c, nil
}
