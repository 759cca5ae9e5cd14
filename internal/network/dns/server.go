// Package dns is the embedded DNS server of user-defined bridge networks, as
// docker's: containers resolve each other's names, aliases and short IDs, and
// everything else goes to the host's resolvers.
//
// One Server serves every network. It listens on each network's gateway address
// and tells the networks apart by the address a query arrives on. A client sees
// a network's names only when its source address is one of that network's
// records, so a container cannot read another network's names through that
// network's gateway; a container on several networks sees the names of all of
// them. It is meant to live in the long-lived monitor process: an idle network
// costs two goroutines and two sockets, a container a few map entries, and an
// answer from the table allocates nothing.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	// forwardTimeout bounds one exchange with one upstream, as docker's.
	forwardTimeout = 4 * time.Second
	// maxForwards bounds the UDP queries waiting on upstreams at once; more are
	// answered SERVFAIL so a flood cannot grow the monitor without bound.
	maxForwards = 256
	// maxConns bounds the TCP clients at once, and tcpIdle how long one may idle.
	maxConns = 64
	tcpIdle  = 10 * time.Second
	// maxQuery is the largest UDP query read; real queries are far smaller.
	maxQuery = 1232
)

// Server answers DNS queries for the containers of the networks it listens for.
// Its methods are safe for concurrent use.
type Server struct {
	mu     sync.RWMutex
	nets   map[string]*table
	joined map[string][]string // container → its networks, in the order it joined them

	upstreams atomic.Pointer[[]string] // "ip:port"
	// clientUpstreams are a container's own --dns servers, by its address:
	// its forwarded queries go there instead.
	clientUpstreams sync.Map // netip.Addr → []string
	timeout         time.Duration
	turn            atomic.Uint32 // rotates the order of multi-address answers
	forwards        chan struct{} // a slot per UDP query waiting on upstreams

	lmu       sync.Mutex
	closed    bool
	listeners []*listener
	conns     map[net.Conn]*listener // TCP clients, closed with their listener

	// life ends at Close, and with it every upstream exchange in flight. It is
	// the server's own lifetime, not a caller's request, hence kept here.
	life context.Context
	end  context.CancelFunc
	wg   sync.WaitGroup
}

type listener struct {
	network string
	udp     *net.UDPConn
	tcp     *net.TCPListener
}

// NewServer returns a server that forwards the names it does not know to
// upstreams, the host's name servers as "ip" or "ip:port" (port 53 when left
// out). Loopback upstreams work: the server runs in the host's network
// namespace. It listens nowhere until Listen.
func NewServer(upstreams []string) *Server {
	life, end := context.WithCancel(context.Background())
	s := &Server{
		nets:     make(map[string]*table),
		joined:   make(map[string][]string),
		timeout:  forwardTimeout,
		forwards: make(chan struct{}, maxForwards),
		conns:    make(map[net.Conn]*listener),
		life:     life,
		end:      end,
	}
	s.SetUpstreams(upstreams)
	return s
}

// SetClientUpstreams makes queries from ip (a container given --dns) go to
// upstreams instead of the host's; none clears it.
func (s *Server) SetClientUpstreams(ip netip.Addr, upstreams []string) {
	if len(upstreams) == 0 {
		s.clientUpstreams.Delete(ip)
		return
	}
	ups := make([]string, 0, len(upstreams))
	for _, u := range upstreams {
		if a, err := netip.ParseAddr(u); err == nil {
			u = netip.AddrPortFrom(a, 53).String()
		}
		ups = append(ups, u)
	}
	s.clientUpstreams.Store(ip, ups)
}

// SetUpstreams replaces the upstream name servers, for when the host's
// resolv.conf changes. Entries that are not IP addresses are skipped.
func (s *Server) SetUpstreams(upstreams []string) {
	ups := make([]string, 0, len(upstreams))
	for _, u := range upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			a, err := netip.ParseAddr(u)
			if err != nil {
				continue
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		ups = append(ups, ap.String())
	}
	s.upstreams.Store(&ups)
}

// Listen serves network's queries on addr, "ip:port" or "ip" for port 53, over
// UDP and TCP on the same port. It may be called for several networks, and
// for several addresses of one network.
func (s *Server) Listen(network, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		a, err2 := netip.ParseAddr(addr)
		if err2 != nil {
			return fmt.Errorf("listen for dns of network %s: %q is not an IP address with an optional port", network, addr)
		}
		ap = netip.AddrPortFrom(a, 53)
	}
	l := &listener{network: network}
	// With port 0 the kernel picks the UDP port; TCP then needs that same port,
	// which may be taken, so try a few.
	for try := 0; ; try++ {
		l.udp, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("listen for dns of network %s on %s/udp: %w", network, ap, err)
		}
		port := l.udp.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		l.tcp, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), port)))
		if err == nil {
			break
		}
		l.udp.Close()
		if ap.Port() != 0 || try == 10 {
			return fmt.Errorf("listen for dns of network %s on %s/tcp: %w", network, ap, err)
		}
	}

	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed {
		l.close()
		return fmt.Errorf("listen for dns of network %s on %s: the server is closed", network, ap)
	}
	s.listeners = append(s.listeners, l)
	s.wg.Add(2)
	go s.serveUDP(l)
	go s.serveTCP(l)
	return nil
}

