package dns

import (
	"bytes"
	"net/netip"
	"slices"

	"golang.org/x/net/dns/dnsmessage"
)

const (
	ttl    = 600 // docker's TTL for container names
	minUDP = 512 // what a client without EDNS can take (RFC 1035)
	// maxUDPReply caps the size of the answers the server writes itself, below
	// IP fragmentation (the figure of DNS flag day 2020).
	maxUDPReply = 1232
	// maxUDPForward caps an upstream UDP answer relayed to a UDP client; a larger
	// one goes over TCP, or the client is told to retry over TCP.
	maxUDPForward = 4096
)

// query is what a reply needs to know of its query.
type query struct {
	id   uint16
	rd   bool
	hasQ bool
	edns bool
	size int // the client's UDP payload size, at least minUDP
	q    dnsmessage.Question
}

// parse reads msg's header, question and EDNS payload size into qu. It returns
// false for a message that gets no reply at all, and an error code for a
// malformed query.
func parse(msg []byte, qu *query) (dnsmessage.RCode, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return 0, false
	}
	*qu = query{id: h.ID, rd: h.RecursionDesired, size: minUDP}
	if h.OpCode != 0 {
		return dnsmessage.RCodeNotImplemented, true
	}
	q, err := p.Question()
	if err != nil {
		return dnsmessage.RCodeFormatError, true
	}
	qu.q, qu.hasQ = q, true
	if err := p.SkipQuestion(); err != dnsmessage.ErrSectionDone {
		return dnsmessage.RCodeFormatError, true
	}
	if p.SkipAllAnswers() != nil || p.SkipAllAuthorities() != nil {
		return dnsmessage.RCodeSuccess, true
	}
	for {
		rh, err := p.AdditionalHeader()
		if err != nil {
			break
		}
		if rh.Type == dnsmessage.TypeOPT {
			qu.edns, qu.size = true, max(int(rh.Class), minUDP)
		}
		if p.SkipAdditional() != nil {
			break
		}
	}
	return dnsmessage.RCodeSuccess, true
}

// udpLimit is the largest UDP reply the client takes, capped at most.
func (qu *query) udpLimit(most int) int { return min(qu.size, most) }

// header starts the header of a reply to qu.
func (qu *query) header(rcode dnsmessage.RCode) dnsmessage.Header {
	return dnsmessage.Header{
		ID: qu.id, Response: true, RecursionDesired: qu.rd, RecursionAvailable: true, RCode: rcode,
	}
}

// begin starts a reply to qu in out: h and the question, ready for answers.
func (qu *query) begin(out []byte, h dnsmessage.Header, compress bool) (dnsmessage.Builder, error) {
	b := dnsmessage.NewBuilder(out, h)
	if compress {
		b.EnableCompression()
	}
	err := b.StartQuestions()
	if err == nil && qu.hasQ {
		err = b.Question(qu.q)
	}
	if err == nil {
		err = b.StartAnswers()
	}
	return b, err
}

