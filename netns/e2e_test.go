package netns_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-project/berth/netns/ipam"
	"github.com/berth-project/berth/netns/link"
	"github.com/berth-project/berth/netns/nettest"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/netns/nsfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func newNS(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := nsfile.Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsfile.Remove(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

var (
	serve   = nettest.Serve
	ask     = nettest.Ask
	mustAsk = nettest.MustAsk
)

// A bridge network as the lifecycle will build it, in namespaces of the
// test's own: "host" plays the host, "outside" a machine beyond it, c1
// and c2 two containers with IPAM addresses.
func TestBridgeNetworkEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	dir := t.TempDir()
	hostNS, outNS := newNS(t, dir, "host"), newNS(t, dir, "outside")
	c1, c2 := newNS(t, dir, "c1"), newNS(t, dir, "c2")

	subnet := netip.MustParsePrefix("10.201.0.0/24")
	gw := netip.MustParseAddr("10.201.0.1")
	pool := ipam.Pool{Dir: filepath.Join(dir, "ipam"), Name: "e2e", Subnet: subnet, Gateway: gw}
	host, err := link.Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if err := host.EnsureBridge("berth-e2e", netip.PrefixFrom(gw, subnet.Bits()), 0); err != nil {
		t.Fatal(err)
	}
	addr := map[string]netip.Addr{}
	for i, c := range []string{c1, c2} {
		id := filepath.Base(c)
		a, err := pool.Allocate(id, netip.Addr{}, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		addr[id] = a
		if err := host.AddVeth(link.Veth{HostName: fmt.Sprintf("ve2e%d", i), Bridge: "berth-e2e", Netns: c,
			Addr: netip.PrefixFrom(a, subnet.Bits()), Gateway: gw}); err != nil {
			t.Fatal(err)
		}
	}
	if addr["c1"] == addr["c2"] {
		t.Fatalf("both containers got %v", addr["c1"])
	}

	// "outside" hangs off the host on a veth of its own, 192.0.2.0/24.
	h, err := handleIn(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	of, err := nsfile.Open(outNS)
	if err != nil {
		t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "uplink"
	err = h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(of.Fd())})
	of.Close()
	if err != nil {
		t.Fatal(err)
	}
	up, _ := h.LinkByName("uplink")
	if err := h.AddrAdd(up, mustAddr("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(up); err != nil {
		t.Fatal(err)
	}
	oh, err := handleIn(outNS)
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	oeth, _ := oh.LinkByName("eth0")
	if err := oh.AddrAdd(oeth, mustAddr("192.0.2.2/24")); err != nil {
		t.Fatal(err)
	}
	if err := oh.LinkSetUp(oeth); err != nil {
		t.Fatal(err)
	}
	// Forwarding in the test's host namespace only (net sysctls belong
	// to the namespace of the thread that opens them).
	if err := nsfile.Do(hostNS, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}

	serve(t, c1, ":81", "c1")
	serve(t, c2, ":80", "c2")
	serve(t, outNS, "192.0.2.2:9999", "outside")

	// Container to container over the bridge.
	if peer := mustAsk(t, c1, addr["c2"].String()+":80", "c2"); peer != addr["c1"].String() {
		t.Errorf("c2 saw c1 as %s, want %v", peer, addr["c1"])
	}

	fw, err := nft.Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	if _, err := fw.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddNetwork("berth-e2e", subnet); err != nil {
		t.Fatal(err)
	}
	// Outbound: the outside machine sees the host's address, not the
	// container's.
	if peer := mustAsk(t, c1, "192.0.2.2:9999", "outside"); peer != "192.0.2.1" {
		t.Errorf("outside saw c1 as %s, want the masqueraded 192.0.2.1", peer)
	}

	c1Ports := []nft.Port{{Proto: "tcp", HostAddr: gw, HostPort: 8081, Addr: addr["c1"], Port: 81}}
	c2Ports := []nft.Port{{Proto: "tcp", HostPort: 8080, Addr: addr["c2"], Port: 80},
		{Proto: "udp", HostPort: 8080, Addr: addr["c2"], Port: 80}}
	if err := fw.Publish(c1Ports); err != nil {
		t.Fatal(err)
	}
	if err := fw.Publish(c2Ports); err != nil {
		t.Fatal(err)
	}
	// From the host itself (output chain), to any local address for c2,
	// to the one published address for c1.
	mustAsk(t, hostNS, "192.0.2.1:8080", "c2")
	mustAsk(t, hostNS, "10.201.0.1:8080", "c2")
	mustAsk(t, hostNS, "10.201.0.1:8081", "c1")
	if got, err := ask(hostNS, "192.0.2.1:8081"); err == nil {
		t.Errorf("c1's port published on 10.201.0.1 answered on 192.0.2.1: %q", got)
	}
	// From outside (prerouting, forwarded).
	if peer := mustAsk(t, outNS, "192.0.2.1:8080", "c2"); peer != "192.0.2.2" {
		t.Errorf("c2 saw the outside client as %s", peer)
	}

	// c2 goes away: its elements go in one batch, c1's stay and work.
	if err := fw.Unpublish(c2Ports); err != nil {
		t.Fatal(err)
	}
	left, err := fw.Published()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != c1Ports[0] {
		t.Fatalf("published after removing c2's ports: %v, want %v", left, c1Ports)
	}
	if got, err := ask(outNS, "192.0.2.1:8080"); err == nil {
		t.Errorf("unpublished port still answers: %q", got)
	}
	mustAsk(t, hostNS, "10.201.0.1:8081", "c1")
	if peer := mustAsk(t, c1, "192.0.2.2:9999", "outside"); peer != "192.0.2.1" {
		t.Errorf("masquerade lost after unpublishing: outside saw %s", peer)
	}
	if re, err := fw.Ensure(); err != nil || re {
		t.Errorf("table not intact after unpublishing: recreated=%v err=%v", re, err)
	}

	if err := host.RemoveVeth("ve2e1"); err != nil {
		t.Fatal(err)
	}
	if err := pool.Release("c2"); err != nil {
		t.Fatal(err)
	}
	if got, err := ask(c1, addr["c2"].String()+":80"); err == nil {
		t.Errorf("c2 still reachable after its veth was removed: %q", got)
	}
}

func handleIn(ns string) (*netlink.Handle, error) {
	var h *netlink.Handle
	err := nsfile.Do(ns, func() (err error) { h, err = netlink.NewHandle(unix.NETLINK_ROUTE); return })
	return h, err
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}