func (l *listener) close() {
	l.udp.Close()
	l.tcp.Close()
}

// addr is where l listens, "ip:port".
func (l *listener) addr() netip.AddrPort {
	return l.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// RemoveNetwork stops listening for network and forgets its names.
func (s *Server) RemoveNetwork(network string) {
	s.lmu.Lock()
	keep := s.listeners[:0]
	for _, l := range s.listeners {
		if l.network != network {
			keep = append(keep, l)
			continue
		}
		l.close()
		for c, cl := range s.conns {
			if cl == l {
				c.Close()
			}
		}
	}
	clear(s.listeners[len(keep):])
	s.listeners = keep
	s.lmu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.nets[network]; t != nil {
		for _, e := range t.eps {
			s.unjoin(e.container, network)
		}
		delete(s.nets, network)
	}
}

// Close stops all listeners, ends the exchanges in flight and waits for them.
func (s *Server) Close() {
	s.lmu.Lock()
	if !s.closed {
		s.closed = true
		for _, l := range s.listeners {
			l.close()
		}
		s.listeners = nil
		for c := range s.conns {
			c.Close()
		}
	}
	s.lmu.Unlock()
	s.end()
	s.wg.Wait()
}

func (s *Server) serveUDP(l *listener) {
	defer s.wg.Done()
	buf := make([]byte, maxQuery+1)
	out := make([]byte, 0, maxUDPReply)
	for {
		n, src, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n > maxQuery {
			continue // cut short by the buffer: not worth passing on
		}
		var qu query
		reply, forward := s.answer(l.network, src.Addr().Unmap(), buf[:n], out[:0], false, &qu)
		if !forward {
			if reply != nil {
				l.udp.WriteToUDPAddrPort(reply, src)
			}
			continue
		}
		select {
		case s.forwards <- struct{}{}:
		default:
			if reply = qu.fail(out[:0], dnsmessage.RCodeServerFailure); reply != nil {
				l.udp.WriteToUDPAddrPort(reply, src)
			}
			continue
		}
		msg, fq := append([]byte(nil), buf[:n]...), qu
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if reply := s.forward(msg, &fq, false, src.Addr().Unmap()); reply != nil {
				l.udp.WriteToUDPAddrPort(reply, src)
			}
			<-s.forwards
		}()
	}
}

func (s *Server) serveTCP(l *listener) {
	defer s.wg.Done()
	for {
		c, err := l.tcp.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, most likely: let some close.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.track(c, l) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serveConn(l, c)
	}
}

// track registers a TCP client so that Close and RemoveNetwork end it; it
// refuses one past maxConns.
func (s *Server) track(c net.Conn, l *listener) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.closed || len(s.conns) >= maxConns {
		return false
	}
	s.conns[c] = l
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.lmu.Lock()
	delete(s.conns, c)
	s.lmu.Unlock()
	c.Close()
}

// serveConn answers the queries of one TCP client in turn, each framed by its
// length (RFC 1035 4.2.2).
func (s *Server) serveConn(l *listener, c *net.TCPConn) {
	defer s.wg.Done()
	defer s.untrack(c)
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	var size [2]byte
	var buf, out []byte
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(size[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		msg := buf[:n]
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		var qu query
		reply, forward := s.answer(l.network, src, msg, out[:0], true, &qu)
		if forward {
			reply = s.forward(msg, &qu, true, src)
		} else if cap(reply) > cap(out) {
			out = reply[:0]
		}
		if reply == nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if writeTCP(c, reply) != nil {
			return
		}
	}
}

func writeTCP(c net.Conn, msg []byte) error {
	size := binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(len(msg)))
	bufs := net.Buffers{size, msg}
	_, err := bufs.WriteTo(c)
	return err
}

// answer replies to msg, a query from src to network's listener, from the
// names it knows. It returns forward when the query belongs to the upstreams,
// and a nil reply without forward for a message to drop. The reply is built
// in out; qu receives the parsed query.
func (s *Server) answer(network string, src netip.Addr, msg, out []byte, tcp bool, qu *query) (reply []byte, forward bool) {
	rcode, ok := parse(msg, qu)
	if !ok {
		return nil, false
	}
	if rcode != dnsmessage.RCodeSuccess {
		return qu.fail(out, rcode), false
	}
	if qu.q.Class != dnsmessage.ClassINET {
		return nil, true
	}
	limit := 65535
	if !tcp {
		limit = qu.udpLimit(maxUDPReply)
	}
	var kb [255]byte
	key := lowerKey(&qu.q.Name, &kb)
	var tb [4]*table

	s.mu.RLock()
	defer s.mu.RUnlock()
	tables := s.scope(network, src, tb[:0])
	if qu.q.Type == dnsmessage.TypePTR {
		if ip, ok := parseReverse(key); ok {
			for _, t := range tables {
				for _, e := range t.byIP[ip] {
					if e.ptr.Length > 0 {
						return qu.pointer(out, &e.ptr, limit), false
					}
				}
			}
		}
		return nil, true
	}
	for _, t := range tables {
		if eps := t.find(key); len(eps) > 0 {
			return qu.addresses(out, eps, s.turn.Add(1), limit), false
		}
	}
	return nil, true
}
