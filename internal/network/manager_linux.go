package network

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/bridge"
	"github.com/berth-dev/berth/internal/network/firewall"
)

// Config says where a Manager keeps its records and which host objects it
// names. Zero fields take berth's defaults; tests set their own so they
// never touch the real bridge or table.
type Config struct {
	Root          string         // berth's root directory; records live in Root/network
	Table         string         // nftables table (family ip); "berth"
	DefaultBridge string         // the default network's bridge; "berth0"
	Pool          []netip.Prefix // subnets for networks made without one; 10.89.0.0/16, 10.90.0.0/16, ...
}

// DefaultBridgeName is the bridge of the default network "bridge".
const DefaultBridgeName = "berth0"

// Manager holds the networks and endpoints under one root. Every call
// takes a flock on the store, so concurrent berth processes (and
// goroutines) see each change whole, and no address or host port is
// handed out twice.
type Manager struct {
	dir  string
	cfg  Config
	fw   firewall.Table
	bind portBinder              // tests replace it
	rts  func() ([]Route, error) // host routes, for the overlap check; tests replace it
}

const (
	dirName     = "network"
	networksDir = "networks"
	lockFile    = ".lock"
	tmpPrefix   = ".tmp-"
)

// Open opens (creating if needed) the network store under cfg.Root.
func Open(cfg Config) (*Manager, error) {
	if cfg.Root == "" {
		return nil, errdefs.InvalidArgument(errors.New("open network store: no root directory given"))
	}
	if cfg.Table == "" {
		cfg.Table = firewall.DefaultTable
	}
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = DefaultBridgeName
	}
	if cfg.Pool == nil {
		cfg.Pool = defaultPool()
	}
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("open network store under %s: %w", cfg.Root, err)
	}
	m := &Manager{dir: filepath.Join(abs, dirName), cfg: cfg, fw: firewall.Table{Name: cfg.Table}, bind: bindPort, rts: hostRoutes}
	if err := os.MkdirAll(filepath.Join(m.dir, networksDir), 0o700); err != nil {
		return nil, fmt.Errorf("open network store: %w", err)
	}
	return m, nil
}

// Dir is the store's directory.
func (m *Manager) Dir() string { return m.dir }

func hostRoutes() ([]Route, error) {
	c, err := bridge.Open()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rs, err := c.Routes()
	if err != nil {
		return nil, err
	}
	out := make([]Route, len(rs))
	for i, r := range rs {
		out[i] = Route{Dst: r.Dst, Device: r.Device}
	}
	return out, nil
}

// lock takes the store's flock. Each call opens its own file description,
// so goroutines of one process exclude each other too.
func (m *Manager) lock() (unlock func(), err error) {
	path := filepath.Join(m.dir, lockFile)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock network store: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock network store %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}

// writeJSON replaces path with v's JSON whole: written aside, then
// renamed. Not fsynced: a kill -9 loses nothing the page cache holds, and
// after a power loss Reconcile rebuilds what the kernel lost anyway.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), tmpPrefix)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// loadNetworks reads every network record.
func (m *Manager) loadNetworks() ([]*Network, error) {
	dir := filepath.Join(m.dir, networksDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read networks: %w", err)
	}
	var out []*Network
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read network %s: %w", name, err)
		}
		n := &Network{}
		if err := json.Unmarshal(data, n); err != nil {
			return nil, fmt.Errorf("read network %s: %w", name, err)
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Network) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *Manager) saveNetwork(n *Network) error {
	if err := writeJSON(filepath.Join(m.dir, networksDir, n.ID+".json"), n); err != nil {
		return fmt.Errorf("write network %s: %w", n.Name, err)
	}
	return nil
}

// state is every container's attachments, which are the address leases
// and host port reservations too.
type state struct {
	Endpoints []Endpoint `json:"Endpoints"`
	// Last is each network's (by ID) latest address handed out, where
	// the next search starts.
	Last map[string]netip.Addr `json:"Last,omitempty"`

	gen  uint64 // generation loaded; 0: none
	slot int    // slot file it came from; -1: none
}

