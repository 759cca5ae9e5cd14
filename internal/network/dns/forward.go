package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var (
	errTruncated = errors.New("upstream answer truncated")
	errUpstream  = errors.New("upstream failed the query")
)

// forward asks the upstreams in turn for msg, over the client's protocol, and
// returns the first useful answer, or SERVFAIL when none gives one. A UDP
// answer that the upstream truncated is fetched again over TCP, as docker does.
func (s *Server) forward(msg []byte, qu *query, tcp bool, client netip.Addr) []byte {
	ups := *s.upstreams.Load()
	if own, ok := s.clientUpstreams.Load(client); ok {
		ups = own.([]string)
	}
	for _, up := range ups {
		if !tcp {
			limit := qu.udpLimit(maxUDPForward)
			reply, err := s.exchange("udp", up, msg, limit)
			if err == nil {
				return reply
			}
			if !errors.Is(err, errTruncated) {
				continue
			}
			if reply, err = s.exchange("tcp", up, msg, limit); err != nil {
				continue
			}
			if len(reply) > limit {
				return qu.truncated(nil)
			}
			return reply
		}
		if reply, err := s.exchange("tcp", up, msg, 0); err == nil {
			return reply
		}
	}
	return qu.fail(nil, dnsmessage.RCodeServerFailure)
}

// exchange sends msg to the upstream at addr and reads its answer. Over UDP an
// answer above limit bytes counts as truncated.
func (s *Server) exchange(proto, addr string, msg []byte, limit int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.life, s.timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Ending the context, by the timeout or by Close, ends the reads and writes.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	id := binary.BigEndian.Uint16(msg)
	if proto == "tcp" {
		if err := writeTCP(c, msg); err != nil {
			return nil, err
		}
		var size [2]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return nil, err
		}
		reply := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(c, reply); err != nil {
			return nil, err
		}
		if ok, err := check(reply, id); !ok || err != nil {
			return nil, errUpstream
		}
		return reply, nil
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, limit+1)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		reply := buf[:n]
		// A stray datagram (an earlier query's late answer) is skipped.
		if ok, err := check(reply, id); ok {
			if err == nil && (n > limit || reply[2]&0x02 != 0) { // TC
				err = errTruncated
			}
			return reply, err
		}
	}
}

// check tells whether reply answers the query with id, and whether the
// upstream failed it: then the next upstream may do better, as docker tries.
func check(reply []byte, id uint16) (bool, error) {
	if len(reply) < 12 || binary.BigEndian.Uint16(reply) != id || reply[2]&0x80 == 0 {
		return false, nil
	}
	switch dnsmessage.RCode(reply[3] & 0x0f) {
	case dnsmessage.RCodeServerFailure, dnsmessage.RCodeRefused:
		return true, errUpstream
	}
	return true, nil
}
