package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Events are kept in an append-only log of JSON lines under the root, so
// that every CLI process and the monitor can write them and `berth events`
// can follow them without a daemon. The log is rotated once it passes
// eventsMaxSize: one older generation (events.log.1) is kept.
const (
	eventsFile    = "events.log"
	eventsMaxSize = 4 << 20
	eventsPoll    = 100 * time.Millisecond
)

func (e *Engine) eventsPath() string { return filepath.Join(e.opts.Root, eventsFile) }

// emit records that action happened to container c, with the container's
// labels, name and image as attributes (plus attrs). Best effort: failing
// to record an event never fails what it describes.
func (e *Engine) emit(action string, c *store.Container, attrs map[string]string) {
	if c == nil {
		return
	}
	a := map[string]string{}
	if c.Config != nil {
		for k, v := range EffectiveConfig(c).Labels {
			a[k] = v
		}
	}
	a["name"], a["image"] = c.Name, c.ImageName
	for k, v := range attrs {
		a[k] = v
	}
	now := time.Now()
	msg := events.Message{
		Type:     events.ContainerEventType,
		Action:   events.Action(action),
		Actor:    events.Actor{ID: c.ID, Attributes: a},
		Scope:    "local",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return
	}
	_ = appendEvent(e.eventsPath(), append(data, '\n'))
}

// appendEvent appends one line to the log at path, rotating it first when
// it is full. A lock file serializes writers so that a rotation never
// loses a line.
func appendEvent(path string, line []byte) error {
	unlock, err := flockPath(context.Background(), path+".lock", unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	if fi, err := os.Stat(path); err == nil && fi.Size()+int64(len(line)) > eventsMaxSize {
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// EventFilters are docker events' --filter values by key: values of one
// key are alternatives, different keys must all match.
type EventFilters map[string][]string

// ParseEventFilters reads --filter key=value arguments.
func ParseEventFilters(args []string) (EventFilters, error) {
	f := EventFilters{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, errdefs.InvalidArgument(errors.New("bad format of filter (expected name=value)"))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "container", "event", "image", "label", "type", "scope":
		default:
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s'", k))
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match reports whether m passes the filters.
func (f EventFilters) Match(m events.Message) bool {
	attrs := m.Actor.Attributes
	return f.any("type", func(v string) bool { return string(m.Type) == v }) &&
		f.any("scope", func(v string) bool { return m.Scope == "" || m.Scope == v }) &&
		f.any("event", func(v string) bool {
			// "exec_start: sh -c ..." and "health_status: healthy" match their verb.
			verb, _, _ := strings.Cut(string(m.Action), ":")
			return string(m.Action) == v || verb == v
		}) &&
		f.any("container", func(v string) bool {
			return v != "" && (strings.HasPrefix(m.Actor.ID, v) || attrs["name"] == strings.TrimPrefix(v, "/"))
		}) &&
		f.any("image", func(v string) bool {
			img := attrs["image"]
			return img == v || stripTag(img) == v
		}) &&
		f.any("label", func(v string) bool {
			k, want, hasValue := strings.Cut(v, "=")
			got, ok := attrs[k]
			return ok && (!hasValue || got == want)
		})
}

// any is true when key has no values or one of them passes ok.
func (f EventFilters) any(key string, ok func(string) bool) bool {
	vals := f[key]
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return false
}

// stripTag drops ":tag" (not a registry's ":port") from an image reference.
func stripTag(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// EventsOptions are docker events' flags.
type EventsOptions struct {
	// Since and Until bound the events' times; zero leaves a side open.
	// Past events are read only when one of them is set (as docker): with
	// neither, only new events are shown.
	Since, Until time.Time
	Filters      EventFilters
}

// Events calls fn for each recorded event that passes opts, oldest first,
// then, unless opts.Until has passed, for each new one as it is recorded,
// until ctx ends or opts.Until passes.
func (e *Engine) Events(ctx context.Context, opts EventsOptions, fn func(events.Message) error) error {
	if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
		return errdefs.InvalidArgument(errors.New("`since` time must be before `until` time"))
	}
	r := &eventReader{path: e.eventsPath(), opts: opts, fn: fn}
	past := !opts.Since.IsZero() || !opts.Until.IsZero()
	if err := r.open(past); err != nil {
		return err
	}
	defer r.close()
	for {
		if err := r.drain(); err != nil {
			return err
		}
		if !opts.Until.IsZero() && time.Now().After(opts.Until) {
			return nil
		}
		var wait <-chan time.Time
		if !opts.Until.IsZero() {
			wait = time.After(min(eventsPoll, time.Until(opts.Until)+time.Millisecond))
		} else {
			wait = time.After(eventsPoll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		}
		if err := r.reopenIfRotated(); err != nil {
			return err
		}
	}
}

// eventReader follows the event log across rotations.
type eventReader struct {
	path string
	opts EventsOptions
	fn   func(events.Message) error
	f    *os.File
	ino  uint64
	rest []byte // a line whose end is not written yet
}

// open opens the current log; with past, the rotated generation is read
// first and the current one from its start, else reading starts at its end.
func (r *eventReader) open(past bool) error {
	if past {
		if old, err := os.Open(r.path + ".1"); err == nil {
			err := r.readAll(old)
			old.Close()
			if err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(r.path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	if !past {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return fmt.Errorf("read events: %w", err)
		}
	}
	r.setFile(f)
	return nil
}

func (r *eventReader) setFile(f *os.File) {
	r.f, r.rest, r.ino = f, nil, 0
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			r.ino = st.Ino
		}
	}
}

func (r *eventReader) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// reopenIfRotated switches to a new log once the one being read was
// rotated, after reading what was left in the old one.
func (r *eventReader) reopenIfRotated() error {
	var st unix.Stat_t
	if err := unix.Stat(r.path, &st); err != nil || st.Ino == r.ino {
		return nil
	}
	if err := r.drain(); err != nil {
		return err
	}
	f, err := os.Open(r.path)
	if err != nil {
		return nil // a writer is between the rename and the create
	}
	r.f.Close()
	r.setFile(f)
	return nil
}

// drain reads the complete lines appended since the last call.
func (r *eventReader) drain() error {
	data, err := io.ReadAll(r.f)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	if len(data) == 0 {
		return nil
	}
	data = append(r.rest, data...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		r.rest = data
		return nil
	}
	r.rest = append([]byte(nil), data[end+1:]...)
	return r.lines(data[:end+1])
}

func (r *eventReader) readAll(f *os.File) error {
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return r.lines(data)
}

func (r *eventReader) lines(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m events.Message
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue // a torn line left by a crash
		}
		if !r.wanted(m) {
			continue
		}
		if err := r.fn(m); err != nil {
			return err
		}
	}
	return nil
}

func (r *eventReader) wanted(m events.Message) bool {
	t := time.Unix(0, m.TimeNano)
	if !r.opts.Since.IsZero() && t.Before(r.opts.Since) {
		return false
	}
	if !r.opts.Until.IsZero() && t.After(r.opts.Until) {
		return false
	}
	return r.opts.Filters.Match(m)
}

// emitIf emits when ok: one line where an operation may have failed.
func (e *Engine) emitIf(ok bool, action string, c *store.Container, attrs map[string]string) {
	if ok {
		e.emit(action, c, attrs)
	}
}
