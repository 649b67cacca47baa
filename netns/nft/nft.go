// Package nft keeps berth's own nftables table, written over netlink
// (no nft or iptables binary). The table's rules are fixed; what changes
// per container is map elements, so publishing or unpublishing one
// container's ports is one atomic batch of elements that never rewrites
// the rest of the ruleset, and costs the same however many containers
// run. Per network there is one masquerade rule, added and removed on
// its own.
//
// The table, "ip berth":
//
//	map publish     { inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service }
//	map publish_any { inet_proto . inet_service : ipv4_addr . inet_service }
//	chain prerouting  { type nat hook prerouting priority dstnat
//	    dnat to meta l4proto . ip daddr . th dport map @publish
//	    fib daddr type local dnat to meta l4proto . th dport map @publish_any }
//	chain output      { type nat hook output priority dstnat; the same two rules }
//	set bridges     { type ifname }   (every network's bridge)
//	chain postrouting { type nat hook postrouting priority srcnat
//	    per network: masquerade out, hairpin, localhost (see SetNetwork) }
//	chain guard       { type filter hook prerouting priority raw
//	    ip daddr 127.0.0.0/8 iifname != "lo" drop }
//	chain forward     { type filter hook forward priority filter
//	    ct status dnat accept
//	    per network: isolation from the other bridges, internal (see SetNetwork) }
//
// IPv6 (dual-stack networks) has a table of its own, "ip6 berth" (Open6),
// with the same sets, chains and rules over IPv6 addresses; its guard
// drops ::1 from anywhere but lo. Keeping two tables rather than one inet
// table leaves the IPv4 table, and what a flush or reload does to it,
// exactly as it was before IPv6.
package nft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/netns/nsfile"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of berth's tables (families ip and ip6).
const TableName = "berth"

const (
	mapPublish    = "publish"
	mapPublishAny = "publish_any"
	setBridges    = "bridges"
	// netTag prefixes the user data of a network's masquerade rule,
	// which names the bridge, so the rule can be found again.
	netTag = "berth-net:"
)

// Firewall is a netlink connection to nftables in one network
// namespace.
type Firewall struct {
	c     *nftables.Conn
	table *nftables.Table
	v6    bool
}

// Open connects to nftables in the namespace at nsPath, or in the
// caller's own when nsPath is "", for berth's IPv4 table.
func Open(nsPath string) (*Firewall, error) { return openFamily(nsPath, false) }

// Open6 is Open for berth's IPv6 table.
func Open6(nsPath string) (*Firewall, error) { return openFamily(nsPath, true) }

func openFamily(nsPath string, v6 bool) (*Firewall, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if nsPath != "" {
		f, err := nsfile.Open(nsPath)
		if err != nil {
			return nil, err
		}
		// A lasting connection dials now, so the fd is needed only
		// until New returns.
		defer f.Close()
		opts = append(opts, nftables.WithNetNSFd(int(f.Fd())))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	fam := nftables.TableFamilyIPv4
	if v6 {
		fam = nftables.TableFamilyIPv6
	}
	return &Firewall{c: c, table: &nftables.Table{Name: TableName, Family: fam}, v6: v6}, nil
}

// addrLen is the length of an address of the table's family.
func (f *Firewall) addrLen() uint32 {
	if f.v6 {
		return 16
	}
	return 4
}

// addrBytes is a as the table's family has it, or false.
func (f *Firewall) addrBytes(a netip.Addr) ([]byte, bool) {
	if f.v6 {
		if !a.Is6() || a.Is4In6() {
			return nil, false
		}
		b := a.As16()
		return b[:], true
	}
	if !a.Is4() {
		return nil, false
	}
	b := a.As4()
	return b[:], true
}

// loopback is what the guard keeps to lo.
func (f *Firewall) loopback() netip.Prefix {
	if f.v6 {
		return netip.MustParsePrefix("::1/128")
	}
	return netip.MustParsePrefix("127.0.0.0/8")
}

// Payload offsets in the network header.
func (f *Firewall) saddrOff() uint32 {
	if f.v6 {
		return 8
	}
	return 12
}

func (f *Firewall) daddrOff() uint32 {
	if f.v6 {
		return 24
	}
	return 16
}

// Close closes the netlink connection.
func (f *Firewall) Close() error { return f.c.CloseLasting() }

func (f *Firewall) flush(what string) error {
	if err := f.c.Flush(); err != nil {
		return fmt.Errorf("nftables: %s: %w", what, err)
	}
	return nil
}

var (
	publishKey    = mustConcat(nftables.TypeInetProto, nftables.TypeIPAddr, nftables.TypeInetService)
	publishAnyKey = mustConcat(nftables.TypeInetProto, nftables.TypeInetService)
	publishData   = mustConcat(nftables.TypeIPAddr, nftables.TypeInetService)
	publishKey6   = mustConcat(nftables.TypeInetProto, nftables.TypeIP6Addr, nftables.TypeInetService)
	publishData6  = mustConcat(nftables.TypeIP6Addr, nftables.TypeInetService)
)

func mustConcat(types ...nftables.SetDatatype) nftables.SetDatatype {
	t, err := nftables.ConcatSetType(types...)
	if err != nil {
		panic(err)
	}
	return t
}

func (f *Firewall) bridgeSet() *nftables.Set {
	return &nftables.Set{Table: f.table, Name: setBridges, KeyType: nftables.TypeIFName}
}

// fixedRules are the rules every table has, per chain.
func (f *Firewall) fixedRules(pub, any *nftables.Set) map[string][][]expr.Any {
	return map[string][][]expr.Any{
		"prerouting": f.dnatRules(pub, any),
		"output":     f.dnatRules(pub, any),
		// route_localnet on a bridge lets the host's own 127.0.0.1
		// reach a container; it would also let a packet for 127.0.0.1
		// from another machine be DNATed to one (moby #41872). No
		// packet for 127/8 (::1) may come from anywhere but lo.
		"guard": {concat(f.addrIn(f.daddrOff(), f.loopback()), iif(expr.CmpOpNeq, "lo"), drop())},
		// Published ports are the host's: reachable from other
		// networks too, past the isolation rules below this one.
		"forward": {concat(ctDNAT(), []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}})},
	}
}

