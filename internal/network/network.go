// Package network holds berth's networks: the records of bridge networks,
// the IPAM that leases their addresses, and the attachment of containers to
// them (veth pairs into a Linux bridge, nftables NAT and port mappings).
// bridge/ makes the links, firewall/ writes the nftables table, dns/ answers
// names on user-defined networks.
package network

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	mobynet "github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Names of the predefined networks, as docker's.
const (
	DefaultName = "bridge" // the default bridge network, made on first use
	HostName    = "host"   // the host's network namespace: no state
	NoneName    = "none"   // a namespace with loopback only: no state
)

// Drivers, as docker names them.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
)

// Docker's driver options that berth understands on `network create -o`.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
)

// Network is one network's record.
type Network struct {
	ID       string            `json:"ID"`
	Name     string            `json:"Name"`
	Driver   string            `json:"Driver"`
	Subnet   netip.Prefix      `json:"Subnet,omitzero"`
	Gateway  netip.Addr        `json:"Gateway,omitzero"`
	Internal bool              `json:"Internal"`
	Labels   map[string]string `json:"Labels"`
	Options  map[string]string `json:"Options"`
	Created  time.Time         `json:"Created"`
	Bridge   string            `json:"Bridge,omitempty"` // the Linux bridge: berth0 for the default network
	MTU      int               `json:"MTU,omitempty"`    // 0: the bridge's default (1500)
}

// Predefined reports whether n is one of docker's three networks that
// cannot be created or removed.
func (n *Network) Predefined() bool {
	return n.Name == DefaultName || n.Name == HostName || n.Name == NoneName
}

// Endpoint is a container's attachment to one network.
type Endpoint struct {
	ContainerID   string        `json:"ContainerID"`
	ContainerName string        `json:"ContainerName,omitempty"`
	NetworkID     string        `json:"NetworkID"`
	NetworkName   string        `json:"NetworkName"`
	EndpointID    string        `json:"EndpointID"`
	Address       netip.Prefix  `json:"Address"` // the container's address with the subnet's length
	Gateway       netip.Addr    `json:"Gateway"`
	MAC           string        `json:"MAC"`
	IfName        string        `json:"IfName"` // inside the container: eth0, eth1, ...
	HostIfName    string        `json:"HostIfName"`
	Bridge        string        `json:"Bridge"`
	Aliases       []string      `json:"Aliases,omitempty"`
	Hostname      string        `json:"Hostname,omitempty"`
	Ports         []PortMapping `json:"Ports,omitempty"`
}

// IP is the endpoint's address.
func (e *Endpoint) IP() netip.Addr { return e.Address.Addr() }

// PortMapping is one published port: HostIP:HostPort on the host reaches
// the container's Port. An invalid HostIP means every host address.
type PortMapping struct {
	Proto    string     `json:"Proto"`
	HostIP   netip.Addr `json:"HostIP,omitzero"`
	HostPort uint16     `json:"HostPort"`
	Port     uint16     `json:"Port"`
}

// AttachOptions are a container's wishes for one network (docker run's
// --ip, --network-alias, --mac-address, -p and --hostname).
type AttachOptions struct {
	Name         string          // the container's name, for inspect and DNS
	IP           netip.Addr      // a specific address; invalid: the next free one
	Aliases      []string        // extra DNS names on this network
	MAC          string          // a specific MAC address; "": derived from the IP
	PortBindings mobynet.PortMap // ports to publish; HostPort "" picks a free one
	Hostname     string
}

// PortMap turns mappings back into docker's shape (NetworkSettings.Ports).
func PortMap(ports []PortMapping) mobynet.PortMap {
	out := mobynet.PortMap{}
	for _, p := range ports {
		key, ok := mobynet.PortFrom(p.Port, mobynet.IPProtocol(p.Proto))
		if !ok {
			continue
		}
		host := p.HostIP
		if !host.IsValid() {
			host = netip.IPv4Unspecified()
		}
		out[key] = append(out[key], mobynet.PortBinding{HostIP: host, HostPort: fmt.Sprint(p.HostPort)})
	}
	return out
}

// validName reports whether name may name a network: docker's rule.
func validName(name string) error {
	if name == "" {
		return errdefs.InvalidArgument(errors.New("network name must not be empty"))
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '_' || c == '.' || c == '-')
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
		}
	}
	return nil
}
