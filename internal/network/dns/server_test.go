package dns

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Every address here is on 127.0.0.0/8; the addresses in the records
// (172.18.0.0/16, fd00::/64, 10.0.0.0/8, 192.0.2.0/24) are only data in answers.

// upstream is a fake name server on 127.0.0.1 (UDP and TCP on one port).
type upstream struct {
	addr     string
	udp, tcp atomic.Int32 // queries seen
	silent   bool         // read queries and never answer
}

func startUpstream(t *testing.T, silent bool) *upstream {
	t.Helper()
	u := &upstream{silent: silent}
	pc, ln := listenPair(t, "127.0.0.1")
	u.addr = pc.LocalAddr().String()
	t.Cleanup(func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			u.udp.Add(1)
			if !silent {
				pc.WriteTo(u.respond(buf[:n], false), from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				msg := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, msg); err != nil {
					return
				}
				u.tcp.Add(1)
				if silent {
					c.SetDeadline(time.Now().Add(5 * time.Second))
					io.Copy(io.Discard, c)
					return
				}
				writeTCP(c, u.respond(msg, true))
			}()
		}
	}()
	return u
}

// listenPair binds UDP and TCP on the same free port of ip.
func listenPair(t *testing.T, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no free port pair")
	return nil, nil
}

// respond answers example.com with 192.0.2.1, big.example with ten addresses
// (truncated over UDP), fail.example with SERVFAIL and the rest with NXDOMAIN.
func (u *upstream) respond(msg []byte, tcp bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil || len(m.Questions) != 1 {
		return nil
	}
	m.Header.Response = true
	m.Header.RecursionAvailable = true
	m.Additionals = nil
	q := m.Questions[0]
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Name.String() {
	case "example.com.":
		if q.Type == dnsmessage.TypeA {
			m.Answers = []dnsmessage.Resource{{Header: rh, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}}}
		}
	case "big.example.":
		if !tcp {
			m.Header.Truncated = true
			break
		}
		for i := range 10 {
			m.Answers = append(m.Answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, byte(i + 1)}}})
		}
	case "fail.example.":
		m.Header.RCode = dnsmessage.RCodeServerFailure
	default:
		m.Header.RCode = dnsmessage.RCodeNameError
	}
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

// deadUpstream is an address on 127.0.0.1 where nothing listens.
func deadUpstream(t *testing.T) string {
	t.Helper()
	pc, ln := listenPair(t, "127.0.0.1")
	addr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	return addr
}

func newServer(t *testing.T, upstreams ...string) *Server {
	t.Helper()
	s := NewServer(upstreams)
	s.timeout = 300 * time.Millisecond
	t.Cleanup(s.Close)
	return s
}

// listen serves network on ip with a random port and returns "ip:port".
func listen(t *testing.T, s *Server, network, ip string) string {
	t.Helper()
	if err := s.Listen(network, ip+":0"); err != nil {
		t.Fatal(err)
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.listeners[len(s.listeners)-1].addr().String()
}

type ask struct {
	proto  string // "udp" (default) or "tcp"
	from   string // client source IP
	server string
	name   string
	qtype  dnsmessage.Type
	edns   bool
}

// do sends a query and returns the reply and its size.
func (a ask) do(t *testing.T) (dnsmessage.Message, int) {
	t.Helper()
	proto := a.proto
	if proto == "" {
		proto = "udp"
	}
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 4242, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(a.name), Type: a.qtype, Class: dnsmessage.ClassINET}},
	}
	if a.edns {
		rh := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(".")}
		rh.SetEDNS0(1232, dnsmessage.RCodeSuccess, false)
		q.Additionals = []dnsmessage.Resource{{Header: rh, Body: &dnsmessage.OPTResource{}}}
	}
	msg, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{}
	if proto == "udp" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(a.from)}
	} else {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(a.from)}
	}
	c, err := d.Dial(proto, a.server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var reply []byte
	if proto == "udp" {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s %v from %s: %v", a.name, a.qtype, a.from, err)
		}
		reply = buf[:n]
	} else {
		if err := writeTCP(c, msg); err != nil {
			t.Fatal(err)
		}
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatalf("%s %v from %s over tcp: %v", a.name, a.qtype, a.from, err)
		}
		reply = make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, reply); err != nil {
			t.Fatal(err)
		}
	}
	var m dnsmessage.Message
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	if m.ID != 4242 || !m.Response || len(m.Questions) != 1 || m.Questions[0].Name.String() != a.name {
		t.Fatalf("reply does not match its query: %+v", m.Header)
	}
	return m, len(reply)
}

