package network

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/netns/nettest"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/netns/nsfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// env is one test's berth: its own data and state roots, and a network
// namespace that plays the host, so bridges, rules and sysctls never
// touch the machine's.
type env struct {
	t    *testing.T
	dir  string
	host string
	m    *Manager
	held []*os.File
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, host: filepath.Join(dir, "hostns")}
	if err := nsfile.CreateUp(e.host); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(dir, "host-resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\nsearch example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{DataRoot: filepath.Join(dir, "data"), StateRoot: filepath.Join(dir, "state"),
		HostResolvConf: resolv, UpstreamResolvConf: filepath.Join(dir, "none"), HostNetns: e.host})
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	t.Cleanup(func() {
		for _, f := range e.held {
			f.Close()
		}
		if err := m.Reclaim(func(string) bool { return false }); err != nil {
			t.Errorf("reclaim: %v", err)
		}
		// Every container netns file is gone: the host namespace (with
		// its bridges, veth ends and table) goes with its file.
		if err := nsfile.Remove(e.host); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) setup(req Request) *Result {
	e.t.Helper()
	res, err := e.m.Setup(req)
	if err != nil {
		e.t.Fatalf("setup %s: %v", req.ID, err)
	}
	e.held = append(e.held, res.Held...)
	return res
}

func (e *env) create(o CreateOpts) *Network {
	e.t.Helper()
	n, err := e.m.Create(o)
	if err != nil {
		e.t.Fatalf("create %s: %v", o.Name, err)
	}
	return n
}

func (e *env) handle(ns string) *netlink.Handle {
	e.t.Helper()
	var h *netlink.Handle
	if err := nsfile.Do(ns, func() (err error) { h, err = netlink.NewHandle(unix.NETLINK_ROUTE); return }); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(h.Close)
	return h
}

// newNS makes a plain namespace (an "outside" machine), removed at the end.
func (e *env) newNS(name string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := nsfile.CreateUp(p); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nsfile.Remove(p) })
	return p
}

// outside connects a new namespace to the host with a veth:
// host 192.0.2.1/24 (uplink), outside 192.0.2.2/24 (eth0), default route via the host.
func (e *env) outside() string {
	e.t.Helper()
	out := e.newNS("outside")
	h := e.handle(e.host)
	of, err := nsfile.Open(out)
	if err != nil {
		e.t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "uplink"
	err = h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(of.Fd())})
	of.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	up, _ := h.LinkByName("uplink")
	mustOK(e.t, h.AddrAdd(up, mustAddr("192.0.2.1/24")))
	mustOK(e.t, h.LinkSetUp(up))
	oh := e.handle(out)
	eth, _ := oh.LinkByName("eth0")
	mustOK(e.t, oh.AddrAdd(eth, mustAddr("192.0.2.2/24")))
	mustOK(e.t, oh.LinkSetUp(eth))
	mustOK(e.t, oh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}))
	return out
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

var (
	serve   = nettest.Serve
	ask     = nettest.Ask
	mustAsk = nettest.MustAsk
)

func mustFail(t *testing.T, ns, addr, why string) {
	t.Helper()
	if got, err := ask(ns, addr); err == nil {
		t.Fatalf("%s: connect to %s from %s answered %q", why, addr, filepath.Base(ns), got)
	}
}

func ipOf(r *Result, i int) netip.Addr { return r.Endpoints[i].IP.Addr() }

func hostport(a netip.Addr, port int) string { return netip.AddrPortFrom(a, uint16(port)).String() }

// published lists the map elements in the host's IPv4 table.
func (e *env) published() []nft.Port {
	e.t.Helper()
	return e.publishedIn(nft.Open)
}

// published6 lists the map elements in the host's IPv6 table.
func (e *env) published6() []nft.Port {
	e.t.Helper()
	return e.publishedIn(nft.Open6)
}

// publishedIn lists the map elements in the host's table that open opens.
func (e *env) publishedIn(open func(nsPath string) (*nft.Firewall, error)) []nft.Port {
	e.t.Helper()
	fw, err := open(e.host)
	if err != nil {
		e.t.Fatal(err)
	}
	defer fw.Close()
	ps, err := fw.Published()
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// links lists the host namespace's link names.
func (e *env) links() []string {
	e.t.Helper()
	ls, err := e.handle(e.host).LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.Attrs().Name)
	}
	return out
}

// assertNoPorts checks the table has no published port left.
func (e *env) assertNoPorts() {
	e.t.Helper()
	if ps := e.published(); len(ps) != 0 {
		e.t.Errorf("published ports left behind: %v", ps)
	}
}

// assertNothingOf checks that id holds nothing: no state, netns file,
// files, veth, lease.
func (e *env) assertNothingOf(id string) {
	e.t.Helper()
	for _, p := range []string{e.m.statePath(id), filepath.Join(e.m.epDir, id+".lock"), filepath.Join(e.m.nsDir, id), filepath.Join(e.m.filesDir, id)} {
		if _, err := os.Lstat(p); err == nil {
			e.t.Errorf("%s left behind", p)
		}
	}
	nets, err := e.m.load()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range nets {
		for _, l := range e.links() {
			if l == hostVeth(id, n.ID) {
				e.t.Errorf("veth %s of %s left behind", l, id)
			}
		}
		ls, err := e.m.pool(n).Leases()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, l := range ls {
			if l.ID == id {
				e.t.Errorf("lease %v of %s left on %s", l.Addr, id, n.Name)
			}
		}
	}
}

// sysctl reads a net sysctl of the host namespace.
func (e *env) sysctl(path string) string {
	e.t.Helper()
	var b []byte
	if err := nsfile.Do(e.host, func() (err error) { b, err = os.ReadFile(path); return }); err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
