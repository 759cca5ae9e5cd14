package volume

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(vols []Volume) []string {
	out := []string{}
	for _, v := range vols {
		out = append(out, v.Name)
	}
	return out
}

func TestCreateGet(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("data", map[string]string{}, map[string]string{"a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, "volumes", "data", "_data")
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != want || v.Labels["a"] != "1" {
		t.Errorf("Create = %+v", v)
	}
	if ts, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("CreatedAt = %q (%v)", v.CreatedAt, err)
	}
	if st, err := os.Stat(want); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Errorf("data dir: %v %v", st, err)
	}
	got, err := s.Get("data")
	if err != nil {
		t.Fatal(err)
	}
	// Inspect's JSON: {} stays {}, as docker's CLI sends it.
	raw, _ := json.Marshal(got)
	for _, part := range []string{`"Driver":"local"`, `"Labels":{"a":"1"}`, `"Options":{}`, `"Scope":"local"`, `"Name":"data"`} {
		if !strings.Contains(string(raw), part) {
			t.Errorf("inspect JSON %s lacks %s", raw, part)
		}
	}
	// A second Open (another process) sees it.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get("data"); err != nil {
		t.Error(err)
	}
}

func TestCreateErrors(t *testing.T) {
	s := openStore(t)
	for _, tc := range []struct {
		name string
		opts map[string]string
		want string
		kind errdefs.Kind
	}{
		{"a", nil, "create a: volume name is too short, names should be at least two alphanumeric characters", errdefs.KindInvalidArgument},
		{"x y", nil, `create x y: "x y" includes invalid characters for a local volume name`, errdefs.KindInvalidArgument},
		{"ok", map[string]string{"foo": "bar"}, `create ok: invalid option: "foo"`, errdefs.KindInvalidArgument},
		{"ok", map[string]string{"type": "tmpfs"}, `create ok: missing required option: "device"`, errdefs.KindInvalidArgument},
		{"ok", map[string]string{"device": "tmpfs"}, `create ok: missing required option: "type"`, errdefs.KindInvalidArgument},
		{"ok", map[string]string{"o": "size=1m"}, `create ok: missing required option: "device"`, errdefs.KindInvalidArgument},
		{"ok", map[string]string{"size": "10m"}, "create ok: quota size requested but no quota support", errdefs.KindNotImplemented},
	} {
		_, err := s.Create(tc.name, tc.opts, nil)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || errdefs.KindOf(err) != tc.kind {
			t.Errorf("Create(%q, %v) = %v (kind %v), want %q", tc.name, tc.opts, err, errdefs.KindOf(err), tc.want)
		}
	}
	if vols, _ := s.List(nil); len(vols) != 0 {
		t.Errorf("failed creates left %v", names(vols))
	}
}

func TestCreateExisting(t *testing.T) {
	s := openStore(t)
	opts := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
	v1, err := s.Create("vol", opts, map[string]string{"x": "1"})
	if err != nil {
		t.Fatal(err)
	}
	// Same name again: the existing volume, as docker's (labels are not compared).
	v2, err := s.Create("vol", nil, map[string]string{"y": "2"})
	if err != nil || v2.CreatedAt != v1.CreatedAt || v2.Labels["x"] != "1" || v2.Options["type"] != "tmpfs" {
		t.Fatalf("second Create = %+v, %v", v2, err)
	}
	if _, err := s.Create("vol", opts, nil); err != nil {
		t.Errorf("same options: %v", err)
	}
	_, err = s.Create("vol", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}, nil)
	if !errdefs.Is(err, errdefs.KindConflict) || !strings.HasPrefix(err.Error(), "create vol: volume name must be unique") {
		t.Errorf("other options: %v", err)
	}
}

func TestAnonymous(t *testing.T) {
	s := openStore(t)
	v, err := s.Create("", nil, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Name) != 64 || ValidateName(v.Name) != nil {
		t.Errorf("anonymous name %q", v.Name)
	}
	if _, ok := v.Labels[AnonymousLabel]; !ok || v.Labels["k"] != "v" {
		t.Errorf("labels %v", v.Labels)
	}
}

func TestGetMissing(t *testing.T) {
	s := openStore(t)
	for _, name := range []string{"nope", "../volumes", "a", ".lock", ""} {
		_, err := s.Get(name)
		if !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "get "+name+": no such volume" {
			t.Errorf("Get(%q) = %v", name, err)
		}
	}
}