// addrs lists the A, AAAA and PTR data of m's answers.
func addrs(m dnsmessage.Message) []string {
	var out []string
	for _, r := range m.Answers {
		switch b := r.Body.(type) {
		case *dnsmessage.AResource:
			out = append(out, netip.AddrFrom4(b.A).String())
		case *dnsmessage.AAAAResource:
			out = append(out, netip.AddrFrom16(b.AAAA).String())
		case *dnsmessage.PTRResource:
			out = append(out, b.PTR.String())
		}
	}
	return out
}

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// twoNetworks serves alpha on 127.0.0.2 and beta on 127.0.0.3. Clients:
// 127.0.0.10 on alpha, 127.0.0.11 on beta, and a container on both, at
// 127.0.0.12 on alpha and 127.0.0.13 on beta.
func twoNetworks(t *testing.T, s *Server) (alpha, beta string) {
	alpha = listen(t, s, "alpha", "127.0.0.2")
	beta = listen(t, s, "beta", "127.0.0.3")
	s.SetEndpoint("alpha", Endpoint{Container: "c1", Names: []string{"web", "app", "0123456789ab"}, IPs: ips("172.18.0.2", "fd00::2")})
	s.SetEndpoint("alpha", Endpoint{Container: "c2", Names: []string{"client"}, IPs: ips("127.0.0.10")})
	s.SetEndpoint("beta", Endpoint{Container: "c3", Names: []string{"db"}, IPs: ips("172.19.0.2")})
	s.SetEndpoint("beta", Endpoint{Container: "c4", Names: []string{"bclient"}, IPs: ips("127.0.0.11")})
	s.SetEndpoint("alpha", Endpoint{Container: "c5", Names: []string{"multi"}, IPs: ips("127.0.0.12")})
	s.SetEndpoint("beta", Endpoint{Container: "c5", Names: []string{"multi"}, IPs: ips("127.0.0.13")})
	return alpha, beta
}

