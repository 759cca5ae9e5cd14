package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// isolationReport is the part of `inspect --isolation -f json` checked here.
type isolationReport struct {
	ID         string `json:"id"`
	Running    bool   `json:"running"`
	Pid        int    `json:"pid"`
	Note       string `json:"note"`
	Namespaces []struct {
		Type       string `json:"type"`
		Inode      uint64 `json:"inode"`
		Sharing    string `json:"sharing"`
		SharedWith []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"sharedWith"`
	} `json:"namespaces"`
	Cgroup *struct {
		Version string `json:"version"`
		Path    string `json:"path"`
		Memory  *struct {
			Limit *uint64 `json:"limit"`
			Usage uint64  `json:"usage"`
		} `json:"memory"`
		Pids *struct {
			Current uint64 `json:"current"`
		} `json:"pids"`
	} `json:"cgroup"`
	Security struct {
		SeccompProfile string `json:"seccompProfile"`
		SeccompMode    string `json:"seccompMode"`
		SeccompFilters int    `json:"seccompFilters"`
		Caps           *struct {
			Effective []string `json:"effective"`
			Bounding  []string `json:"bounding"`
		} `json:"caps"`
		User *struct {
			UID uint32 `json:"uid"`
		} `json:"user"`
	} `json:"security"`
	Rootfs struct {
		Driver       string `json:"driver"`
		Layers       []any  `json:"layers"`
		WritableSize int64  `json:"writableSize"`
		MaskedPaths  int    `json:"maskedPaths"`
	} `json:"rootfs"`
}

func (e *engineEnv) isolation(ref string) isolationReport {
	e.t.Helper()
	out := e.must("inspect", "--isolation", "-f", "json", ref)
	var r isolationReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("inspect --isolation -f json %s: %v\n%s", ref, err, out)
	}
	return r
}

func (r isolationReport) ns(typ string) (sharing string, with []string, inode uint64) {
	for _, n := range r.Namespaces {
		if n.Type == typ {
			for _, c := range n.SharedWith {
				with = append(with, c.Name)
			}
			return n.Sharing, with, n.Inode
		}
	}
	return "", nil, 0
}

// inspect --isolation: namespaces shared and private, the cgroup's memory
// limit, seccomp and capabilities of a running container; the static part
// of a stopped one.
func TestEngineIsolation(t *testing.T) {
	e := newEngineEnv(t)
	e.must("run", "-d", "--name", "first", "bb", "sleep", "1000")
	e.must("run", "-d", "--name", "second", "--pid", "container:first", "--memory", "64m", "bb", "sleep", "1000")

	r := e.isolation("second")
	if !r.Running || r.Pid <= 0 || r.Note != "" {
		t.Fatalf("running %v pid %d note %q", r.Running, r.Pid, r.Note)
	}
	if sharing, with, _ := r.ns("pid"); sharing != "container" || len(with) != 1 || with[0] != "first" {
		t.Errorf("pid namespace: %s with %v, want shared with first", sharing, with)
	}
	for _, typ := range []string{"net", "mnt", "ipc", "uts"} {
		if sharing, _, inode := r.ns(typ); sharing != "private" || inode == 0 {
			t.Errorf("%s namespace: %q inode %d, want private", typ, sharing, inode)
		}
	}
	if sharing, _, _ := r.ns("user"); sharing != "host" {
		t.Errorf("user namespace: %q, want host", sharing)
	}
	if r.Cgroup == nil || r.Cgroup.Memory == nil || r.Cgroup.Memory.Limit == nil {
		t.Fatalf("no memory limit in cgroup %+v", r.Cgroup)
	}
	if got := *r.Cgroup.Memory.Limit; got != 64<<20 {
		t.Errorf("memory limit %d, want 64MiB", got)
	}
	if r.Cgroup.Memory.Usage == 0 || !strings.Contains(r.Cgroup.Path, r.ID) {
		t.Errorf("cgroup %s: memory usage %d", r.Cgroup.Path, r.Cgroup.Memory.Usage)
	}
	s := r.Security
	if s.SeccompMode != "filter" || s.SeccompProfile != "default" || s.SeccompFilters == 0 {
		t.Errorf("seccomp: mode %q profile %q filters %d", s.SeccompMode, s.SeccompProfile, s.SeccompFilters)
	}
	if s.Caps == nil || len(s.Caps.Effective) != 14 || len(s.Caps.Bounding) != 14 {
		t.Errorf("capabilities: %+v, want docker's 14", s.Caps)
	}
	if s.User == nil || s.User.UID != 0 {
		t.Errorf("user: %+v", s.User)
	}
	if r.Rootfs.Driver == "" || len(r.Rootfs.Layers) != 1 || r.Rootfs.WritableSize < 0 || r.Rootfs.MaskedPaths == 0 {
		t.Errorf("rootfs: %+v", r.Rootfs)
	}

	// The first container's pid namespace is the one the second joined.
	if sharing, with, _ := e.isolation("first").ns("pid"); sharing != "container" || len(with) != 1 || with[0] != "second" {
		t.Errorf("first's pid namespace: %s with %v", sharing, with)
	}

	screen := e.must("container", "inspect", "--isolation", "second")
	for _, want := range []string{"Namespaces", "shared with first (", "64.0MiB limit", "seccomp filter (docker default",
		"CapEff  ", "(14)", "Rootfs", "1 image layer + writable"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if got := e.must("inspect", "--isolation", "-f", "{{json .}}", "second"); !strings.HasPrefix(got, "{\"id\":") {
		t.Errorf("-f '{{json .}}': %s", got)
	}

	e.must("create", "--name", "idle", "bb", "true")
	r = e.isolation("idle")
	if r.Running || len(r.Namespaces) != 0 || r.Cgroup != nil || !strings.Contains(r.Note, "not running") {
		t.Errorf("stopped container: %+v", r)
	}
	if screen := e.must("inspect", "--isolation", "idle"); !strings.Contains(screen, "not running: namespaces and cgroup usage") ||
		!strings.Contains(screen, "Rootfs") {
		t.Errorf("stopped container's screen:\n%s", screen)
	}

	e.fails("No such container: nosuch", "inspect", "--isolation", "nosuch")
	if res := e.berth("inspect", "--isolation", "--type", "image", "bb"); res.code == 0 {
		t.Errorf("--isolation --type image: exit 0")
	}
}
