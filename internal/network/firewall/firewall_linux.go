// Package firewall writes berth's nftables table (family ip) over netlink,
// without the nft or iptables binaries: masquerade for the networks'
// egress, forwarding and isolation between bridges, and the DNAT rules of
// published ports, reachable from outside, from other containers and from
// the host itself, 127.0.0.1 included.
//
// The table holds these chains:
//
//	prerouting  nat    dstnat  local destination → jump ports
//	output      nat    -100    local destination (host's own traffic) → jump ports
//	ports       (regular)      one DNAT rule per published port, commented with its owner
//	postrouting nat    srcnat  masquerade: egress, 127.0.0.1 → container, hairpin
//	forward     filter 0       internal networks closed, bridges isolated, DNAT allowed
//	guard       filter raw     packets from a bridge for 127.0.0.0/8 dropped (route_localnet is on)
//
// Everything but ports is rewritten whole by Sync, in one transaction;
// ports changes rule by rule.
package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// DefaultTable is the table berth uses.
const DefaultTable = "berth"

// Table names the nftables table (family ip) berth owns.
type Table struct{ Name string }

// Net is what the rules need of one bridge network.
type Net struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// Port is one published port: traffic for a local HostIP (any local
// address when HostIP is invalid) and HostPort goes to IP:Port.
type Port struct {
	Proto    string
	HostIP   netip.Addr
	HostPort uint16
	IP       netip.Addr
	Port     uint16
}

const (
	chainPre   = "prerouting"
	chainOut   = "output"
	chainPorts = "ports"
	chainPost  = "postrouting"
	chainFwd   = "forward"
	chainGuard = "guard"
)

func (t Table) table() *nftables.Table {
	return &nftables.Table{Name: t.Name, Family: nftables.TableFamilyIPv4}
}

func (t Table) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: t.table()}
}

// IsMissing reports whether err says the table or a chain does not exist
// (someone flushed the ruleset, or the host rebooted): Sync repairs it.
func IsMissing(err error) bool { return errors.Is(err, unix.ENOENT) }

// Sync makes the table and its chains exist and rewrites every chain but
// ports for nets, atomically.
func (t Table) Sync(nets []Net) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	tb := c.AddTable(t.table())
	accept := nftables.ChainPolicyAccept
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		ch := c.AddChain(&nftables.Chain{Name: name, Table: tb, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
		c.FlushChain(ch)
		return ch
	}
	pre := base(chainPre, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := base(chainOut, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base(chainPost, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := base(chainFwd, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	guard := base(chainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	c.AddChain(&nftables.Chain{Name: chainPorts, Table: tb})

	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		var all []expr.Any
		for _, e := range exprs {
			all = append(all, e...)
		}
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: all})
	}
	jumpPorts := []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPorts}}
	rule(pre, localDaddr(), jumpPorts)
	rule(out, localDaddr(), jumpPorts)

	loopback := netip.MustParsePrefix("127.0.0.0/8")
	for _, n := range nets {
		// The host's 127.0.0.1 reaching a container (output DNAT): the
		// container must see a source it can answer.
		rule(post, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), saddrIn(loopback), masq())
		// Hairpin: a container reaching a port published by its own
		// network comes back through the host.
		rule(post, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), saddrIn(n.Subnet), ctStatusDNAT(), masq())
		if !n.Internal {
			rule(post, saddrIn(n.Subnet), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, n.Bridge), masq())
		}
		rule(guard, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge), daddrIn(loopback), verdict(expr.VerdictDrop))
	}
	for _, n := range nets {
		if n.Internal {
			rule(fwd, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge), ifname(unix.NFT_META_OIFNAME, expr.CmpOpNeq, n.Bridge), verdict(expr.VerdictDrop))
			rule(fwd, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), ifname(unix.NFT_META_IIFNAME, expr.CmpOpNeq, n.Bridge), verdict(expr.VerdictDrop))
		}
	}
	rule(fwd, ctStateEstablished(), verdict(expr.VerdictAccept))
	rule(fwd, ctStatusDNAT(), verdict(expr.VerdictAccept))
	for _, n := range nets {
		rule(fwd, ifname(unix.NFT_META_IIFNAME, expr.CmpOpEq, n.Bridge), ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictAccept))
	}
	// Nothing else enters a bridge: not another berth network
	// (isolation), not a routed packet from outside that was not DNATed
	// to a published port.
	for _, n := range nets {
		rule(fwd, ifname(unix.NFT_META_OIFNAME, expr.CmpOpEq, n.Bridge), verdict(expr.VerdictDrop))
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s: %w", t.Name, err)
	}
	return nil
}