func (f *Firewall) maps() (pub, any *nftables.Set) {
	key, data := publishKey, publishData
	if f.v6 {
		key, data = publishKey6, publishData6
	}
	pub = &nftables.Set{Table: f.table, Name: mapPublish, IsMap: true, Concatenation: true, KeyType: key, DataType: data}
	any = &nftables.Set{Table: f.table, Name: mapPublishAny, IsMap: true, Concatenation: true, KeyType: publishAnyKey, DataType: data}
	return pub, any
}

// Registers, in nftables' 32-bit numbering: a concatenation takes one
// per field.
const (
	reg0 = 8 + iota
	reg1
)

// dnatRules are the prerouting and output rules: look the packet up in
// the maps and DNAT to the address and port found. An address takes
// addrLen/4 registers.
func (f *Firewall) dnatRules(pub, any *nftables.Set) [][]expr.Any {
	words := f.addrLen() / 4
	l4 := &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg0}
	dport := func(reg uint32) expr.Any {
		return &expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2, DestRegister: reg}
	}
	daddr := &expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOff(), Len: f.addrLen(), DestRegister: reg1}
	family := uint32(unix.NFPROTO_IPV4)
	if f.v6 {
		family = unix.NFPROTO_IPV6
	}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: family, RegAddrMin: reg0, RegProtoMin: reg0 + words, Specified: true}
	local := make([]byte, 4)
	binary.NativeEndian.PutUint32(local, unix.RTN_LOCAL)
	return [][]expr.Any{
		{l4, daddr, dport(reg1 + words),
			&expr.Lookup{SourceRegister: reg0, DestRegister: reg0, IsDestRegSet: true, SetName: pub.Name, SetID: pub.ID},
			nat},
		{&expr.Fib{Register: reg0, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: local},
			l4, dport(reg1),
			&expr.Lookup{SourceRegister: reg0, DestRegister: reg0, IsDestRegSet: true, SetName: any.Name, SetID: any.ID},
			nat},
	}
}

// Ensure makes berth's table exactly as it should be: when it is missing
// (a flushed ruleset) or damaged, it is made anew, empty of networks and
// published ports, and recreated is true so the caller puts those back
// (AddNetwork, Publish). An intact table is left alone. Ensure is
// idempotent.
func (f *Firewall) Ensure() (recreated bool, err error) {
	ok, err := f.intact()
	if err != nil || ok {
		return false, err
	}
	if _, err := f.c.ListTableOfFamily(TableName, f.table.Family); err == nil {
		f.c.DelTable(f.table)
	}
	f.c.AddTable(f.table)
	pub, any := f.maps()
	if err := f.c.AddSet(pub, nil); err != nil {
		return false, fmt.Errorf("nftables: map %s: %w", pub.Name, err)
	}
	if err := f.c.AddSet(any, nil); err != nil {
		return false, fmt.Errorf("nftables: map %s: %w", any.Name, err)
	}
	if err := f.c.AddSet(f.bridgeSet(), nil); err != nil {
		return false, fmt.Errorf("nftables: set %s: %w", setBridges, err)
	}
	fixed := f.fixedRules(pub, any)
	for _, ch := range f.chains() {
		f.c.AddChain(ch)
		for _, exprs := range fixed[ch.Name] {
			f.c.AddRule(&nftables.Rule{Table: f.table, Chain: ch, Exprs: exprs})
		}
	}
	if err := f.flush("create table " + TableName); err != nil {
		return false, err
	}
	return true, nil
}

