package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

func newRecord(id, name string) *Container {
	return &Container{ID: id, Name: name, Created: time.Now(), Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: State{Status: StatusCreated}}
}

func TestFindByNameIDAndPrefix(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newRecord(strings.Repeat("a", 60)+"0001", "web")
	b := newRecord(strings.Repeat("c", 64), "db")
	third := newRecord(strings.Repeat("a", 60)+"0003", "cache")
	for _, c := range []*Container{a, b, third} {
		if err := s.Put(c); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"web": a.ID, "/db": b.ID, a.ID: a.ID, "cccc": b.ID} {
		c, err := s.Find(ref)
		if err != nil || c.ID != want {
			t.Errorf("Find(%q) = %v, %v; want %s", ref, c, err, want)
		}
	}
	if _, err := s.Find("aaaa"); !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := s.Find("nosuch"); !errdefs.Is(err, errdefs.KindNotFound) || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Errorf("missing: %v", err)
	}
	// Renamed: the old name no longer finds it, the new one does, even
	// with a stale index entry.
	a.Name = "web2"
	if err := s.Put(a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Find("web"); err == nil {
		t.Errorf("old name still resolves")
	}
	if c, err := s.Find("web2"); err != nil || c.ID != a.ID {
		t.Errorf("new name: %v %v", c, err)
	}
	if err := s.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Find("web2"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("deleted container still found: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Errorf("List after delete: %v %v", list, err)
	}
}

// Concurrent read-modify-writes under the lock lose no update.
func TestUpdateUnderLock(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := newRecord(strings.Repeat("b", 64), "counter")
	if err := s.Put(c); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(context.Background(), c.ID, func(c *Container) error { c.RestartCount++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.Get(c.ID)
	if err != nil || got.RestartCount != 20 {
		t.Fatalf("RestartCount %d, %v; want 20", got.RestartCount, err)
	}
}
