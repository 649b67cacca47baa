package rig

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/netns/nsfile"
)

// NetHost is a network namespace that plays the host for berth (its
// bridges, firewall table and sysctls stay in it), and an "outside"
// namespace linked to it by a veth: host 192.0.2.1/24 on "uplink",
// outside 192.0.2.2/24 on "eth0" with its default route via the host.
// Both go at the test's end.
type NetHost struct {
	Host, Outside         string // the namespace files
	HostAddr, OutsideAddr string
}

// NewNetHost makes the two namespaces, loopback up in each.
func NewNetHost(t *testing.T) *NetHost {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "berth-it-netns")
	if err != nil {
		t.Fatal(err)
	}
	n := &NetHost{Host: filepath.Join(dir, "host"), Outside: filepath.Join(dir, "outside"),
		HostAddr: "192.0.2.1", OutsideAddr: "192.0.2.2"}
	t.Cleanup(func() {
		for _, p := range []string{n.Outside, n.Host} {
			if err := nsfile.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Errorf("remove netns %s: %v", p, err)
			}
		}
		os.RemoveAll(dir)
	})
	for _, p := range []string{n.Host, n.Outside} {
		if err := nsfile.Create(p); err != nil {
			t.Fatal(err)
		}
		if err := nsfile.Do(p, func() error {
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			return netlink.LinkSetUp(lo)
		}); err != nil {
			t.Fatalf("lo up in %s: %v", p, err)
		}
	}
	out, err := nsfile.Open(n.Outside)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	err = nsfile.Do(n.Host, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "uplink"
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(out.Fd())}); err != nil {
			return err
		}
		up, err := netlink.LinkByName("uplink")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(n.HostAddr + "/24")
		if err := netlink.AddrAdd(up, a); err != nil {
			return err
		}
		return netlink.LinkSetUp(up)
	})
	if err != nil {
		t.Fatalf("veth to the outside: %v", err)
	}
	err = nsfile.Do(n.Outside, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(n.OutsideAddr + "/24")
		if err := netlink.AddrAdd(eth, a); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(n.HostAddr)})
	})
	if err != nil {
		t.Fatalf("outside eth0: %v", err)
	}
	return n
}

// InNetns runs fn on a thread inside the namespace at path: what it
// starts with os/exec, and the sockets it opens, are in that namespace.
func InNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return nsfile.Do(path, fn)
}

// output runs cmd in the env's network namespace and returns its output.
func (e *Env) output(cmd *exec.Cmd) ([]byte, error) {
	var out []byte
	err := InNetns(e.Netns, func() (err error) { out, err = cmd.CombinedOutput(); return })
	return out, err
}