// AddPorts adds the DNAT rules of ports, commented with owner, in one
// transaction: all or none.
func (t Table) AddPorts(owner string, ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	ch := t.chain(chainPorts)
	for _, p := range ports {
		exprs, err := dnatExprs(p)
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: exprs, UserData: userdata.AppendString(nil, userdata.TypeComment, owner)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("add port rules to nftables table %s: %w", t.Name, err)
	}
	return nil
}

// RemovePorts deletes the port rules whose owner match accepts, in one
// transaction, and returns how many. A missing table has none.
func (t Table) RemovePorts(match func(owner string) bool) (int, error) {
	c, err := nftables.New()
	if err != nil {
		return 0, fmt.Errorf("open nftables: %w", err)
	}
	ch := t.chain(chainPorts)
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		if IsMissing(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("list port rules of nftables table %s: %w", t.Name, err)
	}
	n := 0
	for _, r := range rules {
		if owner, _ := userdata.GetString(r.UserData, userdata.TypeComment); match(owner) {
			if err := c.DelRule(r); err != nil {
				return 0, fmt.Errorf("remove port rule: %w", err)
			}
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("remove port rules from nftables table %s: %w", t.Name, err)
	}
	return n, nil
}

// Owners lists the owner of every port rule, once per rule.
func (t Table) Owners() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	ch := t.chain(chainPorts)
	rules, err := c.GetRules(ch.Table, ch)
	if err != nil {
		if IsMissing(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list port rules of nftables table %s: %w", t.Name, err)
	}
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		owner, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		out = append(out, owner)
	}
	return out, nil
}

// Exists reports whether the table exists.
func (t Table) Exists() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("open nftables: %w", err)
	}
	if _, err := c.ListTableOfFamily(t.Name, nftables.TableFamilyIPv4); err != nil {
		if IsMissing(err) {
			return false, nil
		}
		return false, fmt.Errorf("look up nftables table %s: %w", t.Name, err)
	}
	return true, nil
}

// Delete removes the whole table; a missing one is no error.
func (t Table) Delete() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	c.DelTable(t.table())
	if err := c.Flush(); err != nil && !IsMissing(err) {
		return fmt.Errorf("delete nftables table %s: %w", t.Name, err)
	}
	return nil
}

// dnatExprs is `[ip daddr HOSTIP] meta l4proto P th dport HOSTPORT dnat
// to IP:PORT`.
func dnatExprs(p Port) ([]expr.Any, error) {
	var proto byte
	switch strings.ToLower(p.Proto) {
	case "tcp":
		proto = unix.IPPROTO_TCP
	case "udp":
		proto = unix.IPPROTO_UDP
	case "sctp":
		proto = unix.IPPROTO_SCTP
	default:
		return nil, fmt.Errorf("publish port %d: unknown protocol %q", p.HostPort, p.Proto)
	}
	if !p.IP.Is4() {
		return nil, fmt.Errorf("publish port %d: container address %s is not IPv4", p.HostPort, p.IP)
	}
	var out []expr.Any
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		out = append(out, daddrIn(netip.PrefixFrom(p.HostIP, 32))...)
	}
	ip := p.IP.As4()
	out = append(out,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
		&expr.Immediate{Register: 1, Data: ip[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.Port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	)
	return out, nil
}

// localDaddr is `fib daddr type local`.
func localDaddr() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ifname is `meta iifname|oifname ==|!= NAME`.
func ifname(key uint32, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKey(key), Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

func saddrIn(p netip.Prefix) []expr.Any { return addrIn(12, p) }
func daddrIn(p netip.Prefix) []expr.Any { return addrIn(16, p) }

// addrIn is `ip saddr|daddr PREFIX`: the IPv4 header's address at
// offset, masked.
func addrIn(offset uint32, p netip.Prefix) []expr.Any {
	a := p.Masked().Addr().As4()
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	out := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if p.Bits() < 32 {
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
}

// ctStateEstablished is `ct state established,related`.
func ctStateEstablished() []expr.Any {
	return ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
}

// ctStatusDNAT is `ct status dnat`.
func ctStatusDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, 1<<5) } // IPS_DST_NAT

func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }
