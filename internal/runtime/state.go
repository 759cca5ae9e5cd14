// Package runtime is berth's OCI runtime as a library: it turns a bundle
// (rootfs + config.json) into a container and manages its lifecycle. It
// knows nothing of images or networks, and nothing of command lines.
package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/cgroups"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/berth/runtime"

// Runtime manages the containers whose state is under Root.
type Runtime struct {
	Root string
	// SystemdCgroup interprets cgroupsPath as "slice:prefix:name".
	SystemdCgroup bool
	// CgroupRoot is where cgroupfs is mounted; empty means /sys/fs/cgroup.
	CgroupRoot string
}

// Status is a container's lifecycle state as the runtime spec names it,
// plus runc's "paused".
type Status string

const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// Container is what the runtime stores about one container.
type Container struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pidStart"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPath  string            `json:"cgroupPath"`
	Systemd     bool              `json:"systemd,omitempty"`
	Spec        *specs.Spec       `json:"spec"`
	// Seccomp is the compiled filter, kept so exec need not compile again.
	Seccomp []byte `json:"seccomp,omitempty"`

	rt *Runtime
}

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
	// seccompCacheDir holds compiled filters under Root; ids never start
	// with a dot, so it cannot collide with a container.
	seccompCacheDir = ".seccomp"
)

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// ValidateID refuses ids that are not safe as one path element.
func ValidateID(id string) error {
	if id == "" || strings.HasPrefix(id, ".") || len(id) > 1024 {
		return errdefs.InvalidArgument(fmt.Errorf("invalid container id %q", id))
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+-.", c)
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("invalid container id %q: only letters, digits and _+-. are allowed", id))
		}
	}
	return nil
}

// Load reads the state of container id.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("container %q does not exist", id))
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	c := &Container{rt: r}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("state of %s is corrupt: %w", id, err)
	}
	return c, nil
}

// List returns every container under Root, skipping unreadable entries.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

func (c *Container) save() error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.rt.dir(c.ID), stateFile), data, 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, so readers
// see the old or the new content, never a part.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Status derives the state from the kernel: the process, its start time
// (so a reused pid is not mistaken for ours), the exec fifo and the freezer.
func (c *Container) Status() Status {
	if c.Pid <= 0 || !processAlive(c.Pid, c.PidStart) {
		return StatusStopped
	}
	if _, err := os.Lstat(filepath.Join(c.rt.dir(c.ID), fifoName)); err == nil {
		return StatusCreated
	}
	if cg, err := c.cgroup(); err == nil {
		if frozen, err := cg.Frozen(); err == nil && frozen {
			return StatusPaused
		}
	}
	return StatusRunning
}

// OCIState is the state as the runtime spec (and runc's `state`) prints it.
func (c *Container) OCIState() *specs.State {
	st := c.Status()
	pid := c.Pid
	if st == StatusStopped {
		pid = 0
	}
	return &specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(st),
		Pid:         pid,
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
}

func (c *Container) cgroup() (cgroups.Manager, error) {
	return cgroups.New(c.CgroupPath, c.rt.cgroupOptions())
}

func (r *Runtime) cgroupOptions() cgroups.Options {
	return cgroups.Options{Root: r.CgroupRoot, Systemd: r.SystemdCgroup}
}

// processAlive reports whether pid runs and is the process that started at
// start (clock ticks since boot, field 22 of /proc/PID/stat); a zombie is dead.
// ProcessAlive reports whether pid is still the process that started at
// start (field 22 of /proc/PID/stat; 0 accepts any); a zombie is gone.
func ProcessAlive(pid int, start uint64) bool { return processAlive(pid, start) }

// ProcessStartTime is pid's start time as /proc/PID/stat gives it.
func ProcessStartTime(pid int) (uint64, error) {
	start, _, err := procStat(pid)
	return start, err
}

func processAlive(pid int, start uint64) bool {
	st, state, err := procStat(pid)
	if err != nil {
		return false
	}
	if state == 'Z' || state == 'X' {
		return false
	}
	return start == 0 || st == start
}

func procStat(pid int) (start uint64, state byte, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start
	// after the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0][0], err
}
