package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/dns"
	"github.com/berth-dev/berth/internal/runtime"
)

// Networks is the network manager of the engine's root. Its bridge, nft
// table and address pool can be moved aside with $BERTH_BRIDGE,
// $BERTH_NFT_TABLE and $BERTH_SUBNET_POOL (tests do, so that roots side by
// side never share a bridge).
func (e *Engine) Networks() (*network.Manager, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	if e.net == nil {
		m, err := network.Open(network.EnvConfig(e.opts.Root))
		if err != nil {
			return nil, err
		}
		e.net = m
	}
	return e.net, nil
}

// bridgedNetwork names the network the container joins through a veth:
// docker's "default"/"bridge" or a user-defined one; "" for none, host
// and container:NAME, which need no network work at all.
func bridgedNetwork(hc *container.HostConfig) string {
	mode := string(hc.NetworkMode)
	switch {
	case mode == "" || mode == "default" || mode == "bridge":
		return network.DefaultName
	case mode == "none" || mode == "host" || strings.HasPrefix(mode, "container:"):
		return ""
	}
	return mode
}

// connect puts the container whose init is pid on its network: a veth into
// the bridge, an address, published ports; then its /etc/hosts and
// resolv.conf say so.
func (m *monitorState) connect(ctx context.Context, rec *store.Container, bundle string, pid int) error {
	name := bridgedNetwork(rec.HostConfig)
	if name == "" {
		return nil
	}
	e := m.e
	mgr, err := e.Networks()
	if err != nil {
		return err
	}
	opts := network.AttachOptions{Name: rec.Name, Hostname: hostnameOf(rec), PortBindings: publishedPorts(rec)}
	if rec.Config != nil && rec.Config.Hostname != "" {
		opts.Aliases = append(opts.Aliases, rec.Config.Hostname)
	}
	if ns := rec.Networking; ns != nil {
		opts.IP, opts.Aliases = ns.IP, append(opts.Aliases, ns.Aliases...)
		opts.MAC = ns.MAC
	}
	ep, err := mgr.Attach(ctx, name, rec.ID, fmt.Sprintf("/proc/%d/ns/net", pid), opts)
	if err != nil {
		return err
	}
	if err := addHostsEntry(filepath.Join(bundle, "hosts"), ep.IP(), hostnameOf(rec), rec.Name); err != nil {
		_ = mgr.Detach(ctx, rec.ID)
		return err
	}
	if name != network.DefaultName {
		// User-defined networks resolve their containers' names: the
		// monitor answers DNS on the network's gateway.
		if err := m.serveDNS(rec, ep, filepath.Join(bundle, "resolv.conf")); err != nil {
			_ = mgr.Detach(ctx, rec.ID)
			return err
		}
	}
	return nil
}

