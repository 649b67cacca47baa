// Package link sets up the links of bridge networking over netlink: a
// bridge that is the network's gateway, and per container a veth pair
// whose one end is on the bridge and whose other end is the container's
// eth0, with its address and default route.
package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/berth-project/berth/netns/nsfile"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host talks netlink in the namespace that plays the host: the caller's
// own, or one bound at a path (tests, and a rootless berth later).
type Host struct {
	h *netlink.Handle
}

// Open returns a Host for the namespace at nsPath, or for the caller's
// own namespace when nsPath is "".
func Open(nsPath string) (*Host, error) {
	h, err := handle(nsPath)
	if err != nil {
		return nil, err
	}
	return &Host{h: h}, nil
}

func handle(nsPath string) (*netlink.Handle, error) {
	if nsPath == "" {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		return h, nil
	}
	f, err := nsfile.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The socket is made in the namespace and stays there. Only
	// NETLINK_ROUTE: with no family named, netlink opens xfrm too, which
	// a kernel without xfrm_user refuses.
	h, err := netlink.NewHandleAt(vnetns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	return h, nil
}

// Close releases the netlink socket.
func (x *Host) Close() { x.h.Close() }

// EnsureBridge makes the bridge name exist, carry gw (the gateway address
// with the subnet's length) and be up. It is idempotent. mtu 0 keeps the
// kernel's default.
func (x *Host) EnsureBridge(name string, gw netip.Prefix, mtu int) error {
	l, err := x.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.MTU = mtu
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := x.h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if l, err = x.h.LinkByName(name); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("link %s exists and is a %s, not a bridge", name, l.Type())
	}
	if err := x.h.AddrReplace(l, addr(gw)); err != nil {
		return fmt.Errorf("address %v on bridge %s: %w", gw, name, err)
	}
	if err := x.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", name, err)
	}
	return nil
}

// AddBridgeAddr gives the bridge name (made by EnsureBridge) one more
// address, idempotently: an IPv6 gateway of a dual-stack network.
func (x *Host) AddBridgeAddr(name string, a netip.Prefix) error {
	l, err := x.h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := x.h.AddrReplace(l, addr(a)); err != nil {
		return fmt.Errorf("address %v on bridge %s: %w", a, name, err)
	}
	return nil
}

// addr is a for netlink; an IPv6 address skips duplicate address
// detection: berth's IPAM made it unique on the network, and a tentative
// address could not be used (nor routed through, for a gateway) for the
// second or so DAD takes.
func addr(a netip.Prefix) *netlink.Addr {
	na := &netlink.Addr{IPNet: ipnet(a)}
	if a.Addr().Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

// DeleteBridge removes the bridge; a missing one is no error.
func (x *Host) DeleteBridge(name string) error {
	return x.del(name)
}

// Veth is one container's link on a bridge.
type Veth struct {
	// HostName is the host end's name (at most 15 bytes, unique on the
	// host); Bridge the bridge it joins.
	HostName, Bridge string
	// Netns is the container's namespace file; IfName the name there
	// ("eth0" when empty).
	Netns, IfName string
	// Addr is the container's address with the subnet's length; Gateway,
	// when valid, gets the default route.
	Addr    netip.Prefix
	Gateway netip.Addr
	// Addr6 and Gateway6, when valid, are the same for IPv6 (a
	// dual-stack network).
	Addr6    netip.Prefix
	Gateway6 netip.Addr
	MTU      int
	MAC      net.HardwareAddr
	// Hairpin lets the bridge send a frame back out the port it came in
	// on: with br_netfilter loaded, a container's packet to its own
	// published port is DNATed at the bridge and goes back that way.
	Hairpin bool
}

// AddVeth creates the pair with its container end made right in the
// container's namespace (so its name never collides on the host), puts
// the host end on the bridge, and configures the container's side: the
// address, lo and the end up, the default route. On error the pair is
// deleted.
func (x *Host) AddVeth(v Veth) (err error) {
	if v.IfName == "" {
		v.IfName = "eth0"
	}
	br, err := x.h.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", v.Bridge, err)
	}
	ns, err := nsfile.Open(v.Netns)
	if err != nil {
		return err
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = v.HostName
	attrs.MTU = v.MTU
	if attrs.MTU == 0 {
		attrs.MTU = br.Attrs().MTU
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: v.IfName, PeerNamespace: netlink.NsFd(ns.Fd()), PeerHardwareAddr: v.MAC}
	if err := x.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", v.HostName, err)
	}
	defer func() {
		if err != nil {
			x.del(v.HostName)
		}
	}()
	hostEnd, err := x.h.LinkByName(v.HostName)
	if err != nil {
		return fmt.Errorf("veth %s: %w", v.HostName, err)
	}
	if err := x.h.LinkSetMaster(hostEnd, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", v.HostName, v.Bridge, err)
	}
	if v.Hairpin {
		if err := x.h.LinkSetHairpin(hostEnd, true); err != nil {
			return fmt.Errorf("hairpin on %s: %w", v.HostName, err)
		}
	}
	if err := x.h.LinkSetUp(hostEnd); err != nil {
		return fmt.Errorf("bring up %s: %w", v.HostName, err)
	}
	return configure(v, ns)
}

// configure sets up the container's side of the pair.
func configure(v Veth, ns *os.File) error {
	c, err := netlink.NewHandleAt(vnetns.NsHandle(ns.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", v.Netns, err)
	}
	defer c.Close()
	lo, err := c.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("container lo: %w", err)
	}
	if err := c.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up container lo: %w", err)
	}
	eth, err := c.LinkByName(v.IfName)
	if err != nil {
		return fmt.Errorf("container %s: %w", v.IfName, err)
	}
	if err := c.AddrReplace(eth, addr(v.Addr)); err != nil {
		return fmt.Errorf("address %v on container %s: %w", v.Addr, v.IfName, err)
	}
	if v.Addr6.IsValid() {
		// Addresses and routes come from berth alone: a router
		// advertisement on the bridge must not add others.
		if err := nsfile.Do(v.Netns, func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/"+v.IfName+"/accept_ra", []byte("0"), 0o644)
		}); err != nil {
			return fmt.Errorf("container %s: accept_ra: %w", v.IfName, err)
		}
		if err := c.AddrReplace(eth, addr(v.Addr6)); err != nil {
			return fmt.Errorf("address %v on container %s: %w", v.Addr6, v.IfName, err)
		}
	}
	if err := c.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring up container %s: %w", v.IfName, err)
	}
	for _, gw := range []netip.Addr{v.Gateway, v.Gateway6} {
		if gw.IsValid() {
			r := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()}
			if err := c.RouteReplace(r); err != nil {
				return fmt.Errorf("default route via %v: %w", gw, err)
			}
		}
	}
	return nil
}

// RemoveVeth deletes the host end, which deletes the pair; a missing
// link is no error, so teardown can be repeated.
func (x *Host) RemoveVeth(hostName string) error {
	return x.del(hostName)
}

func (x *Host) del(name string) error {
	l, err := x.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := x.h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Prefixes lists the IPv4 and IPv6 destinations of the namespace's
// routes (all tables but the default route) and the subnets of its
// addresses: what a new network's subnet must not overlap.
func (x *Host) Prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		p, err := x.prefixes(fam)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	return out, nil
}

func (x *Host) prefixes(family int) ([]netip.Prefix, error) {
	var out []netip.Prefix
	routes, err := x.h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok || ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), ones).Masked())
	}
	addrs, err := x.h.AddrList(nil, family)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok {
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones).Masked())
		}
	}
	return out, nil
}
