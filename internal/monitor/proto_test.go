package monitor

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// Frames cross a connection whole and in order, whatever their size.
func TestFramesRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	ca, cb := NewConn(a), NewConn(b)
	big := bytes.Repeat([]byte("x"), 100000)
	go func() {
		_ = ca.WriteJSON(FrameRequest, Request{Op: "start", ID: "abc", Stdin: true})
		_ = ca.Write(FrameStdout, []byte("hi"))
		_ = ca.Write(FrameStderr, big)
		_ = ca.Write(FrameStdinEOF, nil)
	}()
	var req Request
	if err := cb.ReadJSON(FrameRequest, &req); err != nil || req.Op != "start" || req.ID != "abc" || !req.Stdin {
		t.Fatalf("request: %+v %v", req, err)
	}
	for _, want := range []struct {
		typ  byte
		data []byte
	}{{FrameStdout, []byte("hi")}, {FrameStderr, big}, {FrameStdinEOF, []byte{}}} {
		typ, data, err := cb.Read()
		if err != nil || typ != want.typ || !bytes.Equal(data, want.data) {
			t.Fatalf("frame %q: got %q (%d bytes), %v", want.typ, typ, len(data), err)
		}
	}
}

// A frame announcing more than maxFrame bytes is refused, not allocated;
// a frame of the wrong type is an error for ReadJSON.
func TestFramesRefused(t *testing.T) {
	a, b := net.Pipe()
	cb := NewConn(b)
	go func() {
		var hdr [5]byte
		hdr[0] = FrameStdout
		binary.BigEndian.PutUint32(hdr[1:], maxFrame+1)
		_, _ = a.Write(hdr[:])
	}()
	if _, _, err := cb.Read(); err == nil {
		t.Fatal("an oversized frame was accepted")
	}
	if err := NewConn(a).Write(FrameStdout, make([]byte, maxFrame+1)); err == nil {
		t.Fatal("an oversized frame was sent")
	}
	c, d := net.Pipe()
	go func() { _ = NewConn(c).Write(FrameStdout, []byte("{}")) }()
	var r Reply
	if err := NewConn(d).ReadJSON(FrameReply, &r); err == nil {
		t.Fatal("ReadJSON took a frame of the wrong type")
	}
}
