package monitor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Handler serves one request on conn; the server closes conn after.
type Handler func(conn *Conn, req Request)

// Server accepts clients on a unix socket.
type Server struct {
	ln      *net.UnixListener
	sock    string
	clients atomic.Int64
	accepts atomic.Int64 // every client ever: activity between two ticks counts
}

// Listen listens on sock, replacing a stale socket file (the caller holds
// the lock that makes it the only monitor of its root).
func Listen(sock string) (*Server, error) {
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("monitor: listen on %s: %w", sock, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return &Server{ln: ln, sock: sock}, nil
}

// Stop closes the listener and removes the socket: Serve returns.
func (s *Server) Stop() {
	_ = os.Remove(s.sock)
	s.ln.Close()
}

// Serve accepts clients until the server has had no client and busy has
// reported false for idle, then removes the socket and returns.
func (s *Server) Serve(handle Handler, idle time.Duration, busy func() bool) error {
	go func() {
		quietSince := time.Now()
		lastActive := time.Now()
		trimmed := false
		seen := s.accepts.Load()
		for range time.Tick(min(idle/4, time.Second)) {
			if n := s.accepts.Load(); s.clients.Load() > 0 || n != seen {
				seen = n
				lastActive, trimmed = time.Now(), false
			} else if !trimmed && time.Since(lastActive) >= 2*time.Second {
				// No client for a while: the containers it holds
				// are idle, and so is the monitor.
				Trim()
				trimmed = true
			}
			if s.clients.Load() > 0 || busy() {
				quietSince = time.Now()
				continue
			}
			if time.Since(quietSince) >= idle {
				// Unlink first: a client that dials from now on
				// starts a new monitor instead of reaching this one.
				_ = os.Remove(s.sock)
				s.ln.Close()
				return
			}
		}
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("monitor: accept: %w", err)
		}
		s.clients.Add(1)
		s.accepts.Add(1)
		go func() {
			defer s.clients.Add(-1)
			conn := NewConn(c)
			defer conn.Close()
			var req Request
			if err := conn.ReadJSON(FrameRequest, &req); err != nil {
				return
			}
			handle(conn, req)
		}()
	}
}