func (f *Firewall) chains() []*nftables.Chain {
	return []*nftables.Chain{
		{Name: "prerouting", Table: f.table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: "output", Table: f.table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		{Name: "postrouting", Table: f.table, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: "guard", Table: f.table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw},
		{Name: "forward", Table: f.table, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter},
	}
}

// intact says whether the table has both maps and its chains with their
// fixed rules.
func (f *Firewall) intact() (bool, error) {
	if _, err := f.c.ListTableOfFamily(TableName, f.table.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("nftables: list table %s: %w", TableName, err)
	}
	for _, name := range []string{mapPublish, mapPublishAny, setBridges} {
		if _, err := f.c.GetSetByName(f.table, name); err != nil {
			return false, nil
		}
	}
	for _, ch := range f.chains() {
		rules, err := f.c.GetRules(f.table, ch)
		if err != nil {
			return false, nil
		}
		fixed := 0
		for _, r := range rules {
			if len(r.UserData) == 0 {
				fixed++
			}
		}
		if fixed != len(f.fixedRules(f.maps())[ch.Name]) {
			return false, nil
		}
	}
	return true, nil
}

// Delete removes berth's table and everything in it; a missing table is
// no error.
func (f *Firewall) Delete() error {
	if _, err := f.c.ListTableOfFamily(TableName, f.table.Family); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("nftables: list table %s: %w", TableName, err)
	}
	f.c.DelTable(f.table)
	return f.flush("delete table " + TableName)
}

// Network is what the table knows of one network: its bridge, its
// subnet, and whether it is internal (no traffic in or out through the
// host, only among its own containers).
type Network struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// AddNetwork adds a network that may talk to the world: see SetNetwork.
func (f *Firewall) AddNetwork(bridge string, subnet netip.Prefix) error {
	return f.SetNetwork(Network{Bridge: bridge, Subnet: subnet})
}

// SetNetwork puts the rules of one network in place, replacing any it
// had, in one batch:
//
//	postrouting: ip saddr <subnet> oifname != <bridge> masquerade      (not internal)
//	             ip saddr <subnet> oifname <bridge> ct status dnat masquerade
//	                 (hairpin: a container reaching a published port of its own network
//	                 must see the reply come from the address it asked)
//	             ip saddr 127.0.0.0/8 oifname <bridge> masquerade
//	                 (the host's 127.0.0.1 published ports; the bridge has route_localnet)
//	forward:     iifname <bridge> oifname @bridges oifname != <bridge> drop  (isolation)
//	             internal, first in the chain: iifname <bridge> oifname != <bridge> drop,
//	                                           oifname <bridge> iifname != <bridge> drop
func (f *Firewall) SetNetwork(n Network) error {
	if _, ok := f.addrBytes(n.Subnet.Addr()); !ok || n.Subnet != n.Subnet.Masked() {
		return fmt.Errorf("network %s: %v: want an %s subnet", n.Bridge, n.Subnet, f.familyName())
	}
	if n.Bridge == "" || len(n.Bridge) >= unix.IFNAMSIZ {
		return fmt.Errorf("network: bridge name %q", n.Bridge)
	}
	if err := f.queueRemove(n.Bridge); err != nil {
		return err
	}
	ch := f.chains()
	post, fwd := ch[2], ch[4]
	tag := func(kind string) []byte { return []byte(netTag + n.Bridge + "/" + kind) }
	bridges := f.bridgeSet()
	if err := f.c.SetAddElements(bridges, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
		return fmt.Errorf("nftables: bridges: %w", err)
	}
	lo := f.loopback()
	if !n.Internal {
		f.c.AddRule(&nftables.Rule{Table: f.table, Chain: post, UserData: tag("masq"), Exprs: concat(
			f.saddrIn(n.Subnet), oif(expr.CmpOpNeq, n.Bridge), []expr.Any{&expr.Masq{}})})
	}
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: post, UserData: tag("hairpin"), Exprs: concat(
		f.saddrIn(n.Subnet), oif(expr.CmpOpEq, n.Bridge), ctDNAT(), []expr.Any{&expr.Masq{}})})
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: post, UserData: tag("localhost"), Exprs: concat(
		f.saddrIn(lo), oif(expr.CmpOpEq, n.Bridge), []expr.Any{&expr.Masq{}})})
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: fwd, UserData: tag("isolate"), Exprs: concat(
		iif(expr.CmpOpEq, n.Bridge),
		[]expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: bridges.Name, SetID: bridges.ID}},
		oif(expr.CmpOpNeq, n.Bridge), drop())})
	if n.Internal {
		// Inserted at the head: before the rule that lets published
		// ports through, so an internal network has no way out at all.
		f.c.InsertRule(&nftables.Rule{Table: f.table, Chain: fwd, UserData: tag("internal-out"), Exprs: concat(
			iif(expr.CmpOpEq, n.Bridge), oif(expr.CmpOpNeq, n.Bridge), drop())})
		f.c.InsertRule(&nftables.Rule{Table: f.table, Chain: fwd, UserData: tag("internal-in"), Exprs: concat(
			oif(expr.CmpOpEq, n.Bridge), iif(expr.CmpOpNeq, n.Bridge), drop())})
	}
	return f.flush("rules of network " + n.Bridge)
}