// The endpoints live in two slot files written in place, alternately:
// each holds a header line "berth-endpoints GEN LEN CRC32" and LEN bytes
// of JSON. A writer killed mid-write damages only the slot it writes; the
// reader takes the newest slot that checks out. Writing in place costs
// tens of microseconds where create-and-rename costs most of a
// millisecond on ext4, on every container start and stop.
const slotMagic = "berth-endpoints"

func slotPath(dir string, i int) string {
	return filepath.Join(dir, "endpoints."+strconv.Itoa(i))
}

// readSlot returns slot i's generation and JSON; ok is false for a
// missing, empty or damaged slot.
func readSlot(dir string, i int) (gen uint64, data []byte, ok bool, err error) {
	b, err := os.ReadFile(slotPath(dir, i))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	head, body, found := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(head))
	if !found || len(f) != 4 || f[0] != slotMagic {
		return 0, nil, false, nil
	}
	gen, err1 := strconv.ParseUint(f[1], 10, 64)
	n, err2 := strconv.Atoi(f[2])
	sum, err3 := strconv.ParseUint(f[3], 16, 32)
	if err1 != nil || err2 != nil || err3 != nil || n > len(body) || crc32.ChecksumIEEE(body[:n]) != uint32(sum) {
		return 0, nil, false, nil
	}
	return gen, body[:n], true, nil
}

func (m *Manager) loadState() (*state, error) {
	st := &state{slot: -1}
	var best []byte
	for i := 0; i < 2; i++ {
		gen, data, ok, err := readSlot(m.dir, i)
		if err != nil {
			return nil, fmt.Errorf("read network endpoints: %w", err)
		}
		if ok && (st.slot < 0 || gen > st.gen) {
			st.gen, st.slot, best = gen, i, data
		}
	}
	if best == nil {
		return st, nil
	}
	if err := json.Unmarshal(best, st); err != nil {
		return nil, fmt.Errorf("read network endpoints %s: %w", slotPath(m.dir, st.slot), err)
	}
	return st, nil
}

// saveState writes st into the slot it was not read from.
func (m *Manager) saveState(st *state) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write network endpoints: %w", err)
	}
	slot := 0
	if st.slot == 0 {
		slot = 1
	}
	gen := st.gen + 1
	buf := fmt.Appendf(nil, "%s %d %d %08x\n", slotMagic, gen, len(data), crc32.ChecksumIEEE(data))
	buf = append(buf, data...)
	f, err := os.OpenFile(slotPath(m.dir, slot), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write network endpoints: %w", err)
	}
	_, err = f.WriteAt(buf, 0)
	if err == nil {
		err = f.Truncate(int64(len(buf)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write network endpoints %s: %w", f.Name(), err)
	}
	st.gen, st.slot = gen, slot
	return nil
}

func (st *state) find(containerID, networkID string) int {
	return slices.IndexFunc(st.Endpoints, func(e Endpoint) bool {
		return e.ContainerID == containerID && e.NetworkID == networkID
	})
}

func (st *state) remove(i int) { st.Endpoints = slices.Delete(st.Endpoints, i, i+1) }

func (st *state) onNetwork(networkID string) []Endpoint {
	var out []Endpoint
	for _, e := range st.Endpoints {
		if e.NetworkID == networkID {
			out = append(out, e)
		}
	}
	return out
}

func (st *state) ports() []PortMapping {
	var out []PortMapping
	for _, e := range st.Endpoints {
		out = append(out, e.Ports...)
	}
	return out
}

// withDefaults returns nets with the predefined networks added (and
// saved) where missing: the default bridge gets the first subnet of the
// pool that overlaps no route and no other network.
func (m *Manager) withDefaults(nets []*Network) ([]*Network, error) {
	have := map[string]bool{}
	for _, n := range nets {
		have[n.Name] = true
	}
	for _, name := range []string{DefaultName, HostName, NoneName} {
		if have[name] {
			continue
		}
		n := &Network{ID: newID(), Name: name, Created: time.Now().UTC(), Labels: map[string]string{}, Options: map[string]string{}}
		switch name {
		case DefaultName:
			routes, err := m.rts()
			if err != nil {
				return nil, fmt.Errorf("create the default network: %w", err)
			}
			subnet, err := pickSubnet(m.cfg.Pool, nets, routes)
			if err != nil {
				return nil, fmt.Errorf("create the default network: %w", err)
			}
			n.Driver, n.Subnet, n.Gateway, n.Bridge = DriverBridge, subnet, subnet.Addr().Next(), m.cfg.DefaultBridge
			n.Options = map[string]string{
				"com.docker.network.bridge.default_bridge":       "true",
				"com.docker.network.bridge.enable_icc":           "true",
				"com.docker.network.bridge.enable_ip_masquerade": "true",
				"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
				OptBridgeName: m.cfg.DefaultBridge,
				OptMTU:        "1500",
			}
		case HostName:
			n.Driver = DriverHost
		case NoneName:
			n.Driver = DriverNull
		}
		if err := m.saveNetwork(n); err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	slices.SortFunc(nets, func(a, b *Network) int { return strings.Compare(a.Name, b.Name) })
	return nets, nil
}

// networks loads the records, the predefined ones included.
func (m *Manager) networks() ([]*Network, error) {
	nets, err := m.loadNetworks()
	if err != nil {
		return nil, err
	}
	return m.withDefaults(nets)
}

// lookup finds a network by full ID, name or unique ID prefix, as docker.
func lookup(nets []*Network, ref string) (*Network, error) {
	if ref == "" {
		return nil, errdefs.InvalidArgument(errors.New("no network name given"))
	}
	for _, n := range nets {
		if n.ID == ref {
			return n, nil
		}
	}
	for _, n := range nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	for _, n := range nets {
		if strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("network %s is ambiguous: several networks have IDs starting with it", ref))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("network %s not found", ref))
	}
	return found, nil
}