func TestResolve(t *testing.T) {
	up := startUpstream(t, false)
	s := newServer(t, up.addr)
	alpha, beta := twoNetworks(t, s)

	const (
		ok  = dnsmessage.RCodeSuccess
		nx  = dnsmessage.RCodeNameError // only the upstream says NXDOMAIN
		A   = dnsmessage.TypeA
		PTR = dnsmessage.TypePTR
	)
	tests := []struct {
		desc  string
		ask   ask
		rcode dnsmessage.RCode
		want  []string
		local bool // answered by the server itself (authoritative)
	}{
		{"container name", ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"alias", ask{from: "127.0.0.10", server: alpha, name: "app.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"short ID", ask{from: "127.0.0.10", server: alpha, name: "0123456789ab.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"any case", ask{from: "127.0.0.10", server: alpha, name: "WeB.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"name.network", ask{from: "127.0.0.10", server: alpha, name: "web.alpha.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"AAAA", ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: dnsmessage.TypeAAAA}, ok, []string{"fd00::2"}, true},
		{"AAAA of an IPv4-only name is empty", ask{from: "127.0.0.10", server: alpha, name: "client.", qtype: dnsmessage.TypeAAAA}, ok, nil, true},
		{"other types of a known name are empty", ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: dnsmessage.TypeMX}, ok, nil, true},
		{"tcp", ask{proto: "tcp", from: "127.0.0.10", server: alpha, name: "web.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"edns", ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: A, edns: true}, ok, []string{"172.18.0.2"}, true},
		{"PTR", ask{from: "127.0.0.10", server: alpha, name: "2.0.18.172.in-addr.arpa.", qtype: PTR}, ok, []string{"web.alpha."}, true},
		{"PTR ip6", ask{from: "127.0.0.10", server: alpha, name: "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", qtype: PTR}, ok, []string{"web.alpha."}, true},
		{"PTR unknown is forwarded", ask{from: "127.0.0.10", server: alpha, name: "9.0.18.172.in-addr.arpa.", qtype: PTR}, nx, nil, false},
		{"forwarded", ask{from: "127.0.0.10", server: alpha, name: "example.com.", qtype: A}, ok, []string{"192.0.2.1"}, false},
		{"forwarded over tcp", ask{proto: "tcp", from: "127.0.0.10", server: alpha, name: "example.com.", qtype: A}, ok, []string{"192.0.2.1"}, false},
		{"unknown single label is forwarded", ask{from: "127.0.0.10", server: alpha, name: "nosuch.", qtype: A}, nx, nil, false},
		{"truncated upstream answer refetched over tcp", ask{from: "127.0.0.10", server: alpha, name: "big.example.", qtype: A},
			ok, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9", "192.0.2.10"}, false},

		// Isolation: each network's gateway answers its own members only.
		{"other network's name", ask{from: "127.0.0.10", server: alpha, name: "db.", qtype: A}, nx, nil, false},
		{"own name on beta", ask{from: "127.0.0.11", server: beta, name: "db.", qtype: A}, ok, []string{"172.19.0.2"}, true},
		{"alpha's name on beta", ask{from: "127.0.0.11", server: beta, name: "web.", qtype: A}, nx, nil, false},
		{"alpha's PTR on beta", ask{from: "127.0.0.11", server: beta, name: "2.0.18.172.in-addr.arpa.", qtype: PTR}, nx, nil, false},
		{"beta's client asking alpha's gateway", ask{from: "127.0.0.11", server: alpha, name: "web.", qtype: A}, nx, nil, false},
		{"a stranger asking alpha's gateway", ask{from: "127.0.0.99", server: alpha, name: "web.", qtype: A}, nx, nil, false},

		// A container on both networks sees both, through either gateway.
		{"multi: beta's name via beta", ask{from: "127.0.0.13", server: beta, name: "db.", qtype: A}, ok, []string{"172.19.0.2"}, true},
		{"multi: alpha's name via beta", ask{from: "127.0.0.13", server: beta, name: "web.", qtype: A}, ok, []string{"172.18.0.2"}, true},
		{"multi: beta's name via alpha", ask{from: "127.0.0.12", server: alpha, name: "db.", qtype: A}, ok, []string{"172.19.0.2"}, true},
		{"multi: own name resolves on the asked network first", ask{from: "127.0.0.13", server: beta, name: "multi.", qtype: A}, ok, []string{"127.0.0.13"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m, _ := tt.ask.do(t)
			if m.RCode != tt.rcode {
				t.Fatalf("rcode %v, want %v", m.RCode, tt.rcode)
			}
			if got := addrs(m); !slices.Equal(got, tt.want) {
				t.Fatalf("answers %v, want %v", got, tt.want)
			}
			if m.Authoritative != tt.local {
				t.Fatalf("authoritative %v, want %v", m.Authoritative, tt.local)
			}
			if tt.local && len(m.Answers) > 0 && m.Answers[0].Header.TTL != 600 {
				t.Fatalf("TTL %d, want 600", m.Answers[0].Header.TTL)
			}
			if hasOPT := len(m.Additionals) == 1 && m.Additionals[0].Header.Type == dnsmessage.TypeOPT; tt.local && hasOPT != tt.ask.edns {
				t.Fatalf("OPT in reply %v, in query %v", hasOPT, tt.ask.edns)
			}
		})
	}
	if up.tcp.Load() == 0 {
		t.Error("the truncated answer was not fetched over TCP")
	}
}

func TestUpstreamFailure(t *testing.T) {
	up := startUpstream(t, false)
	silent := startUpstream(t, true)
	dead := deadUpstream(t)
	tests := []struct {
		desc      string
		upstreams []string
		name      string
		rcode     dnsmessage.RCode
	}{
		{"none", nil, "example.com.", dnsmessage.RCodeServerFailure},
		{"down", []string{dead}, "example.com.", dnsmessage.RCodeServerFailure},
		{"silent", []string{silent.addr}, "example.com.", dnsmessage.RCodeServerFailure},
		{"down then up", []string{dead, silent.addr, up.addr}, "example.com.", dnsmessage.RCodeSuccess},
		{"upstream SERVFAIL", []string{up.addr}, "fail.example.", dnsmessage.RCodeServerFailure},
	}
	for _, tt := range tests {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tt.desc+"/"+proto, func(t *testing.T) {
				s := newServer(t, tt.upstreams...)
				addr := listen(t, s, "alpha", "127.0.0.2")
				start := time.Now()
				m, _ := ask{proto: proto, from: "127.0.0.2", server: addr, name: tt.name, qtype: dnsmessage.TypeA}.do(t)
				if m.RCode != tt.rcode {
					t.Fatalf("rcode %v, want %v", m.RCode, tt.rcode)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("took %v", d)
				}
			})
		}
	}

	// A failing upstream is not the last word: the next one is asked too.
	up2 := startUpstream(t, false)
	s := newServer(t, up.addr, up2.addr)
	addr := listen(t, s, "alpha", "127.0.0.2")
	ask{from: "127.0.0.2", server: addr, name: "fail.example.", qtype: dnsmessage.TypeA}.do(t)
	if up2.udp.Load() != 1 {
		t.Fatalf("second upstream saw %d queries, want 1", up2.udp.Load())
	}
}

func TestSetRemove(t *testing.T) {
	up := startUpstream(t, false)
	s := newServer(t, up.addr)
	alpha, _ := twoNetworks(t, s)
	q := ask{from: "127.0.0.10", server: alpha, name: "shared.", qtype: dnsmessage.TypeA}

	s.Set("alpha", "shared", ips("10.0.0.1", "10.0.0.2"))
	first := map[string]bool{}
	for range 4 {
		m, _ := q.do(t)
		got := addrs(m)
		slices.Sort(got)
		if !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
			t.Fatalf("answers %v", addrs(m))
		}
		first[addrs(m)[0]] = true
	}
	if len(first) != 2 {
		t.Errorf("answers are not rotated: first address always %v", first)
	}

	s.Set("alpha", "shared", ips("10.0.0.3"))
	if m, _ := q.do(t); !slices.Equal(addrs(m), []string{"10.0.0.3"}) {
		t.Fatalf("after a second Set: %v", addrs(m))
	}
	ptr := ask{from: "127.0.0.10", server: alpha, name: "3.0.0.10.in-addr.arpa.", qtype: dnsmessage.TypePTR}
	if m, _ := ptr.do(t); !slices.Equal(addrs(m), []string{"shared.alpha."}) {
		t.Fatalf("PTR of a Set record: %v", addrs(m))
	}

	// A name too long for a DNS label gets no PTR record: the query goes upstream.
	s.Set("alpha", strings.Repeat("x", 64), ips("10.0.0.4"))
	if m, _ := (ask{from: "127.0.0.10", server: alpha, name: "4.0.0.10.in-addr.arpa.", qtype: dnsmessage.TypePTR}).do(t); m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("PTR of a long name: rcode %v, %v", m.RCode, addrs(m))
	}

	s.Remove("alpha", "shared")
	if m, _ := q.do(t); m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("after Remove: rcode %v, answers %v", m.RCode, addrs(m))
	}

	// An endpoint replaced keeps the container on its network once.
	s.SetEndpoint("alpha", Endpoint{Container: "c1", Names: []string{"web2"}, IPs: ips("172.18.0.3")})
	if m, _ := (ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: dnsmessage.TypeA}).do(t); m.RCode != dnsmessage.RCodeNameError {
		t.Fatalf("old name still answers: %v", addrs(m))
	}
	if m, _ := (ask{from: "127.0.0.10", server: alpha, name: "web2.", qtype: dnsmessage.TypeA}).do(t); !slices.Equal(addrs(m), []string{"172.18.0.3"}) {
		t.Fatalf("new name: %v", addrs(m))
	}
	s.RemoveEndpoint("alpha", "c5")
	s.mu.RLock()
	joined := slices.Clone(s.joined["c1"])
	c5 := slices.Clone(s.joined["c5"])
	s.mu.RUnlock()
	if !slices.Equal(joined, []string{"alpha"}) || !slices.Equal(c5, []string{"beta"}) {
		t.Fatalf("joined: c1 %v, c5 %v", joined, c5)
	}
}

