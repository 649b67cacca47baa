package link

import (
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-project/berth/netns/nsfile"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNS makes a namespace file removed at the end of the test. Every
// link these tests make lives in such namespaces, never on the host.
func newNS(t *testing.T, dir, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
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

func nsHandle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	f, err := nsfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(vnetns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestBridgeAndVeths(t *testing.T) {
	dir := t.TempDir()
	hostNS := newNS(t, dir, "host")
	c1, c2 := newNS(t, dir, "c1"), newNS(t, dir, "c2")
	host, err := Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	gw := netip.MustParsePrefix("10.200.0.1/24")
	for range 2 {
		if err := host.EnsureBridge("tbr0", gw, 0); err != nil {
			t.Fatal(err)
		}
	}
	hh := nsHandle(t, hostNS)
	br, err := hh.LinkByName("tbr0")
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := hh.AddrList(br, unix.AF_INET); len(addrs) != 1 || addrs[0].IPNet.String() != "10.200.0.1/24" {
		t.Fatalf("bridge addresses after two ensures: %v", addrs)
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		t.Fatal("bridge is down")
	}
	for i, c := range []string{c1, c2} {
		v := Veth{HostName: []string{"tv1", "tv2"}[i], Bridge: "tbr0", Netns: c,
			Addr: netip.MustParsePrefix([]string{"10.200.0.2/24", "10.200.0.3/24"}[i]), Gateway: gw.Addr()}
		if err := host.AddVeth(v); err != nil {
			t.Fatal(err)
		}
	}
	ch := nsHandle(t, c1)
	eth, err := ch.LinkByName("eth0")
	if err != nil {
		t.Fatalf("container eth0: %v", err)
	}
	if eth.Attrs().Flags&net.FlagUp == 0 {
		t.Error("container eth0 is down")
	}
	routes, err := ch.RouteList(eth, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var def bool
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.200.0.1" {
			def = true
		}
	}
	if !def {
		t.Errorf("no default route via the gateway: %v", routes)
	}
	if _, err := hh.LinkByName("eth0"); err == nil {
		t.Error("an eth0 appeared in the host namespace")
	}

	// TCP from c1 to c2 over the bridge, and to the gateway.
	var ln net.Listener
	if err := nsfile.Do(c2, func() (err error) { ln, err = net.Listen("tcp", "10.200.0.3:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	var got []byte
	if err := nsfile.Do(c1, func() error {
		c, err := net.Dial("tcp", "10.200.0.3:7000")
		if err != nil {
			return err
		}
		defer c.Close()
		got, err = io.ReadAll(c)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	if err := host.RemoveVeth("tv1"); err != nil {
		t.Fatal(err)
	}
	if err := host.RemoveVeth("tv1"); err != nil {
		t.Fatalf("second RemoveVeth: %v", err)
	}
	if _, err := ch.LinkByName("eth0"); err == nil {
		t.Error("container end survived RemoveVeth")
	}
	if err := host.DeleteBridge("tbr0"); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.LinkByName("tbr0"); err == nil {
		t.Error("bridge survived DeleteBridge")
	}
}

func TestEnsureBridgeRefusesOtherLink(t *testing.T) {
	hostNS := newNS(t, t.TempDir(), "host")
	host, err := Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "notbr"
	if err := nsHandle(t, hostNS).LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "notbr2"}); err != nil {
		t.Fatal(err)
	}
	if err := host.EnsureBridge("notbr", netip.MustParsePrefix("10.1.0.1/24"), 0); err == nil {
		t.Fatal("EnsureBridge took a veth for a bridge")
	}
}

// A failed AddVeth leaves no link behind.
func TestAddVethFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	hostNS, c := newNS(t, dir, "host"), newNS(t, dir, "c")
	host, err := Open(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if err := host.EnsureBridge("tbr0", netip.MustParsePrefix("10.200.0.1/24"), 0); err != nil {
		t.Fatal(err)
	}
	// A gateway outside the container's subnet is unreachable: the route
	// fails after the pair exists.
	err = host.AddVeth(Veth{HostName: "tv1", Bridge: "tbr0", Netns: c,
		Addr: netip.MustParsePrefix("10.200.0.2/24"), Gateway: netip.MustParseAddr("10.9.9.9")})
	if err == nil {
		t.Fatal("AddVeth with an unreachable gateway succeeded")
	}
	if _, err := nsHandle(t, hostNS).LinkByName("tv1"); err == nil {
		t.Error("host end left after a failed AddVeth")
	}
	if _, err := nsHandle(t, c).LinkByName("eth0"); err == nil {
		t.Error("container end left after a failed AddVeth")
	}
}