// CreateOptions are `network create`'s flags.
type CreateOptions struct {
	Name     string
	Driver   string // "" or "bridge"
	Subnet   string // "": the next free subnet of the pool
	Gateway  string // "": the subnet's first address
	Internal bool
	Labels   map[string]string
	Options  map[string]string // -o: com.docker.network.bridge.name, com.docker.network.driver.mtu
}

// Create makes a bridge network's record; its bridge appears when the
// first container attaches.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (*Network, error) {
	if err := validName(o.Name); err != nil {
		return nil, err
	}
	switch o.Driver {
	case "", DriverBridge:
	case DriverHost, DriverNull:
		return nil, errdefs.Conflict(fmt.Errorf("only one instance of %q network is allowed", o.Driver))
	default:
		return nil, errdefs.NotImplemented(fmt.Errorf("network driver %q is not supported: berth has the bridge driver", o.Driver))
	}
	if o.Gateway != "" && o.Subnet == "" {
		return nil, errdefs.InvalidArgument(errors.New("every ip-range or gateway must have a corresponding subnet"))
	}
	n := &Network{
		ID: newID(), Name: o.Name, Driver: DriverBridge, Internal: o.Internal, Created: time.Now().UTC(),
		Labels: maps.Clone(o.Labels), Options: maps.Clone(o.Options),
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	n.Bridge = "br-" + n.ID[:12]
	if v := n.Options[OptBridgeName]; v != "" {
		if len(v) > 15 || strings.ContainsAny(v, "/ \t\n:") {
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid bridge name %q: at most 15 characters, no '/', ':' or spaces", v))
		}
		n.Bridge = v
	}
	if v := n.Options[OptMTU]; v != "" {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid MTU %q: a number from 68 to 65535", v))
		}
		n.MTU = mtu
	}
	if o.Subnet != "" {
		s, err := parseSubnet(o.Subnet)
		if err != nil {
			return nil, err
		}
		gw, err := gatewayFor(s, o.Gateway)
		if err != nil {
			return nil, err
		}
		n.Subnet, n.Gateway = s, gw
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, err := m.networks()
	if err != nil {
		return nil, err
	}
	for _, other := range nets {
		if other.Name == n.Name {
			return nil, errdefs.Conflict(fmt.Errorf("network with name %s already exists", n.Name))
		}
		if other.Bridge != "" && other.Bridge == n.Bridge {
			return nil, errdefs.Conflict(fmt.Errorf("bridge name %s is already used by network %s", n.Bridge, other.Name))
		}
	}
	routes, err := m.rts()
	if err != nil {
		return nil, fmt.Errorf("create network %s: %w", n.Name, err)
	}
	if n.Subnet.IsValid() {
		if err := checkOverlap(n.Subnet, nets, routes); err != nil {
			return nil, err
		}
	} else {
		s, err := pickSubnet(m.cfg.Pool, nets, routes)
		if err != nil {
			return nil, err
		}
		n.Subnet, n.Gateway = s, s.Addr().Next()
	}
	if err := m.saveNetwork(n); err != nil {
		return nil, err
	}
	return n, nil
}