func TestTruncation(t *testing.T) {
	s := newServer(t)
	alpha, _ := twoNetworks(t, s)
	var many []netip.Addr
	for i := range 100 {
		many = append(many, netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}))
	}
	s.Set("alpha", "many", many)

	tests := []struct {
		desc   string
		ask    ask
		answer int
		tc     bool
		size   int
	}{
		{"udp", ask{from: "127.0.0.10", server: alpha, name: "many.", qtype: dnsmessage.TypeA}, (512 - 22) / 16, true, 512},
		{"udp edns", ask{from: "127.0.0.10", server: alpha, name: "many.", qtype: dnsmessage.TypeA, edns: true}, (1232 - 22 - 11) / 16, true, 1232},
		{"tcp", ask{proto: "tcp", from: "127.0.0.10", server: alpha, name: "many.", qtype: dnsmessage.TypeA}, 100, false, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			m, size := tt.ask.do(t)
			if len(m.Answers) != tt.answer || m.Truncated != tt.tc || size > tt.size {
				t.Fatalf("%d answers, truncated %v, %d bytes; want %d, %v, at most %d", len(m.Answers), m.Truncated, size, tt.answer, tt.tc, tt.size)
			}
		})
	}
}

func TestRemoveNetworkAndClose(t *testing.T) {
	s := NewServer(nil)
	alpha, beta := twoNetworks(t, s)
	s.RemoveNetwork("beta")
	s.mu.RLock()
	_, hasBeta := s.nets["beta"]
	c5 := slices.Clone(s.joined["c5"])
	s.mu.RUnlock()
	if hasBeta || !slices.Equal(c5, []string{"alpha"}) {
		t.Fatalf("beta still known: %v, c5 joined %v", hasBeta, c5)
	}
	c, err := net.Dial("udp", beta)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1})
	if _, err := c.Read(make([]byte, 512)); err == nil {
		t.Fatal("beta's listener still answers")
	}
	c.Close()
	ask{from: "127.0.0.10", server: alpha, name: "web.", qtype: dnsmessage.TypeA}.do(t)

	// A TCP client left open does not hold Close up.
	idle, err := net.Dial("tcp", alpha)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	done := make(chan struct{})
	go func() { s.Close(); s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if err := s.Listen("alpha", "127.0.0.2:0"); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
	if err := s.Listen("alpha", "gateway"); err == nil {
		t.Fatal("Listen on a name succeeded")
	}
}

