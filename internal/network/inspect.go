package network

import (
	"maps"
	"net"

	mobynet "github.com/moby/moby/api/types/network"
)

// Inspect is n as docker's `network inspect` shows it, with eps (the
// endpoints on n) as its Containers.
func Inspect(n *Network, eps []Endpoint) mobynet.Inspect {
	out := mobynet.Inspect{
		Network: mobynet.Network{
			Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
			EnableIPv4: n.Driver == DriverBridge,
			IPAM:       mobynet.IPAM{Driver: "default"},
			Internal:   n.Internal,
			Options:    maps.Clone(n.Options),
			Labels:     maps.Clone(n.Labels),
		},
		Containers: map[string]mobynet.EndpointResource{},
	}
	if n.Options == nil {
		out.Options = map[string]string{}
	}
	if n.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = []mobynet.IPAMConfig{{Subnet: n.Subnet, Gateway: n.Gateway}}
	}
	if n.Name != DefaultName && n.Driver == DriverBridge {
		out.IPAM.Options = map[string]string{}
	}
	for _, e := range eps {
		hw, _ := net.ParseMAC(e.MAC)
		out.Containers[e.ContainerID] = mobynet.EndpointResource{
			Name: e.ContainerName, EndpointID: e.EndpointID, MacAddress: mobynet.HardwareAddr(hw), IPv4Address: e.Address,
		}
	}
	return out
}