func TestListFilters(t *testing.T) {
	s := openStore(t)
	mk := func(name string, labels map[string]string) {
		t.Helper()
		if _, err := s.Create(name, nil, labels); err != nil {
			t.Fatal(err)
		}
	}
	mk("web10", map[string]string{"app": "web", "tier": "front"})
	mk("web2", map[string]string{"app": "web"})
	mk("db", map[string]string{"app": "db"})
	mk("cache", nil)
	// A directory that is no volume is skipped.
	if err := os.Mkdir(filepath.Join(s.Dir(), "stray"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.InUse = func(name string) []string {
		if name == "db" || name == "web2" {
			return []string{"c1"}
		}
		return nil
	}
	for _, tc := range []struct {
		f    map[string][]string
		want []string
	}{
		{nil, []string{"cache", "db", "web2", "web10"}},
		{map[string][]string{"name": {"web"}}, []string{"web2", "web10"}},
		{map[string][]string{"name": {"^web1", "cache"}}, []string{"cache", "web10"}},
		{map[string][]string{"label": {"app=web"}}, []string{"web2", "web10"}},
		{map[string][]string{"label": {"app=web", "tier"}}, []string{"web10"}},
		{map[string][]string{"label": {"tier=back"}}, []string{}},
		{map[string][]string{"driver": {"local"}}, []string{"cache", "db", "web2", "web10"}},
		{map[string][]string{"driver": {"nfs"}}, []string{}},
		{map[string][]string{"dangling": {"true"}}, []string{"cache", "web10"}},
		{map[string][]string{"dangling": {"0"}}, []string{"db", "web2"}},
		{map[string][]string{"dangling": {"false"}, "label": {"app=web"}}, []string{"web2"}},
	} {
		vols, err := s.List(tc.f)
		if err != nil {
			t.Errorf("List(%v): %v", tc.f, err)
			continue
		}
		if got := names(vols); !slices.Equal(got, tc.want) {
			t.Errorf("List(%v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	if _, err := s.List(map[string][]string{"until": {"1h"}}); err == nil || err.Error() != "invalid filter 'until'" {
		t.Errorf("bad key: %v", err)
	}
	if _, err := s.List(map[string][]string{"dangling": {"yes"}}); !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("bad dangling: %v", err)
	}
	// Without the hook nothing is in use.
	s.InUse = nil
	if vols, _ := s.List(map[string][]string{"dangling": {"true"}}); len(vols) != 4 {
		t.Errorf("dangling without hook = %v", names(vols))
	}
}

func TestRemove(t *testing.T) {
	s := openStore(t)
	v, err := s.Create("data", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.InUse = func(name string) []string { return []string{"abc123", "def456"} }
	err = s.Remove("data", true)
	if !errdefs.Is(err, errdefs.KindConflict) || err.Error() != "remove data: volume is in use - [abc123, def456]" {
		t.Errorf("in use: %v", err)
	}
	s.InUse = nil
	if err := s.Remove("data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !os.IsNotExist(err) {
		t.Errorf("volume dir still there: %v", err)
	}
	err = s.Remove("data", false)
	if !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "get data: no such volume" {
		t.Errorf("missing: %v", err)
	}
	if err := s.Remove("data", true); err != nil {
		t.Errorf("missing with force: %v", err)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if e.Name() != lockFile {
			t.Errorf("left in store: %s", e.Name())
		}
	}
}

func TestPrune(t *testing.T) {
	s := openStore(t)
	anon1, _ := s.Create("", nil, nil)
	anon2, _ := s.Create("", nil, map[string]string{"keep": "yes"})
	anonUsed, _ := s.Create("", nil, nil)
	if _, err := s.Create("named", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("named-used", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(anon1.Mountpoint, "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	// A hard link counts once.
	if err := os.Link(filepath.Join(anon1.Mountpoint, "f"), filepath.Join(anon1.Mountpoint, "g")); err != nil {
		t.Fatal(err)
	}
	s.InUse = func(name string) []string {
		if name == anonUsed.Name || name == "named-used" {
			return []string{"c1"}
		}
		return nil
	}
	removed, size, err := s.Prune(map[string][]string{"label!": {"keep=yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{anon1.Name}) || size != 1000 {
		t.Errorf("Prune = %v, %d", removed, size)
	}
	removed, _, err = s.Prune(map[string][]string{"label": {"keep"}})
	if err != nil || !slices.Equal(removed, []string{anon2.Name}) {
		t.Errorf("Prune(label=keep) = %v, %v", removed, err)
	}
	removed, _, err = s.Prune(nil)
	if err != nil || len(removed) != 0 {
		t.Errorf("Prune without anonymous = %v, %v", removed, err)
	}
	removed, _, err = s.Prune(map[string][]string{"all": {"true"}})
	if err != nil || !slices.Equal(removed, []string{"named"}) {
		t.Errorf("Prune(all) = %v, %v", removed, err)
	}
	if vols, _ := s.List(nil); !slices.Equal(names(vols), []string{anonUsed.Name, "named-used"}) && !slices.Equal(names(vols), []string{"named-used", anonUsed.Name}) {
		t.Errorf("left = %v", names(vols))
	}
	if _, _, err := s.Prune(map[string][]string{"dangling": {"true"}}); err == nil || err.Error() != "invalid filter 'dangling'" {
		t.Errorf("bad filter: %v", err)
	}
	if _, _, err := s.Prune(map[string][]string{"all": {"maybe"}}); err == nil || err.Error() != "invalid filter 'all=maybe'" {
		t.Errorf("bad all: %v", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	root := t.TempDir()
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers*3)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens its own store, as separate processes would.
			s, err := Open(root)
			if err != nil {
				errs <- err
				return
			}
			if _, err := s.Create("shared", nil, nil); err != nil {
				errs <- err
			}
			if _, err := s.Create(fmt.Sprintf("own%d", i), nil, nil); err != nil {
				errs <- err
			}
			if _, err := s.Create("", nil, nil); err != nil {
				errs <- err
			}
			if _, err := s.List(nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	vols, err := s.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1+2*workers {
		t.Errorf("got %d volumes, want %d", len(vols), 1+2*workers)
	}
}

func TestOpenSweepsDebris(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{tmpPrefix + "123", trashPref + "old-1"} {
		if err := os.MkdirAll(filepath.Join(s.Dir(), d, dataDir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(s.Dir())
	for _, e := range entries {
		if e.Name() != lockFile {
			t.Errorf("left: %s", e.Name())
		}
	}
}

func TestPlainMount(t *testing.T) {
	s := openStore(t)
	v, err := s.Create("plain", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount("plain")
	if err != nil || p != v.Mountpoint {
		t.Fatalf("Mount = %q, %v", p, err)
	}
	if err := s.Unmount("plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("nope"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Mount(nope) = %v", err)
	}
}