// end finishes a reply begun by begin, with an OPT record when the query had
// one. It returns nil if the reply could not be built (err).
func (qu *query) end(b *dnsmessage.Builder, err error) []byte {
	if err == nil && qu.edns {
		rh := dnsmessage.ResourceHeader{Name: dnsmessage.Name{Data: [255]byte{'.'}, Length: 1}}
		err = rh.SetEDNS0(maxUDPReply, dnsmessage.RCodeSuccess, false)
		if err == nil {
			err = b.StartAdditionals()
		}
		if err == nil {
			err = b.OPTResource(rh, dnsmessage.OPTResource{})
		}
	}
	if err != nil {
		return nil
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}

// fail is a reply to qu with rcode and no answers.
func (qu *query) fail(out []byte, rcode dnsmessage.RCode) []byte {
	b, err := qu.begin(out, qu.header(rcode), false)
	return qu.end(&b, err)
}

// truncated tells the client that the answer does not fit and to ask over TCP.
func (qu *query) truncated(out []byte) []byte {
	h := qu.header(dnsmessage.RCodeSuccess)
	h.Truncated = true
	b, err := qu.begin(out, h, false)
	return qu.end(&b, err)
}

// addresses answers qu with the A or AAAA records of eps, rotated on each
// query as docker shuffles them, and as many as fit in limit bytes. A name
// known without addresses of the asked family gets an empty answer: the name
// exists, and asking the upstreams would only earn an NXDOMAIN that resolvers
// then apply to every type of the name.
func (qu *query) addresses(out []byte, eps []*endpoint, turn uint32, limit int) []byte {
	h := qu.header(dnsmessage.RCodeSuccess)
	h.Authoritative = true
	want4, rdlen := qu.q.Type == dnsmessage.TypeA, 4
	if !want4 {
		rdlen = 16
	}
	var buf [16]netip.Addr
	ips := buf[:0]
	if want4 || qu.q.Type == dnsmessage.TypeAAAA {
		for _, e := range eps {
			for _, ip := range e.ips {
				if ip.Is4() == want4 && !slices.Contains(ips, ip) {
					ips = append(ips, ip)
				}
			}
		}
	}
	n := len(ips)
	// Sizes in bytes: the header, the question, the OPT record, then each
	// record with its name written out or, compressed, as a 2-byte pointer.
	name := int(qu.q.Name.Length) + 1
	fixed := 12 + name + 4
	if qu.edns {
		fixed += 11
	}
	compress := fixed+n*(name+10+rdlen) > limit
	if compress {
		if fit := max((limit-fixed)/(2+10+rdlen), 0); n > fit {
			n, h.Truncated = fit, true
		}
	}
	var start int
	if n > 0 {
		start = int(turn % uint32(len(ips)))
	}
	b, err := qu.begin(out, h, compress)
	rh := dnsmessage.ResourceHeader{Name: qu.q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
	for i := 0; i < n && err == nil; i++ {
		ip := ips[(start+i)%len(ips)]
		if want4 {
			err = b.AResource(rh, dnsmessage.AResource{A: ip.As4()})
		} else {
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()})
		}
	}
	return qu.end(&b, err)
}

// pointer answers qu, a PTR query, with target.
func (qu *query) pointer(out []byte, target *dnsmessage.Name, limit int) []byte {
	h := qu.header(dnsmessage.RCodeSuccess)
	h.Authoritative = true
	b, err := qu.begin(out, h, false)
	if err == nil {
		rh := dnsmessage.ResourceHeader{Name: qu.q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
		err = b.PTRResource(rh, dnsmessage.PTRResource{PTR: *target})
	}
	msg := qu.end(&b, err)
	if len(msg) > limit {
		return qu.truncated(out)
	}
	return msg
}

// lowerKey writes n into dst in lower case without its trailing dot: the key of
// the name tables.
func lowerKey(n *dnsmessage.Name, dst *[255]byte) []byte {
	l := int(n.Length)
	if l > 0 && n.Data[l-1] == '.' {
		l--
	}
	for i := range l {
		c := n.Data[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
	return dst[:l]
}

// parseReverse turns a lower-case reverse name ("2.0.18.172.in-addr.arpa",
// 32 nibbles and "ip6.arpa") into its address.
func parseReverse(key []byte) (netip.Addr, bool) {
	if s, ok := bytes.CutSuffix(key, []byte(".in-addr.arpa")); ok {
		var ip [4]byte
		for i := 3; i >= 0; i-- {
			label, rest, more := bytes.Cut(s, []byte{'.'})
			if more != (i > 0) || len(label) == 0 || len(label) > 3 {
				return netip.Addr{}, false
			}
			v := 0
			for _, c := range label {
				if c < '0' || c > '9' {
					return netip.Addr{}, false
				}
				v = v*10 + int(c-'0')
			}
			if v > 255 {
				return netip.Addr{}, false
			}
			ip[i], s = byte(v), rest
		}
		return netip.AddrFrom4(ip), true
	}
	if s, ok := bytes.CutSuffix(key, []byte(".ip6.arpa")); ok && len(s) == 63 {
		var ip [16]byte
		for i := range 32 {
			if i < 31 && s[2*i+1] != '.' {
				return netip.Addr{}, false
			}
			var v byte
			switch c := s[2*i]; {
			case '0' <= c && c <= '9':
				v = c - '0'
			case 'a' <= c && c <= 'f':
				v = c - 'a' + 10
			default:
				return netip.Addr{}, false
			}
			// The name lists the nibbles from the last one.
			if pos := 31 - i; pos%2 == 0 {
				ip[pos/2] |= v << 4
			} else {
				ip[pos/2] |= v
			}
		}
		return netip.AddrFrom16(ip).Unmap(), true
	}
	return netip.Addr{}, false
}