func TestMalformed(t *testing.T) {
	s := newServer(t)
	alpha, _ := twoNetworks(t, s)
	c, err := net.Dial("udp", alpha)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// A header that announces a question which is not there.
	c.Write([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil || m.RCode != dnsmessage.RCodeFormatError || m.ID != 7 {
		t.Fatalf("reply %+v, %v; want FORMERR", m.Header, err)
	}
}

func TestParseReverse(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for not a reverse name
	}{
		{"2.0.18.172.in-addr.arpa", "172.18.0.2"},
		{"255.255.255.255.in-addr.arpa", "255.255.255.255"},
		{"256.0.18.172.in-addr.arpa", ""},
		{"0.18.172.in-addr.arpa", ""},
		{"1.2.0.18.172.in-addr.arpa", ""},
		{"a.0.18.172.in-addr.arpa", ""},
		{".0.18.172.in-addr.arpa", ""},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "2001:db8::1"},
		{"4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", "1.2.3.4"},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", ""},
		{"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", ""},
		{"web", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, ok := parseReverse([]byte(tt.name))
			got := ""
			if ok {
				got = ip.String()
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSetUpstreams(t *testing.T) {
	s := NewServer([]string{"127.0.0.53", "::1", "[fe80::1%eth0]:5353", "127.0.0.1:5300", "resolver.example", ""})
	defer s.Close()
	want := []string{"127.0.0.53:53", "[::1]:53", "[fe80::1%eth0]:5353", "127.0.0.1:5300"}
	if got := *s.upstreams.Load(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// packQuery packs a query for name, type A.
func packQuery(t testing.TB, name string) []byte {
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 1, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	msg, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// The monitor answers every container's lookups: a local answer allocates nothing.
func TestAnswerAllocs(t *testing.T) {
	s := NewServer(nil)
	defer s.Close()
	s.SetEndpoint("alpha", Endpoint{Container: "c1", Names: []string{"web"}, IPs: ips("172.18.0.2", "127.0.0.10")})
	msg := packQuery(t, "web.")
	out := make([]byte, 0, maxUDPReply)
	src := netip.MustParseAddr("127.0.0.10")
	allocs := testing.AllocsPerRun(100, func() {
		var qu query
		if reply, fwd := s.answer("alpha", src, msg, out[:0], false, &qu); fwd || reply == nil {
			t.Fatal("not answered")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per answer", allocs)
	}
}

func BenchmarkAnswer(b *testing.B) {
	s := NewServer(nil)
	defer s.Close()
	s.SetEndpoint("alpha", Endpoint{Container: "c1", Names: []string{"web"}, IPs: ips("172.18.0.2", "127.0.0.10")})
	msg := packQuery(b, "web.")
	out := make([]byte, 0, maxUDPReply)
	src := netip.MustParseAddr("127.0.0.10")
	b.ReportAllocs()
	for b.Loop() {
		var qu query
		s.answer("alpha", src, msg, out[:0], false, &qu)
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add(packQuery(f, "web."))
	f.Add(packQuery(f, "2.0.18.172.in-addr.arpa."))
	f.Add([]byte{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	s := NewServer(nil)
	defer s.Close()
	s.SetEndpoint("alpha", Endpoint{Container: "c1", Names: []string{"web", "Web.Alpha"}, IPs: ips("172.18.0.2", "fd00::2", "127.0.0.10")})
	src := netip.MustParseAddr("127.0.0.10")
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, tcp := range []bool{false, true} {
			var qu query
			reply, fwd := s.answer("alpha", src, msg, nil, tcp, &qu)
			if reply == nil {
				continue
			}
			if fwd {
				t.Fatal("a reply and a forward")
			}
			var p dnsmessage.Parser
			if _, err := p.Start(reply); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			if !tcp && len(reply) > maxUDPReply {
				t.Fatalf("UDP reply of %d bytes", len(reply))
			}
		}
		if len(msg) >= 2 {
			var qu query
			if _, ok := parse(msg, &qu); ok && qu.id != binary.BigEndian.Uint16(msg) {
				t.Fatal("id lost")
			}
		}
	})
}

// A container given --dns has its forwarded queries go to its own servers.
func TestClientUpstreams(t *testing.T) {
	hostUp := startUpstream(t, false)
	ownUp := startUpstream(t, false)
	s := newServer(t, hostUp.addr)
	addr := listen(t, s, "alpha", "127.0.0.2")
	s.SetClientUpstreams(netip.MustParseAddr("127.0.0.9"), []string{ownUp.addr})
	ask{from: "127.0.0.9", server: addr, name: "example.com.", qtype: dnsmessage.TypeA}.do(t)
	ask{from: "127.0.0.8", server: addr, name: "example.com.", qtype: dnsmessage.TypeA}.do(t)
	if ownUp.udp.Load() != 1 || hostUp.udp.Load() != 1 {
		t.Fatalf("own upstream saw %d, host's %d; want 1 and 1", ownUp.udp.Load(), hostUp.udp.Load())
	}
	s.SetClientUpstreams(netip.MustParseAddr("127.0.0.9"), nil)
	ask{from: "127.0.0.9", server: addr, name: "example.com.", qtype: dnsmessage.TypeA}.do(t)
	if hostUp.udp.Load() != 2 {
		t.Fatalf("after clearing, the host's upstream saw %d, want 2", hostUp.udp.Load())
	}
}
