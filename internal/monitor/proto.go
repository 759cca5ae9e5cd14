// Package monitor is what outlives the CLI for berth's containers: one
// small process per berth root that is the parent of every container it
// starts, reaps them, keeps their exit codes, copies their output into
// their logs and relays it to attached clients. One shared process, not
// one per container, so that an idle container costs a few KiB of it.
//
// This file is the wire protocol between the CLI and the monitor: frames
// of [type byte][length uint32][payload] on a unix stream socket.
package monitor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Frame types.
const (
	FrameRequest  byte = 'q' // client → monitor, first frame: Request JSON
	FrameReply    byte = 'r' // monitor → client: Reply JSON
	FrameStdin    byte = '0' // client → monitor
	FrameStdinEOF byte = 'c' // client → monitor: stdin closed
	FrameStdout   byte = '1' // monitor → client
	FrameStderr   byte = '2' // monitor → client
	FrameResize   byte = 'w' // client → monitor: Resize JSON
	FrameExit     byte = 'x' // monitor → client: Exit JSON, last frame
)

// maxFrame bounds a frame's payload so a confused peer cannot make the
// other side allocate without limit.
const maxFrame = 1 << 20

// Request is what the client asks for.
type Request struct {
	// Op is "start" (start the container, optionally attached),
	// "attach", "wait" or "ping".
	Op string `json:"op"`
	ID string `json:"id,omitempty"`
	// Stream selection for start and attach.
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// Width and Height of the client's terminal, for tty containers.
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// Build identifies the client's berth binary: a monitor of another
	// build with nothing to look after steps down (ErrStale) so that the
	// new binary's monitor takes over.
	Build string `json:"build,omitempty"`
}

// KindStale is Reply.Kind for a monitor that stepped down for a newer
// build; the client starts a new monitor and asks again.
const KindStale = -1

// Reply answers a request: an error, or the container's pid.
type Reply struct {
	Error string `json:"error,omitempty"`
	// Kind is the errdefs kind of Error, so the CLI can pick exit codes.
	Kind int `json:"kind,omitempty"`
	Pid  int `json:"pid,omitempty"`
}

// Exit is the container's end, sent to attached and waiting clients.
type Exit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
	// Removed is set when the container was removed (--rm) before the
	// frame was sent.
	Removed bool `json:"removed,omitempty"`
}

// Resize is a terminal size change.
type Resize struct {
	Width  uint16 `json:"width"`
	Height uint16 `json:"height"`
}

// Conn is one framed connection; writes are safe from several goroutines.
type Conn struct {
	c    net.Conn
	wmu  sync.Mutex
	hdr  [5]byte
	done chan struct{}
	once sync.Once
}

// NewConn frames c.
func NewConn(c net.Conn) *Conn { return &Conn{c: c, done: make(chan struct{})} }

// MarkDone records that the peer is gone (its reader saw the end).
func (c *Conn) MarkDone() { c.once.Do(func() { close(c.done) }) }

// Done is closed by MarkDone.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Write sends one frame.
func (c *Conn) Write(typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("monitor frame of %d bytes is too large", len(payload))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if len(payload) < 4096 {
		// One write: one syscall, and frames never interleave.
		buf := make([]byte, 0, 5+len(payload))
		buf = append(append(buf, hdr[:]...), payload...)
		_, err := c.c.Write(buf)
		return err
	}
	if _, err := c.c.Write(hdr[:]); err != nil {
		return err
	}
	_, err := c.c.Write(payload)
	return err
}

// WriteJSON sends v as a frame of typ.
func (c *Conn) WriteJSON(typ byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Write(typ, data)
}

// Read reads one frame. Only one goroutine may read.
func (c *Conn) Read() (typ byte, payload []byte, err error) {
	if _, err := io.ReadFull(c.c, c.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(c.hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("monitor frame of %d bytes is too large", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.c, payload); err != nil {
		return 0, nil, err
	}
	return c.hdr[0], payload, nil
}

// ReadJSON reads one frame, which must be of typ, into v.
func (c *Conn) ReadJSON(typ byte, v any) error {
	t, payload, err := c.Read()
	if err != nil {
		return err
	}
	if t != typ {
		return fmt.Errorf("monitor protocol: got frame %q, want %q", t, typ)
	}
	return json.Unmarshal(payload, v)
}

// ErrNotRunning is returned by Dial when no monitor listens.
var ErrNotRunning = errors.New("monitor is not running")

// Dial connects to the monitor listening on sock.
func Dial(sock string) (*Conn, error) {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
		}
		return nil, err
	}
	return NewConn(c), nil
}
