package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/netns/nsfile"
	"golang.org/x/sys/unix"
)

// inHost runs fn in the namespace that plays the host.
func (m *Manager) inHost(fn func() error) error {
	if m.o.HostNetns == "" {
		return fn()
	}
	return nsfile.Do(m.o.HostNetns, fn)
}

// sysctl sets a net sysctl of the host namespace to 1 when it is not
// already (net sysctls belong to the namespace of the opener).
func (m *Manager) sysctlOn(path string) error {
	return m.inHost(func() error {
		cur, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", path, err)
		}
		if strings.TrimSpace(string(cur)) == "1" {
			return nil
		}
		if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", path, err)
		}
		return nil
	})
}

// fwDo runs fn on berth's IPv4 table under the firewall lock, after
// making sure the table is there; when it had to be made anew (someone
// flushed the ruleset), every network's rules and every published port
// are put back first.
func (m *Manager) fwDo(fn func(fw *nft.Firewall) error) error { return m.fwDoFamily(false, fn) }

// fw6Do is fwDo for the IPv6 table, which only dual-stack networks use.
func (m *Manager) fw6Do(fn func(fw *nft.Firewall) error) error { return m.fwDoFamily(true, fn) }

func (m *Manager) fwDoFamily(v6 bool, fn func(fw *nft.Firewall) error) error {
	if err := os.MkdirAll(m.netDir, 0o700); err != nil {
		return fmt.Errorf("network dir: %w", err)
	}
	lk, err := lockfile.Open(filepath.Join(m.netDir, "firewall.lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer lk.Close()
	open := nft.Open
	if v6 {
		open = nft.Open6
	}
	fw, err := open(m.o.HostNetns)
	if err != nil {
		return err
	}
	defer fw.Close()
	re, err := fw.Ensure()
	if err != nil {
		return err
	}
	if re {
		if err := m.restore(fw, v6); err != nil {
			return err
		}
	}
	return fn(fw)
}

// restore puts back the rules of every network that has containers and
// the published ports of every container (network rules are rewritten),
// in the IPv4 table or (v6) the IPv6 one.
func (m *Manager) restore(fw *nft.Firewall, v6 bool) error {
	nets, err := m.load()
	if err != nil {
		return err
	}
	states, err := m.states()
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, st := range states {
		for _, a := range st.Attach {
			used[a.NetworkID] = true
		}
	}
	for _, n := range nets {
		if !used[n.ID] || (v6 && !n.IPv6) {
			continue
		}
		if err := fw.SetNetwork(n.nft(v6)); err != nil {
			return err
		}
	}
	published, err := fw.Published()
	if err != nil {
		return err
	}
	have := map[nft.Port]bool{}
	for _, p := range published {
		have[p] = true
	}
	var missing []nft.Port
	for _, st := range states {
		for _, p := range st.nftPorts(v6) {
			if !have[p] {
				missing = append(missing, p)
			}
		}
	}
	return fw.Publish(missing)
}

// nft is what n's rules in the IPv4 (or v6, IPv6) table need.
func (n *Network) nft(v6 bool) nft.Network {
	if v6 {
		return nft.Network{Bridge: n.Bridge, Subnet: n.Subnet6, Internal: n.Internal}
	}
	return nft.Network{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal}
}

// nftPorts are the container's published ports as map elements of the
// IPv4 table, or (v6) of the IPv6 one: a port published on an IPv6 host
// address goes to the container's IPv6 address.
func (st *epState) nftPorts(v6 bool) []nft.Port {
	if len(st.Attach) == 0 {
		return nil
	}
	to := st.Attach[0].IP
	if v6 {
		to = st.Attach[0].IP6
	}
	if !to.IsValid() {
		return nil
	}
	var out []nft.Port
	for _, p := range st.Ports {
		if p.HostPort == 0 || portIs6(p) != v6 {
			continue
		}
		out = append(out, nft.Port{Proto: p.Proto, HostAddr: anyToInvalid(p.HostIP), HostPort: p.HostPort,
			Addr: to.Addr(), Port: p.Port})
	}
	return out
}

// portIs6 says whether p is published on an IPv6 host address.
func portIs6(p PortBinding) bool { return p.HostIP.IsValid() && p.HostIP.Is6() && !p.HostIP.Is4In6() }

func anyToInvalid(a netip.Addr) netip.Addr {
	if a.IsValid() && a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// Reload re-ensures the tables, every network's rules and every
// container's published ports. The IPv6 table is made only when a
// network has IPv6.
func (m *Manager) Reload() error {
	if err := m.fwDo(func(fw *nft.Firewall) error { return m.restore(fw, false) }); err != nil {
		return err
	}
	nets, err := m.load()
	if err != nil {
		return err
	}
	for _, n := range nets {
		if n.IPv6 {
			return m.fw6Do(func(fw *nft.Firewall) error { return m.restore(fw, true) })
		}
	}
	return nil
}

// holdPorts binds every published host port in the host namespace
// (listening for TCP), so no other process can take one while the
// container lives; HostPort 0 gets the kernel's choice, filled in. With
// dual (a dual-stack network), a port given no host address is
// published on [::] too, with the same host port, as Docker does. On
// error every socket is closed.
func (m *Manager) holdPorts(ports []PortBinding, dual bool) (held []*os.File, out []PortBinding, err error) {
	defer func() {
		if err != nil {
			for _, f := range held {
				f.Close()
			}
			held = nil
		}
	}()
	err = m.inHost(func() error {
		for _, p := range ports {
			f, port, err := holdPort(p)
			if err != nil {
				return err
			}
			held = append(held, f)
			p.HostPort = port
			out = append(out, p)
			if dual && !p.HostIP.IsValid() {
				p.HostIP = netip.IPv6Unspecified()
				f, _, err := holdPort(p)
				if err != nil {
					return err
				}
				held = append(held, f)
				out = append(out, p)
			}
		}
		return nil
	})
	return held, out, err
}

func holdPort(p PortBinding) (*os.File, uint16, error) {
	typ := unix.SOCK_STREAM
	if p.Proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	family := unix.AF_INET
	var addr unix.Sockaddr = &unix.SockaddrInet4{Port: int(p.HostPort)}
	switch {
	case portIs6(p):
		family, addr = unix.AF_INET6, &unix.SockaddrInet6{Port: int(p.HostPort), Addr: p.HostIP.As16()}
	case p.HostIP.IsValid():
		addr.(*unix.SockaddrInet4).Addr = p.HostIP.Unmap().As4()
	}
	what := fmt.Sprintf("host port %d/%s", p.HostPort, p.Proto)
	if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
		what = fmt.Sprintf("host port %s/%s", netip.AddrPortFrom(p.HostIP, p.HostPort), p.Proto)
	} else if portIs6(p) {
		what = fmt.Sprintf("host port [::]:%d/%s", p.HostPort, p.Proto)
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: socket: %w", what, err)
	}
	fail := func(err error) (*os.File, uint16, error) {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EADDRINUSE):
			return nil, 0, fmt.Errorf("%s is already in use", what)
		case errors.Is(err, unix.EADDRNOTAVAIL):
			return nil, 0, fmt.Errorf("%s: %s is not an address of this host", what, p.HostIP)
		}
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	if family == unix.AF_INET6 {
		// [::] holds the IPv6 port only: 0.0.0.0 is held on its own.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail(err)
		}
	}
	if typ == unix.SOCK_STREAM {
		// A port in TIME_WAIT from the container's last run is free.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail(err)
		}
	}
	if err := unix.Bind(fd, addr); err != nil {
		return fail(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 1); err != nil {
			return fail(err)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail(err)
	}
	var port uint16
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		port = uint16(sa.Port)
	case *unix.SockaddrInet6:
		port = uint16(sa.Port)
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("%s:%d/%s", p.HostIP, port, p.Proto)), port, nil
}

// hostAddr is an address of the host for host-gateway with --network
// host: the first non-loopback IPv4 address, else 127.0.0.1.
func (m *Manager) hostAddr() (netip.Addr, error) {
	out := netip.MustParseAddr("127.0.0.1")
	err := m.inHost(func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return fmt.Errorf("host addresses: %w", err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && !ip.IsLoopback() {
					out = ip.Unmap()
					return nil
				}
			}
		}
		return nil
	})
	return out, err
}