// serveDNS registers the container's names with the monitor's DNS server,
// listening on the network's gateway, and points its resolv.conf there.
func (m *monitorState) serveDNS(rec *store.Container, ep *network.Endpoint, resolvPath string) error {
	m.dnsMu.Lock()
	defer m.dnsMu.Unlock()
	if m.dns == nil {
		servers, _, _ := hostResolvConf()
		m.dns = dns.NewServer(servers)
		m.dnsNets = map[string]bool{}
	}
	if !m.dnsNets[ep.NetworkName] {
		if err := m.dns.Listen(ep.NetworkName, ep.Gateway.String()); err != nil {
			return fmt.Errorf("DNS for network %s: %w", ep.NetworkName, err)
		}
		m.dnsNets[ep.NetworkName] = true
	}
	names := dedupe(append([]string{rec.Name, ShortID(rec.ID), hostnameOf(rec)}, ep.Aliases...))
	m.dns.SetEndpoint(ep.NetworkName, dns.Endpoint{Container: rec.ID, Names: names, IPs: []netip.Addr{ep.IP()}})
	if len(rec.HostConfig.DNS) > 0 {
		// --dns: the container's other names go to its own servers.
		var ups []string
		for _, a := range rec.HostConfig.DNS {
			ups = append(ups, a.String())
		}
		m.dns.SetClientUpstreams(ep.IP(), ups)
		if m.dnsClients == nil {
			m.dnsClients = map[string][]netip.Addr{}
		}
		m.dnsClients[rec.ID] = append(m.dnsClients[rec.ID], ep.IP())
	}
	if resolvPath == "" {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nameserver %s\n", ep.Gateway)
	for _, line := range strings.Split(resolvConf(rec.HostConfig), "\n") {
		if strings.HasPrefix(line, "search ") || strings.HasPrefix(line, "options ") {
			b.WriteString(line + "\n")
		}
	}
	// In place: the file is bind-mounted already.
	f, err := os.OpenFile(resolvPath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// refreshDNS re-registers a running container's names on every
// user-defined network it is on (after network connect or disconnect).
func (m *monitorState) refreshDNS(id string) {
	rec, err := m.e.containers.Get(id)
	if err != nil {
		return
	}
	m.forgetDNS(rec)
	if !rec.Running() {
		return
	}
	mgr, err := m.e.Networks()
	if err != nil {
		return
	}
	eps, err := mgr.ContainerEndpoints(rec.ID)
	if err != nil {
		return
	}
	for i := range eps {
		if eps[i].NetworkName == network.DefaultName {
			continue
		}
		resolv := filepath.Join(m.e.bundleDir(rec.ID), "resolv.conf")
		if eps[i].IfName != "eth0" {
			resolv = "" // the first network's server stays the resolver
		}
		_ = m.serveDNS(rec, &eps[i], resolv)
	}
}

// forgetDNS drops the container's names.
func (m *monitorState) forgetDNS(rec *store.Container) {
	m.dnsMu.Lock()
	defer m.dnsMu.Unlock()
	if m.dns == nil {
		return
	}
	for n := range m.dnsNets {
		m.dns.RemoveEndpoint(n, rec.ID)
	}
	for _, ip := range m.dnsClients[rec.ID] {
		m.dns.SetClientUpstreams(ip, nil)
	}
	delete(m.dnsClients, rec.ID)
}

func hostnameOf(rec *store.Container) string {
	if rec.Config != nil && rec.Config.Hostname != "" {
		return rec.Config.Hostname
	}
	return ShortID(rec.ID)
}

// publishedPorts is -p, and with -P every exposed port on a free host port.
func publishedPorts(rec *store.Container) mobynet.PortMap {
	out := mobynet.PortMap{}
	for p, b := range rec.HostConfig.PortBindings {
		out[p] = b
	}
	if rec.HostConfig.PublishAllPorts {
		for p := range rec.Config.ExposedPorts {
			if _, ok := out[p]; !ok {
				out[p] = []mobynet.PortBinding{{}}
			}
		}
		if rec.ImageConfig != nil {
			for s := range rec.ImageConfig.ExposedPorts {
				p, err := mobynet.ParsePort(s)
				if err != nil {
					continue
				}
				if _, ok := out[p]; !ok {
					out[p] = []mobynet.PortBinding{{}}
				}
			}
		}
	}
	return out
}

// addHostsEntry appends "IP hostname name" to the container's hosts file,
// in place (it is bind-mounted already).
func addHostsEntry(path string, ip netip.Addr, names ...string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s\t%s\n", ip, strings.Join(dedupe(names), " "))
	return err
}

func dedupe(list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// disconnect takes the container off its networks: veth, address, rules.
// Its processes are gone: the kernel removes the veth with the namespace
// (deleting it here would cost tens of ms on every exit); the rules and
// the address go now.
func (e *Engine) disconnect(rec *store.Container) {
	if bridgedNetwork(rec.HostConfig) == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(e.opts.Root, "network")); err != nil {
		return
	}
	mgr, err := e.Networks()
	if err != nil {
		return
	}
	_ = mgr.Release(context.Background(), rec.ID)
}

// Connect attaches a running container to one more network (network
// connect).
func (e *Engine) Connect(ctx context.Context, netName, ref string, opts network.AttachOptions) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	if !rec.Running() || rec.State.Pid == 0 {
		return errdefs.Conflict(fmt.Errorf("container %s is not running", rec.Name))
	}
	mgr, err := e.Networks()
	if err != nil {
		return err
	}
	if opts.Name == "" {
		opts.Name = rec.Name
	}
	opts.Hostname = hostnameOf(rec)
	ep, err := mgr.Attach(ctx, netName, rec.ID, fmt.Sprintf("/proc/%d/ns/net", rec.State.Pid), opts)
	if err != nil {
		return err
	}
	if err := addHostsEntry(filepath.Join(e.bundleDir(rec.ID), "hosts"), ep.IP(), hostnameOf(rec), rec.Name); err != nil {
		return err
	}
	e.refreshMonitorDNS(rec.ID)
	return nil
}

// refreshMonitorDNS asks the monitor to re-register the container's names.
func (e *Engine) refreshMonitorDNS(id string) {
	if conn, _, err := e.request(monitor.Request{Op: "dns", ID: id}); err == nil {
		conn.Close()
	}
}

// Disconnect takes a container off one network (network disconnect).
func (e *Engine) Disconnect(ctx context.Context, netName, ref string) error {
	rec, err := e.Get(ref)
	if err != nil {
		return err
	}
	mgr, err := e.Networks()
	if err != nil {
		return err
	}
	if err := mgr.DetachNetwork(ctx, netName, rec.ID); err != nil {
		return err
	}
	e.refreshMonitorDNS(rec.ID)
	return nil
}

// reconcileNetworks drops what a crash left: veths, rules and leases of
// containers that no longer run.
func (m *monitorState) reconcileNetworks() {
	all, err := m.e.containers.List()
	if err != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(m.e.opts.Root, "network")); err != nil {
		return // no network ever made under this root
	}
	mgr, err := m.e.Networks()
	if err != nil {
		return
	}
	_ = mgr.ReconcileFunc(context.Background(), func(id string) bool {
		c, err := m.e.containers.Get(id)
		return err == nil && c.Running() && runtime.ProcessAlive(c.State.Pid, c.State.PidStart)
	})
	// Containers adopted from an earlier monitor get their names back.
	for _, c := range all {
		if !c.Running() || bridgedNetwork(c.HostConfig) == "" || bridgedNetwork(c.HostConfig) == network.DefaultName {
			continue
		}
		eps, err := mgr.ContainerEndpoints(c.ID)
		if err != nil {
			continue
		}
		for i := range eps {
			_ = m.serveDNS(c, &eps[i], filepath.Join(m.e.bundleDir(c.ID), "resolv.conf"))
		}
	}
}

// networkSettings is inspect's NetworkSettings: the endpoints the network
// manager holds for the container, as docker shows them.
func (e *Engine) networkSettings(rec *store.Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*mobynet.EndpointSettings{}, Ports: mobynet.PortMap{}}
	name := bridgedNetwork(rec.HostConfig)
	mode := string(rec.HostConfig.NetworkMode)
	switch {
	case name == "" && !strings.HasPrefix(mode, "container:"):
		ns.Networks[mode] = &mobynet.EndpointSettings{}
		return ns
	case name == "":
		return ns
	}
	if rec.Running() && rec.State.Pid > 0 {
		ns.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", rec.State.Pid)
	}
	for p := range publishedPorts(rec) {
		ns.Ports[p] = nil
	}
	if _, err := os.Stat(filepath.Join(e.opts.Root, "network")); err != nil {
		return ns
	}
	mgr, err := e.Networks()
	if err != nil {
		return ns
	}
	eps, err := mgr.ContainerEndpoints(rec.ID)
	if err != nil {
		return ns
	}
	for _, ep := range eps {
		es := &mobynet.EndpointSettings{
			NetworkID:   ep.NetworkID,
			EndpointID:  ep.EndpointID,
			Gateway:     ep.Gateway,
			IPAddress:   ep.IP(),
			IPPrefixLen: ep.Address.Bits(),
			Aliases:     ep.Aliases,
			DNSNames:    dedupe(append([]string{rec.Name, ShortID(rec.ID)}, ep.Aliases...)),
		}
		if mac, err := net.ParseMAC(ep.MAC); err == nil {
			es.MacAddress = mobynet.HardwareAddr(mac)
		}
		ns.Networks[ep.NetworkName] = es
		for p, b := range network.PortMap(ep.Ports) {
			ns.Ports[p] = append(ns.Ports[p], b...)
		}
	}
	if len(eps) == 0 {
		ns.Networks[name] = &mobynet.EndpointSettings{}
	}
	return ns
}