// Get returns the network named (or with the ID, or ID prefix) ref.
func (m *Manager) Get(ref string) (*Network, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, err := m.networks()
	if err != nil {
		return nil, err
	}
	return lookup(nets, ref)
}

// List returns every network, the predefined ones included, by name.
func (m *Manager) List() ([]*Network, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.networks()
}

// Endpoints returns the endpoints on network ref, for inspect and DNS.
func (m *Manager) Endpoints(ref string) ([]Endpoint, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, err := m.networks()
	if err != nil {
		return nil, err
	}
	n, err := lookup(nets, ref)
	if err != nil {
		return nil, err
	}
	st, err := m.loadState()
	if err != nil {
		return nil, err
	}
	return st.onNetwork(n.ID), nil
}

// ContainerEndpoints returns a container's endpoints, for its inspect.
func (m *Manager) ContainerEndpoints(containerID string) ([]Endpoint, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := m.loadState()
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, e := range st.Endpoints {
		if e.ContainerID == containerID {
			out = append(out, e)
		}
	}
	return out, nil
}

// Remove removes network ref: its record, bridge and rules. Predefined
// networks and networks with endpoints stay.
func (m *Manager) Remove(ctx context.Context, ref string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	nets, err := m.networks()
	if err != nil {
		return err
	}
	n, err := lookup(nets, ref)
	if err != nil {
		return err
	}
	st, err := m.loadState()
	if err != nil {
		return err
	}
	return m.remove(n, nets, st)
}

func (m *Manager) remove(n *Network, nets []*Network, st *state) error {
	if n.Predefined() {
		return errdefs.Permission(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if len(st.onNetwork(n.ID)) > 0 {
		return errdefs.Conflict(fmt.Errorf("error while removing network: network %s has active endpoints", n.Name))
	}
	if n.Bridge != "" {
		c, err := bridge.Open()
		if err != nil {
			return err
		}
		existed, err := c.Exists(n.Bridge)
		if err == nil && existed {
			err = c.Delete(n.Bridge)
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("remove network %s: %w", n.Name, err)
		}
		if existed {
			rest := slices.DeleteFunc(slices.Clone(nets), func(o *Network) bool { return o.ID == n.ID })
			if err := m.syncFirewall(rest); err != nil {
				return fmt.Errorf("remove network %s: %w", n.Name, err)
			}
		}
	}
	if err := os.Remove(filepath.Join(m.dir, networksDir, n.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	return nil
}

// Prune removes the user-defined networks without endpoints that match
// accepts (nil: all of them), and returns their names.
func (m *Manager) Prune(ctx context.Context, match func(*Network) bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	nets, err := m.networks()
	if err != nil {
		return nil, err
	}
	st, err := m.loadState()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range slices.Clone(nets) {
		if n.Predefined() || len(st.onNetwork(n.ID)) > 0 || (match != nil && !match(n)) {
			continue
		}
		if err := m.remove(n, nets, st); err != nil {
			return removed, err
		}
		removed = append(removed, n.Name)
		nets = slices.DeleteFunc(nets, func(o *Network) bool { return o.ID == n.ID })
	}
	return removed, nil
}

// syncFirewall rewrites the table's shared chains for the bridge networks.
func (m *Manager) syncFirewall(nets []*Network) error {
	var fw []firewall.Net
	for _, n := range nets {
		if n.Driver == DriverBridge && n.Bridge != "" {
			fw = append(fw, firewall.Net{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal})
		}
	}
	return m.fw.Sync(fw)
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
