package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
)

// networkCmd is `berth network`: create, ls, inspect, rm, prune, connect
// and disconnect.
func networkCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "network COMMAND", Short: "Manage networks", Args: cobra.ArbitraryArgs, RunE: group}
	cmd.AddCommand(networkCreateCmd(g), networkLsCmd(g), networkInspectCmd(g), networkRmCmd(g), networkPruneCmd(g),
		networkConnectCmd(g), networkDisconnectCmd(g))
	return cmd
}

// openNetworks opens the network store under --root, with the same host
// object names the engine uses.
func (g *globalOptions) openNetworks() (*network.Manager, error) {
	return network.Open(network.EnvConfig(g.root))
}

// connectNetwork and disconnectNetwork are what `network connect` and
// `disconnect` need from the engine: find the container (by name or ID),
// attach a running one through its namespace (or record the network for a
// stopped one), or detach it. The engine's wiring sets them; while they
// are nil both commands say they are not supported yet.
var (
	connectNetwork    func(ctx context.Context, g *globalOptions, netName, container string, opts network.AttachOptions) error
	disconnectNetwork func(ctx context.Context, g *globalOptions, netName, container string, force bool) error
)

func networkCreateCmd(g *globalOptions) *cobra.Command {
	var driver, scope string
	var subnets, gateways, ipRanges []string
	var internal, ipv6, attachable bool
	labels := volumeKVFlag{what: "label"}
	opts := volumeKVFlag{what: "opt"}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(subnets) > 1:
				return errdefs.NotImplemented(errors.New("several subnets per network are not supported yet"))
			case len(gateways) > 1:
				return errdefs.InvalidArgument(errors.New("cannot configure multiple gateways for one subnet"))
			case len(ipRanges) > 0:
				return errdefs.NotImplemented(errors.New("--ip-range is not supported yet"))
			case ipv6:
				return errdefs.NotImplemented(errors.New("IPv6 networks are not supported yet"))
			case scope != "" && scope != "local":
				return errdefs.InvalidArgument(fmt.Errorf("scope %q is not supported: berth networks are local", scope))
			}
			o := network.CreateOptions{Name: args[0], Driver: driver, Internal: internal, Labels: labels.all(), Options: opts.all()}
			if len(subnets) == 1 {
				o.Subnet = subnets[0]
			}
			if len(gateways) == 1 {
				o.Gateway = gateways[0]
			}
			m, err := g.openNetworks()
			if err != nil {
				return err
			}
			n, err := m.Create(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Println(n.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", network.DriverBridge, "Driver to manage the Network")
	fl.StringArrayVar(&subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	fl.StringArrayVar(&gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	fl.StringArrayVar(&ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	fl.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fl.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 networking")
	fl.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fl.StringVar(&scope, "scope", "", "Control the network's scope")
	fl.Var(&labels, "label", "Set metadata on a network")
	fl.VarP(&opts, "opt", "o", "Set driver specific options")
	return cmd
}

const networksTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

func networksHeader() map[string]string {
	return map[string]string{
		"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
		"IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
	}
}

func networkRow(n *network.Network, noTrunc bool) map[string]string {
	id := n.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	labels := make([]string, 0, len(n.Labels))
	for k, v := range n.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	return map[string]string{
		"ID": id, "Name": n.Name, "Driver": n.Driver, "Scope": "local",
		"IPv4": strconv.FormatBool(n.Driver == network.DriverBridge), "IPv6": "false",
		"Internal": strconv.FormatBool(n.Internal), "Labels": strings.Join(labels, ","),
		"CreatedAt": n.Created.Local().Format("2006-01-02 15:04:05.999999999 -0700 MST"),
	}
}

func networkLsCmd(g *globalOptions) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := network.ParseFilters(filters)
			if err != nil {
				return err
			}
			m, err := g.openNetworks()
			if err != nil {
				return err
			}
			nets, err := m.List()
			if err != nil {
				return err
			}
			counts := map[string]int{}
			if _, ok := f["dangling"]; ok {
				for _, n := range nets {
					eps, err := m.Endpoints(n.ID)
					if err != nil {
						return err
					}
					counts[n.ID] = len(eps)
				}
			}
			if quiet && (format == "" || format == "table") {
				format = "{{.ID}}"
			}
			out, err := newRows(os.Stdout, format, networksTable, networksHeader())
			if err != nil {
				return err
			}
			now := time.Now()
			for _, n := range nets {
				if !f.Match(n, counts[n.ID], now) {
					continue
				}
				if err := out.add(networkRow(n, noTrunc)); err != nil {
					return err
				}
			}
			return out.flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"driver=bridge\")")
	return cmd
}

func networkInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  requiresArgs(1, "network"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.openNetworks()
			if err != nil {
				return err
			}
			found := []any{}
			var errs []string
			for _, ref := range args {
				n, err := m.Get(ref)
				if err == nil {
					var eps []network.Endpoint
					if eps, err = m.Endpoints(n.ID); err == nil {
						found = append(found, network.Inspect(n, eps))
						continue
					}
				}
				errs = append(errs, err.Error())
			}
			return writeInspect(format, found, errs)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func networkRmCmd(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    requiresArgs(1, "network"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := g.openNetworks()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				err := m.Remove(cmd.Context(), ref)
				if force && errdefs.Is(err, errdefs.KindNotFound) {
					continue
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "Error: %v\n", err)
					failed = true
					continue
				}
				fmt.Println(ref)
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func networkPruneCmd(g *globalOptions) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := network.ParseFilters(filters)
			if err != nil {
				return err
			}
			if !force && !confirm("WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			m, err := g.openNetworks()
			if err != nil {
				return err
			}
			now := time.Now()
			removed, err := m.Prune(cmd.Context(), func(n *network.Network) bool { return f.Match(n, 0, now) })
			if len(removed) > 0 {
				fmt.Println("Deleted Networks:")
				for _, name := range removed {
					fmt.Println(name)
				}
				fmt.Println()
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}

func networkConnectCmd(g *globalOptions) *cobra.Command {
	var ip, ip6, mac string
	var aliases, links, linkLocal, driverOpts []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactlyArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ip6 != "" || len(links) > 0 || len(linkLocal) > 0 || len(driverOpts) > 0 {
				return errdefs.NotImplemented(errors.New("--ip6, --link, --link-local-ip and --driver-opt are not supported yet"))
			}
			opts := network.AttachOptions{Aliases: aliases, MAC: mac}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil || !a.Is4() {
					return errdefs.InvalidArgument(fmt.Errorf("invalid IPv4 address: %s", ip))
				}
				opts.IP = a
			}
			if connectNetwork == nil {
				return errdefs.NotImplemented(errors.New("network connect is not supported yet: give the network to run or create with --network"))
			}
			return connectNetwork(cmd.Context(), g, args[0], args[1], opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	fl.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	fl.StringVar(&mac, "mac-address", "", "Container MAC address (e.g., \"92:d0:c6:0a:29:33\")")
	fl.StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	fl.StringArrayVar(&links, "link", nil, "Add link to another container")
	fl.StringArrayVar(&linkLocal, "link-local-ip", nil, "Add a link-local address for the container")
	fl.StringArrayVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	return cmd
}

func networkDisconnectCmd(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactlyArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if disconnectNetwork == nil {
				return errdefs.NotImplemented(errors.New("network disconnect is not supported yet"))
			}
			return disconnectNetwork(cmd.Context(), g, args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
