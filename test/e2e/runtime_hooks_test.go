package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// appendHook is a hook that appends its name to log and saves its stdin
// (the container's state) as name.json next to it; sh and dir are paths as
// the hook sees them.
func appendHook(sh, dir, name string) specs.Hook {
	return specs.Hook{Path: sh, Args: []string{"sh", "-c", `echo ` + name + ` >> ` + dir + `/log; cat > ` + dir + `/` + name + `.json`}}
}

// slow makes h take a moment more, so that a hook run out of order after
// it would show.
func slow(h specs.Hook) specs.Hook {
	h.Args[2] = "sleep 0.1; " + h.Args[2]
	return h
}

func TestRuntimeHooksRunInOrder(t *testing.T) {
	r := newRuntimeEnv(t)
	out := t.TempDir()
	id := r.newID()
	b := r.bundle(id, "true")
	// startContainer runs inside the container, after pivot_root: its path
	// and its output directory are the container's.
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	b.Spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{appendHook("/bin/sh", out, "prestart")},
		CreateRuntime:   []specs.Hook{appendHook("/bin/sh", out, "createRuntime")},
		CreateContainer: []specs.Hook{appendHook("/bin/sh", out, "createContainer")},
		StartContainer:  []specs.Hook{slow(appendHook("/bin/sh", "/hooks", "startContainer"))},
		Poststart:       []specs.Hook{appendHook("/bin/sh", out, "poststart")},
		Poststop:        []specs.Hook{appendHook("/bin/sh", out, "poststop")},
	}
	b.Save(t)
	r.must("create", "--bundle", b.Dir, id)
	pid := r.state(id).Pid
	r.must("start", id)
	waitFor(t, func() bool { return r.state(id).Status == "stopped" })
	r.must("delete", id)

	data, err := os.ReadFile(filepath.Join(out, "log"))
	if err != nil {
		t.Fatal(err)
	}
	want := "prestart createRuntime createContainer startContainer poststart poststop"
	if got := strings.Join(strings.Fields(string(data)), " "); got != want {
		t.Fatalf("hooks ran as %q, want %q", got, want)
	}
	for _, name := range strings.Fields(want) {
		var st specs.State
		data, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err == nil {
			err = json.Unmarshal(data, &st)
		}
		if err != nil {
			t.Errorf("%s hook's stdin: %v (%q)", name, err, data)
			continue
		}
		wantPid := pid
		if name == "poststop" {
			wantPid = 0 // the container is gone
		}
		if st.ID != id || st.Pid != wantPid || st.Bundle != b.Dir {
			t.Errorf("%s hook got state %+v, want id %s pid %d bundle %s", name, st, id, wantPid, b.Dir)
		}
	}
}

func TestRuntimeFailingHookLeavesNothing(t *testing.T) {
	r := newRuntimeEnv(t)
	for _, phase := range []string{"prestart", "createRuntime", "createContainer"} {
		t.Run(phase, func(t *testing.T) {
			id := r.newID()
			b := r.bundle(id, "true")
			fail := []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook says no >&2; exit 3"}}}
			b.Spec.Hooks = &specs.Hooks{}
			switch phase {
			case "prestart":
				b.Spec.Hooks.Prestart = fail
			case "createRuntime":
				b.Spec.Hooks.CreateRuntime = fail
			case "createContainer":
				b.Spec.Hooks.CreateContainer = fail
			}
			b.Save(t)
			res := r.berth("create", "--bundle", b.Dir, id)
			if res.code == 0 || !strings.Contains(res.stderr, "hooks."+phase+"[0]") || !strings.Contains(res.stderr, "hook says no") {
				t.Fatalf("create with a failing %s hook: code %d stderr %q", phase, res.code, res.stderr)
			}
			if res := r.berth("state", id); res.code == 0 {
				t.Fatalf("state after a failed create: %s", res.stdout)
			}
		})
	}
}
