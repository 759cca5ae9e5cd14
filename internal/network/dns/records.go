package dns

import (
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Endpoint is one container's attachment to one network, as its DNS sees it.
type Endpoint struct {
	// Container ties a container's endpoints on several networks together: a
	// container attached to networks X and Y resolves the names of both, whichever
	// gateway its query reaches (docker does the same).
	Container string
	// Names are the container name first (PTR answers give it), then its network
	// aliases and its 12-hex short ID.
	Names []string
	IPs   []netip.Addr
}

// recordKey keys the records that Set makes; the NUL keeps them apart from
// container IDs.
const recordKey = "\x00"

type endpoint struct {
	container string       // "" for a record made by Set
	names     []string     // lower case
	ips       []netip.Addr // unmapped, without zone
	ptr       dnsmessage.Name
}

// table holds one network's names.
type table struct {
	name   string // as the caller spells it, for PTR answers
	key    string // lower case, for "<name>.<network>" queries
	eps    map[string]*endpoint
	byName map[string][]*endpoint
	byIP   map[netip.Addr][]*endpoint
}

// SetEndpoint adds ep to network's names, replacing what was there for
// ep.Container. Register an endpoint before its container runs: only clients
// whose source address belongs to the network see its names.
func (s *Server) SetEndpoint(network string, ep Endpoint) {
	s.set(network, ep.Container, ep.Container, ep.Names, ep.IPs)
}

// RemoveEndpoint removes container's names from network.
func (s *Server) RemoveEndpoint(network, container string) {
	s.remove(network, container)
}

// Set makes name on network resolve to ips, replacing what an earlier Set gave
// it. Each Set is a record of its own: a name Set with several addresses (an
// alias shared by containers) answers all of them in turn. Records made by Set do
// not tie networks together; use SetEndpoint for containers on several networks.
func (s *Server) Set(network, name string, ips []netip.Addr) {
	s.set(network, recordKey+name, "", []string{name}, ips)
}

// Remove removes a record made by Set.
func (s *Server) Remove(network, name string) {
	s.remove(network, recordKey+name)
}

func (s *Server) set(network, key, container string, names []string, ips []netip.Addr) {
	e := &endpoint{container: container}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n != "" && !slices.Contains(e.names, n) {
			e.names = append(e.names, n)
		}
	}
	for _, ip := range ips {
		if ip = ip.Unmap().WithZone(""); ip.IsValid() && !slices.Contains(e.ips, ip) {
			e.ips = append(e.ips, ip)
		}
	}
	if len(names) > 0 {
		// Docker answers PTR queries with "<container>.<network>."; a name that
		// does not fit a DNS name gets no PTR record.
		ptr := strings.TrimSuffix(names[0], ".") + "." + network + "."
		if n, err := dnsmessage.NewName(ptr); err == nil && validName(ptr) {
			e.ptr = n
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.nets[network]
	if t == nil {
		t = &table{
			name:   network,
			key:    strings.ToLower(network),
			eps:    make(map[string]*endpoint),
			byName: make(map[string][]*endpoint),
			byIP:   make(map[netip.Addr][]*endpoint),
		}
		s.nets[network] = t
	}
	if old := t.eps[key]; old != nil {
		t.unindex(old)
	} else if container != "" {
		s.joined[container] = append(s.joined[container], network)
	}
	t.eps[key] = e
	for _, n := range e.names {
		t.byName[n] = append(t.byName[n], e)
	}
	for _, ip := range e.ips {
		t.byIP[ip] = append(t.byIP[ip], e)
	}
}

func (s *Server) remove(network, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.nets[network]
	if t == nil {
		return
	}
	e := t.eps[key]
	if e == nil {
		return
	}
	t.unindex(e)
	delete(t.eps, key)
	s.unjoin(e.container, network)
	if len(t.eps) == 0 {
		delete(s.nets, network)
	}
}

// unjoin forgets that container is on network; s.mu is held.
func (s *Server) unjoin(container, network string) {
	if container == "" {
		return
	}
	nets := slices.DeleteFunc(s.joined[container], func(n string) bool { return n == network })
	if len(nets) == 0 {
		delete(s.joined, container)
	} else {
		s.joined[container] = nets
	}
}

func (t *table) unindex(e *endpoint) {
	for _, n := range e.names {
		t.byName[n] = drop(t.byName[n], e)
		if len(t.byName[n]) == 0 {
			delete(t.byName, n)
		}
	}
	for _, ip := range e.ips {
		t.byIP[ip] = drop(t.byIP[ip], e)
		if len(t.byIP[ip]) == 0 {
			delete(t.byIP, ip)
		}
	}
}

// drop removes e from eps in place; lookups walk these slices under s.mu too.
func drop(eps []*endpoint, e *endpoint) []*endpoint {
	return slices.DeleteFunc(eps, func(x *endpoint) bool { return x == e })
}

// find returns the endpoints that key (lower case, no trailing dot) names on t.
func (t *table) find(key []byte) []*endpoint {
	if eps := t.byName[string(key)]; len(eps) > 0 {
		return eps
	}
	// "<name>.<network>" names a container on that network explicitly.
	if n := len(key) - len(t.key) - 1; n > 0 && key[n] == '.' && string(key[n+1:]) == t.key {
		return t.byName[string(key[:n])]
	}
	return nil
}

// scope returns the tables a client at src, asking the listener of network,
// may see: network's own first, then the other networks of the client's
// container in the order it joined them. A client that is not on network sees
// none, so one network's gateway does not reveal its names to another's
// containers. s.mu is held for reading.
func (s *Server) scope(network string, src netip.Addr, dst []*table) []*table {
	t := s.nets[network]
	if t == nil {
		return dst
	}
	self := t.byIP[src]
	if len(self) == 0 {
		return dst
	}
	dst = append(dst, t)
	for _, e := range self {
		if e.container == "" {
			continue
		}
		for _, n := range s.joined[e.container] {
			if o := s.nets[n]; o != nil && !slices.Contains(dst, o) {
				dst = append(dst, o)
			}
		}
		break
	}
	return dst
}

// validName tells whether the dotted name packs: labels of 1 to 63 bytes.
func validName(name string) bool {
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
	}
	return true
}
