package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/engine/store"
)

func TestEventFilters(t *testing.T) {
	m := events.Message{Type: events.ContainerEventType, Action: "exec_start: sh -c true", Scope: "local",
		Actor: events.Actor{ID: "abcdef0123", Attributes: map[string]string{"name": "web", "image": "busybox:latest", "tier": "front"}}}
	tests := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"type=container"}, true},
		{[]string{"type=image"}, false},
		{[]string{"event=exec_start"}, true},
		{[]string{"event=die", "event=exec_start"}, true},
		{[]string{"event=die"}, false},
		{[]string{"container=web"}, true},
		{[]string{"container=/web"}, true},
		{[]string{"container=abc"}, true},
		{[]string{"container=bcd"}, false},
		{[]string{"image=busybox"}, true},
		{[]string{"image=busybox:latest"}, true},
		{[]string{"image=alpine"}, false},
		{[]string{"label=tier"}, true},
		{[]string{"label=tier=front"}, true},
		{[]string{"label=tier=back"}, false},
		{[]string{"container=web", "event=die"}, false},
		{[]string{"scope=local"}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.filters, ","), func(t *testing.T) {
			f, err := ParseEventFilters(tt.filters)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(m); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"nonsense", "color=red"} {
		if _, err := ParseEventFilters([]string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}

func TestStripTag(t *testing.T) {
	for in, want := range map[string]string{
		"busybox:latest": "busybox", "busybox": "busybox", "127.0.0.1:5000/bb": "127.0.0.1:5000/bb",
		"127.0.0.1:5000/bb:v1": "127.0.0.1:5000/bb",
	} {
		if got := stripTag(in); got != want {
			t.Errorf("stripTag(%q) = %q, want %q", in, got, want)
		}
	}
}

// testEngine is an Engine with just enough for the event log.
func testEngine(t *testing.T) *Engine {
	t.Helper()
	return &Engine{opts: Options{ImagesOptions: ImagesOptions{Root: t.TempDir()}}}
}

func testContainer(id, name string) *store.Container {
	return &store.Container{ID: id, Name: name, ImageName: "bb", Config: &container.Config{Labels: map[string]string{"l": "v"}}}
}

// Past events between since and until, oldest first, filtered, across a
// rotation of the log.
func TestEventsPastAndRotation(t *testing.T) {
	e := testEngine(t)
	start := time.Now()
	e.emit("create", testContainer("aaa", "one"), nil)
	e.emit("start", testContainer("aaa", "one"), nil)
	// Rotate: the old generation is read first.
	if err := os.Rename(e.eventsPath(), e.eventsPath()+".1"); err != nil {
		t.Fatal(err)
	}
	e.emit("die", testContainer("aaa", "one"), map[string]string{"exitCode": "3"})
	e.emit("create", testContainer("bbb", "two"), nil)
	var got []string
	err := e.Events(context.Background(), EventsOptions{Since: start, Until: time.Now()}, func(m events.Message) error {
		got = append(got, fmt.Sprintf("%s %s %s", m.Action, m.Actor.Attributes["name"], m.Actor.Attributes["exitCode"]))
		if m.Actor.Attributes["l"] != "v" || m.Actor.Attributes["image"] != "bb" {
			t.Errorf("attributes: %v", m.Actor.Attributes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "create one |start one |die one 3|create two "; strings.Join(got, "|") != want {
		t.Fatalf("events: %q, want %q", strings.Join(got, "|"), want)
	}
	f, _ := ParseEventFilters([]string{"container=two"})
	got = nil
	_ = e.Events(context.Background(), EventsOptions{Since: start, Until: time.Now(), Filters: f}, func(m events.Message) error {
		got = append(got, string(m.Action))
		return nil
	})
	if strings.Join(got, ",") != "create" {
		t.Fatalf("filtered: %v", got)
	}
	if err := e.Events(context.Background(), EventsOptions{Since: time.Now(), Until: start}, nil); err == nil {
		t.Fatal("until before since accepted")
	}
}

// Following: only new events, also after the log rotates under the reader.
func TestEventsFollow(t *testing.T) {
	e := testEngine(t)
	e.emit("create", testContainer("old", "old"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- e.Events(ctx, EventsOptions{}, func(m events.Message) error {
			got <- string(m.Action) + " " + m.Actor.ID
			return nil
		})
	}()
	time.Sleep(3 * eventsPoll) // the reader is at the end of the log
	e.emit("start", testContainer("new", "new"), nil)
	if g := <-got; g != "start new" {
		t.Fatalf("first followed event: %q", g)
	}
	// A rotation: what was written just before it is still read.
	e.emit("pause", testContainer("new", "new"), nil)
	if err := os.Rename(e.eventsPath(), e.eventsPath()+".1"); err != nil {
		t.Fatal(err)
	}
	e.emit("unpause", testContainer("new", "new"), nil)
	for _, want := range []string{"pause new", "unpause new"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("followed %q, want %q", g, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %q event", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The log rotates by itself once full.
func TestAppendEventRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	line := []byte(strings.Repeat("x", 1<<20) + "\n")
	for i := 0; i < 5; i++ {
		if err := appendEvent(path, line); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if cur.Size() > eventsMaxSize || old.Size() > eventsMaxSize || cur.Size()+old.Size() != 5*int64(len(line)) {
		t.Fatalf("sizes: current %d, rotated %d", cur.Size(), old.Size())
	}
}
