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
//	chain postrouting { type nat hook postrouting priority srcnat
//	    ip saddr <subnet> oifname != <bridge> masquerade   (one per network) }
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

// TableName is the name of berth's table (family ip).
const TableName = "berth"

const (
	mapPublish    = "publish"
	mapPublishAny = "publish_any"
	// netTag prefixes the user data of a network's masquerade rule,
	// which names the bridge, so the rule can be found again.
	netTag = "berth-net:"
)

// Firewall is a netlink connection to nftables in one network
// namespace.
type Firewall struct {
	c     *nftables.Conn
	table *nftables.Table
}

// Open connects to nftables in the namespace at nsPath, or in the
// caller's own when nsPath is "".
func Open(nsPath string) (*Firewall, error) {
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
	return &Firewall{c: c, table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}}, nil
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
)

func mustConcat(types ...nftables.SetDatatype) nftables.SetDatatype {
	t, err := nftables.ConcatSetType(types...)
	if err != nil {
		panic(err)
	}
	return t
}

func (f *Firewall) maps() (pub, any *nftables.Set) {
	pub = &nftables.Set{Table: f.table, Name: mapPublish, IsMap: true, Concatenation: true, KeyType: publishKey, DataType: publishData}
	any = &nftables.Set{Table: f.table, Name: mapPublishAny, IsMap: true, Concatenation: true, KeyType: publishAnyKey, DataType: publishData}
	return pub, any
}

// Registers, in nftables' 32-bit numbering: a concatenation takes one
// per field.
const (
	reg0 = 8 + iota
	reg1
	reg2
)

// dnatRules are the prerouting and output rules: look the packet up in
// the maps and DNAT to the address and port found.
func dnatRules(pub, any *nftables.Set) [][]expr.Any {
	l4 := &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg0}
	dport := func(reg uint32) expr.Any {
		return &expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2, DestRegister: reg}
	}
	daddr := &expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4, DestRegister: reg1}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: reg1, Specified: true}
	local := make([]byte, 4)
	binary.NativeEndian.PutUint32(local, unix.RTN_LOCAL)
	return [][]expr.Any{
		{l4, daddr, dport(reg2),
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
	if _, err := f.c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err == nil {
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
	for _, ch := range f.chains() {
		f.c.AddChain(ch)
		if ch.Hooknum == nftables.ChainHookPostrouting {
			continue
		}
		for _, exprs := range dnatRules(pub, any) {
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
	}
}

// intact says whether the table has both maps and its chains with their
// fixed rules.
func (f *Firewall) intact() (bool, error) {
	if _, err := f.c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("nftables: list table %s: %w", TableName, err)
	}
	for _, name := range []string{mapPublish, mapPublishAny} {
		if _, err := f.c.GetSetByName(f.table, name); err != nil {
			return false, nil
		}
	}
	for _, ch := range f.chains() {
		rules, err := f.c.GetRules(f.table, ch)
		if err != nil {
			return false, nil
		}
		if ch.Hooknum != nftables.ChainHookPostrouting && len(rules) != 2 {
			return false, nil
		}
	}
	return true, nil
}

// Delete removes berth's table and everything in it; a missing table is
// no error.
func (f *Firewall) Delete() error {
	if _, err := f.c.ListTableOfFamily(TableName, nftables.TableFamilyIPv4); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("nftables: list table %s: %w", TableName, err)
	}
	f.c.DelTable(f.table)
	return f.flush("delete table " + TableName)
}

// AddNetwork masquerades traffic from subnet that leaves through another
// interface than bridge. Adding a network twice adds one rule.
func (f *Firewall) AddNetwork(bridge string, subnet netip.Prefix) error {
	if !subnet.Addr().Is4() || subnet != subnet.Masked() {
		return fmt.Errorf("masquerade %v: want an IPv4 subnet", subnet)
	}
	post := f.chains()[2]
	if r, err := f.networkRule(bridge); err != nil || r != nil {
		return err
	}
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-subnet.Bits()))
	if subnet.Bits() == 0 {
		m = []byte{0, 0, 0, 0}
	}
	net4 := subnet.Addr().As4()
	f.c.AddRule(&nftables.Rule{Table: f.table, Chain: post, UserData: []byte(netTag + bridge), Exprs: []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4, DestRegister: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: net4[:]},
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(bridge)},
		&expr.Masq{},
	}})
	return f.flush("masquerade for " + bridge)
}

// RemoveNetwork deletes the masquerade rule of bridge, if any.
func (f *Firewall) RemoveNetwork(bridge string) error {
	r, err := f.networkRule(bridge)
	if err != nil || r == nil {
		return err
	}
	if err := f.c.DelRule(r); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return f.flush("remove masquerade for " + bridge)
}

func (f *Firewall) networkRule(bridge string) (*nftables.Rule, error) {
	rules, err := f.c.GetRules(f.table, f.chains()[2])
	if err != nil {
		return nil, fmt.Errorf("nftables: rules of %s postrouting: %w", TableName, err)
	}
	for _, r := range rules {
		if bytes.Equal(r.UserData, []byte(netTag+bridge)) {
			return r, nil
		}
	}
	return nil, nil
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
func (p Port) element() (nftables.SetElement, bool, error) {
	var proto byte
	switch p.Proto {
	case "tcp":
		proto = unix.IPPROTO_TCP
	case "udp":
		proto = unix.IPPROTO_UDP
	default:
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: protocol %q: want tcp or udp", p, p.Proto)
	}
	if !p.Addr.Is4() || (p.HostAddr.IsValid() && !p.HostAddr.Is4()) {
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: want IPv4 addresses", p)
	}
	if p.HostPort == 0 || p.Port == 0 {
		return nftables.SetElement{}, false, fmt.Errorf("publish %v: port 0", p)
	}
	word := func(b ...byte) []byte { return append(b, make([]byte, 4-len(b))...) }
	port := func(n uint16) []byte { return word(byte(n>>8), byte(n)) }
	key := word(proto)
	if !p.anyAddr() {
		a := p.HostAddr.As4()
		key = append(key, a[:]...)
	}
	key = append(key, port(p.HostPort)...)
	a := p.Addr.As4()
	val := append(append([]byte{}, a[:]...), port(p.Port)...)
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
		e, isAny, err := p.element()
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
			p, err := decode(e, s == any)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func decode(e nftables.SetElement, any bool) (Port, error) {
	want := 12
	if any {
		want = 8
	}
	if len(e.Key) != want || len(e.Val) != 8 {
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
		p.HostAddr = netip.AddrFrom4([4]byte(rest[:4]))
		rest = rest[4:]
	}
	p.HostPort = binary.BigEndian.Uint16(rest[:2])
	p.Addr = netip.AddrFrom4([4]byte(e.Val[:4]))
	p.Port = binary.BigEndian.Uint16(e.Val[4:6])
	return p, nil
}
