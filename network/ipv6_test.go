package network

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// outside6 gives the outside namespace (see outside) IPv6 too: host
// 2001:db8:1::1/64 on uplink, outside 2001:db8:1::2/64, default route
// via the host.
func (e *env) outside6(out string) {
	e.t.Helper()
	nodad := func(s string) *netlink.Addr {
		a := mustAddr(s)
		a.Flags = unix.IFA_F_NODAD
		return a
	}
	h := e.handle(e.host)
	up, _ := h.LinkByName("uplink")
	mustOK(e.t, h.AddrAdd(up, nodad("2001:db8:1::1/64")))
	oh := e.handle(out)
	eth, _ := oh.LinkByName("eth0")
	mustOK(e.t, oh.AddrAdd(eth, nodad("2001:db8:1::2/64")))
	mustOK(e.t, oh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP("2001:db8:1::1")}))
}

func ip6Of(r *Result, i int) netip.Addr { return r.Endpoints[i].IP6.Addr() }

// A dual-stack network end to end over IPv6: container to container,
// names in /etc/hosts, published ports (on [::] and on the host's
// addresses, hairpin), outbound masquerade, isolation, --internal, and
// the leases and elements gone after teardown.
func TestIPv6DualStack(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	e.outside6(out)
	serve(t, out, "[2001:db8:1::2]:9999", "outside")
	v6 := e.create(CreateOpts{Name: "v6net", Subnet: "10.61.0.0/24", IPv6: true, Subnet6: "fd00:61::/64"})
	if v6.Gateway6 != netip.MustParseAddr("fd00:61::1") {
		t.Fatalf("gateway6 %v", v6.Gateway6)
	}
	e.create(CreateOpts{Name: "v6b", Subnet: "10.62.0.0/24", IPv6: true, Subnet6: "fd00:62::/64"})
	e.create(CreateOpts{Name: "inner6", Subnet: "10.63.0.0/24", IPv6: true, Subnet6: "fd00:63::/64", Internal: true})

	c1 := e.setup(Request{ID: "c1", Name: "one", Hostname: "one", Networks: []Attachment{{Network: "v6net"}}})
	c2 := e.setup(Request{ID: "c2", Name: "two", Hostname: "two", Networks: []Attachment{{Network: "v6net", Aliases: []string{"pg"}}},
		Ports: []PortBinding{{Proto: "tcp", HostPort: 8080, Port: 80}}})
	serve(t, c1.Netns, ":80", "c1")
	serve(t, c2.Netns, ":80", "c2")
	if !c2.Endpoints[0].IP6.IsValid() || !v6.Subnet6.Contains(ip6Of(c2, 0)) || c2.Endpoints[0].Gateway6 != v6.Gateway6 {
		t.Fatalf("c2 endpoint %+v: want an address of %v and gateway %v", c2.Endpoints[0], v6.Subnet6, v6.Gateway6)
	}
	// -p 8080:80 on a dual-stack network is published on 0.0.0.0 and [::].
	if len(c2.Ports) != 2 || c2.Ports[1].HostIP != netip.IPv6Unspecified() || c2.Ports[1].HostPort != 8080 {
		t.Fatalf("c2 ports %+v: want 8080 on 0.0.0.0 and [::]", c2.Ports)
	}

	// Container to container over IPv6, at once (no DAD wait).
	if peer := mustAsk(t, c1.Netns, hostport(ip6Of(c2, 0), 80), "c2"); peer != ip6Of(c1, 0).String() {
		t.Errorf("c2 saw c1 as %s, want %v", peer, ip6Of(c1, 0))
	}
	checkContains(t, c1.Files["/etc/hosts"], ip6Of(c2, 0).String()+"\ttwo pg")
	checkContains(t, c1.Files["/etc/hosts"], ipOf(c2, 0).String()+"\ttwo pg")
	checkContains(t, c2.Files["/etc/hosts"], ip6Of(c2, 0).String()+"\ttwo")
	// Published over IPv6: from the host to the bridge's address, from
	// the outside to the host's, hairpin from a container; IPv4 still.
	mustAsk(t, e.host, hostport(v6.Gateway6, 8080), "c2")
	mustAsk(t, out, "[2001:db8:1::1]:8080", "c2")
	mustAsk(t, c1.Netns, hostport(v6.Gateway6, 8080), "c2")
	mustAsk(t, c2.Netns, hostport(v6.Gateway6, 8080), "c2")
	mustAsk(t, e.host, "127.0.0.1:8080", "c2")
	// Outbound: masqueraded to the host's address.
	if peer := mustAsk(t, c1.Netns, "[2001:db8:1::2]:9999", "outside"); peer != "2001:db8:1::1" {
		t.Errorf("outside saw c1 as %s, want the masqueraded host", peer)
	}
	if got := e.sysctl("/proc/sys/net/ipv6/conf/all/forwarding"); got != "1" {
		t.Errorf("ipv6 forwarding %q", got)
	}

	// Isolation between networks, and --internal, over IPv6.
	b := e.setup(Request{ID: "b", Networks: []Attachment{{Network: "v6b"}}})
	mustFail(t, b.Netns, hostport(ip6Of(c2, 0), 80), "network isolation over IPv6")
	mustAsk(t, b.Netns, hostport(netip.MustParseAddr("fd00:62::1"), 8080), "c2")
	i1 := e.setup(Request{ID: "i1", Networks: []Attachment{{Network: "inner6"}}})
	i2 := e.setup(Request{ID: "i2", Networks: []Attachment{{Network: "inner6"}}})
	serve(t, i2.Netns, ":80", "i2")
	mustAsk(t, i1.Netns, hostport(ip6Of(i2, 0), 80), "i2")
	ih := e.handle(i1.Netns)
	ieth, _ := ih.LinkByName("eth0")
	mustOK(t, ih.RouteAdd(&netlink.Route{LinkIndex: ieth.Attrs().Index, Gw: net.ParseIP("fd00:63::1")}))
	mustFail(t, i1.Netns, "[2001:db8:1::2]:9999", "internal network reached the outside over IPv6")
	mustFail(t, i1.Netns, "[fd00:63::1]:8080", "internal network reached a published port over IPv6")
	mustFail(t, c1.Netns, hostport(ip6Of(i2, 0), 80), "c1 reached an internal network over IPv6")

	// --ip6: honoured, refused when taken or outside the subnet, or on
	// a network without IPv6.
	c3 := e.setup(Request{ID: "c3", Networks: []Attachment{{Network: "v6net", IP6: netip.MustParseAddr("fd00:61::abc")}}})
	if ip6Of(c3, 0).String() != "fd00:61::abc" {
		t.Fatalf("--ip6: got %v", ip6Of(c3, 0))
	}
	for _, c := range []struct {
		a    Attachment
		want string
	}{
		{Attachment{Network: "v6net", IP6: netip.MustParseAddr("fd00:61::abc")}, "already in use"},
		{Attachment{Network: "v6net", IP6: netip.MustParseAddr("fd00:99::5")}, "not a free host address"},
		{Attachment{Network: "v6net", IP6: netip.MustParseAddr("fd00:61::1")}, "not a free host address"},
		{Attachment{Network: "bridge", IP6: netip.MustParseAddr("fd00:61::5")}, "no IPv6"},
	} {
		_, err := e.m.Setup(Request{ID: "bad", Networks: []Attachment{c.a}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("setup with %+v: %v, want %q", c.a, err, c.want)
		}
		e.assertNothingOf("bad")
	}
	if _, err := e.m.Setup(Request{ID: "bad", Ports: []PortBinding{{Proto: "tcp", HostIP: netip.IPv6Unspecified(), HostPort: 8090, Port: 80}}}); err == nil ||
		!strings.Contains(err.Error(), "has no IPv6") {
		t.Errorf("[::] publishing on the default network: %v", err)
	}
	e.assertNothingOf("bad")
	if _, err := e.m.Setup(Request{ID: "bad", Networks: []Attachment{{Network: "v6net"}},
		Ports: []PortBinding{{Proto: "tcp", HostIP: netip.IPv6Loopback(), HostPort: 8091, Port: 80}}}); err == nil ||
		!strings.Contains(err.Error(), "cannot publish on [::1]") {
		t.Errorf("[::1] publishing: %v", err)
	}
	e.assertNothingOf("bad")

	// Teardown: v6 lease, elements and peers' hosts entries are gone;
	// the address is free again and a restart prefers its old one.
	old := ip6Of(c2, 0)
	mustOK(t, e.m.Teardown("c2"))
	e.assertNothingOf("c2")
	if ps := e.published6(); len(ps) != 0 {
		t.Errorf("IPv6 elements left after teardown: %v", ps)
	}
	checkLacks(t, c1.Files["/etc/hosts"], old.String())
	leases, err := e.m.pool6(v6).Leases()
	mustOK(t, err)
	for _, l := range leases {
		if l.ID == "c2" || l.Addr == old {
			t.Errorf("lease left after teardown: %+v", l)
		}
	}
	c4 := e.setup(Request{ID: "c4", Networks: []Attachment{{Network: "v6net", PreferIP6: old}}})
	if ip6Of(c4, 0) != old {
		t.Errorf("PreferIP6 %v: got %v", old, ip6Of(c4, 0))
	}
}

// network create with IPv6: overlap checks for the IPv6 subnet, a ULA
// /64 picked when none is given, bad input refused in one line.
func TestIPv6Definitions(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "a", IPv6: true, Subnet6: "fd00:71::/64"})
	auto := e.create(CreateOpts{Name: "auto", IPv6: true})
	if auto.Subnet6.Bits() != 64 || auto.Subnet6.Addr().As16()[0] != 0xfd || auto.Gateway6 != auto.Subnet6.Addr().Next() {
		t.Errorf("picked %v gw %v: want a ULA /64", auto.Subnet6, auto.Gateway6)
	}
	h := e.handle(e.host)
	lo, _ := h.LinkByName("lo")
	mustOK(t, h.AddrAdd(lo, mustAddr("fd00:77::5/64")))
	for _, c := range []struct {
		o    CreateOpts
		want string
	}{
		{CreateOpts{Name: "o1", IPv6: true, Subnet6: "fd00:71::/48"}, "overlaps network a"},
		{CreateOpts{Name: "o2", IPv6: true, Subnet6: "fd00:77::/64"}, "overlaps a route of the host"},
		{CreateOpts{Name: "o3", IPv6: true, Subnet6: "fd00:72::1/64"}, "want a network address"},
		{CreateOpts{Name: "o4", IPv6: true, Subnet6: "fd00:72::/64", Gateway6: "fd00:73::1"}, "not a host address"},
		{CreateOpts{Name: "o5", IPv6: true, Gateway6: "fd00:73::1"}, "needs an IPv6 --subnet"},
		{CreateOpts{Name: "o6", Subnet6: "fd00:72::/64"}, "needs --ipv6"},
		{CreateOpts{Name: "o7", IPv6: true, Subnet6: "fe80::/64"}, "link-local"},
	} {
		_, err := e.m.Create(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("create %+v: %v, want one line with %q", c.o, err, c.want)
		}
	}
	if _, err := e.m.Get("o1"); err == nil {
		t.Error("a refused network was stored")
	}
}