// RemoveNetwork deletes the rules of bridge, if any, in one batch.
func (f *Firewall) RemoveNetwork(bridge string) error {
	if err := f.queueRemove(bridge); err != nil {
		return err
	}
	return f.flush("remove rules of network " + bridge)
}

// queueRemove adds to the pending batch the deletion of bridge's rules
// and its element of @bridges.
func (f *Firewall) queueRemove(bridge string) error {
	rules, err := f.networkRules(bridge)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if err := f.c.DelRule(r); err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
	}
	elems, err := f.c.GetSetElements(f.bridgeSet())
	if err != nil {
		return fmt.Errorf("nftables: elements of %s: %w", setBridges, err)
	}
	for _, e := range elems {
		if bytes.Equal(e.Key, ifname(bridge)) {
			if err := f.c.SetDeleteElements(f.bridgeSet(), []nftables.SetElement{{Key: ifname(bridge)}}); err != nil {
				return fmt.Errorf("nftables: bridges: %w", err)
			}
		}
	}
	return nil
}

// networkRules are the rules tagged with bridge, in every chain.
func (f *Firewall) networkRules(bridge string) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, ch := range f.chains() {
		rules, err := f.c.GetRules(f.table, ch)
		if err != nil {
			return nil, fmt.Errorf("nftables: rules of %s %s: %w", TableName, ch.Name, err)
		}
		for _, r := range rules {
			if bytes.HasPrefix(r.UserData, []byte(netTag+bridge+"/")) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func (f *Firewall) familyName() string {
	if f.v6 {
		return "IPv6"
	}
	return "IPv4"
}

func (f *Firewall) saddrIn(p netip.Prefix) []expr.Any { return f.addrIn(f.saddrOff(), p) }

// addrIn matches the address at offset of the network header against
// prefix p (of the table's family).
func (f *Firewall) addrIn(offset uint32, p netip.Prefix) []expr.Any {
	n := f.addrLen()
	a, _ := f.addrBytes(p.Addr())
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n, DestRegister: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: m, Xor: make([]byte, n)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a},
	}
}

func oif(op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(name)}}
}

func iif(op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(name)}}
}

func drop() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}} }

// ctDNAT matches a connection whose destination was NATed (a published
// port).
func ctDNAT() []expr.Any {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, 0x20) // IPS_DST_NAT
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

// ifname is an interface name as the kernel compares it: NUL-padded to
// IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Port is one published port: traffic for Proto to HostAddr:HostPort
// goes to Addr:Port. An invalid or unspecified HostAddr means every
// local address of the host.
type Port struct {
	Proto    string // "tcp" or "udp"
	HostAddr netip.Addr
	HostPort uint16
	Addr     netip.Addr
	Port     uint16
}

func (p Port) String() string {
	return fmt.Sprintf("%s:%d/%s -> %s:%d", p.HostAddr, p.HostPort, p.Proto, p.Addr, p.Port)
}

func (p Port) anyAddr() bool { return !p.HostAddr.IsValid() || p.HostAddr.IsUnspecified() }

// element encodes p as a map element; every field of a concatenation
// takes a whole number of 32-bit words.
func (f *Firewall) element(p Port) (nftables.SetElement, bool, error) {
	var proto byte
	switch p.Proto {
	case "tcp":
		proto = unix.IPPROTO_TCP
	case "udp":
		proto = unix.IPPROTO_UDP
	default:
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: protocol %q: want tcp or udp", p, p.Proto)
	}
	addr, ok := f.addrBytes(p.Addr)
	host, hostOK := f.addrBytes(p.HostAddr)
	if !ok || (p.HostAddr.IsValid() && !p.HostAddr.IsUnspecified() && !hostOK) {
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: want %s addresses", p, f.familyName())
	}
	if p.HostPort == 0 || p.Port == 0 {
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: port 0", p)
	}
	word := func(b ...byte) []byte { return append(b, make([]byte, 4-len(b))...) }
	port := func(n uint16) []byte { return word(byte(n>>8), byte(n)) }
	key := word(proto)
	if !p.anyAddr() {
		key = append(key, host...)
	}
	key = append(key, port(p.HostPort)...)
	val := append(append([]byte{}, addr...), port(p.Port)...)
	return nftables.SetElement{Key: key, Val: val}, p.anyAddr(), nil
}

// Publish adds ports (typically one container's) in one atomic batch.
// A port already published to another destination is an error and
// nothing is added.
func (f *Firewall) Publish(ports []Port) error {
	return f.elements(ports, true)
}

// Unpublish removes ports in one atomic batch; the rest of the table is
// untouched. Ports not published are skipped.
func (f *Firewall) Unpublish(ports []Port) error {
	published, err := f.Published()
	if err != nil {
		return err
	}
	var present []Port
	for _, p := range ports {
		for _, q := range published {
			if p.Proto == q.Proto && p.anyAddr() == q.anyAddr() && (p.anyAddr() || p.HostAddr == q.HostAddr) && p.HostPort == q.HostPort {
				present = append(present, p)
				break
			}
		}
	}
	return f.elements(present, false)
}

func (f *Firewall) elements(ports []Port, add bool) error {
	if len(ports) == 0 {
		return nil
	}
	pub, any := f.maps()
	var pubElems, anyElems []nftables.SetElement
	for _, p := range ports {
		e, isAny, err := f.element(p)
		if err != nil {
			return err
		}
		if isAny {
			anyElems = append(anyElems, e)
		} else {
			pubElems = append(pubElems, e)
		}
	}
	op := f.c.SetDeleteElements
	what := "unpublish"
	if add {
		op = f.c.SetAddElements
		what = "publish"
	}
	for _, x := range []struct {
		s *nftables.Set
		e []nftables.SetElement
	}{{pub, pubElems}, {any, anyElems}} {
		if len(x.e) == 0 {
			continue
		}
		if err := op(x.s, x.e); err != nil {
			return fmt.Errorf("nftables: %s: %w", what, err)
		}
	}
	// Both maps change in the one batch Flush sends: all or nothing.
	return f.flush(what)
}

// Published lists the published ports.
func (f *Firewall) Published() ([]Port, error) {
	var out []Port
	pub, any := f.maps()
	for _, s := range []*nftables.Set{pub, any} {
		elems, err := f.c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: elements of %s: %w", s.Name, err)
		}
		for _, e := range elems {
			p, err := f.decode(e, s == any)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func (f *Firewall) decode(e nftables.SetElement, any bool) (Port, error) {
	n := int(f.addrLen())
	want := 8 + n
	if any {
		want = 8
	}
	if len(e.Key) != want || len(e.Val) != n+4 {
		return Port{}, fmt.Errorf("nftables: malformed element in %s", TableName)
	}
	var p Port
	switch e.Key[0] {
	case unix.IPPROTO_TCP:
		p.Proto = "tcp"
	case unix.IPPROTO_UDP:
		p.Proto = "udp"
	default:
		p.Proto = fmt.Sprint(e.Key[0])
	}
	rest := e.Key[4:]
	if !any {
		p.HostAddr, _ = netip.AddrFromSlice(rest[:n])
		rest = rest[n:]
	}
	p.HostPort = binary.BigEndian.Uint16(rest[:2])
	p.Addr, _ = netip.AddrFromSlice(e.Val[:n])
	p.Port = binary.BigEndian.Uint16(e.Val[n : n+2])
	return p, nil
}

// HasNetwork says whether bridge has its rules in the table.
func (f *Firewall) HasNetwork(bridge string) (bool, error) {
	r, err := f.networkRules(bridge)
	return len(r) > 0, err
}
