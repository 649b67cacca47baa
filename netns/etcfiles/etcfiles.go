// Package etcfiles writes the /etc/hostname, /etc/hosts and
// /etc/resolv.conf berth gives each container. The generators are pure;
// Rewrite updates a file that is bind-mounted into a running container.
package etcfiles

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Hostname is the content of /etc/hostname.
func Hostname(name string) []byte {
	return []byte(name + "\n")
}

// Host is one /etc/hosts line: an address and its names.
type Host struct {
	Addr  netip.Addr
	Names []string
}

// HostsConfig is what a container's /etc/hosts holds.
type HostsConfig struct {
	Hostname   string
	Domainname string
	// Addrs are the container's own addresses; with none (network none
	// or host) its name goes on 127.0.1.1, as Debian does, so it
	// resolves.
	Addrs   []netip.Addr
	Aliases []string
	// Extra are --add-host entries, Peers the other containers of the
	// container's user networks.
	Extra []Host
	Peers []Host
}

// Hosts is the content of /etc/hosts.
func Hosts(c HostsConfig) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	var own []string
	if c.Hostname != "" {
		if c.Domainname != "" {
			own = append(own, c.Hostname+"."+c.Domainname)
		}
		own = append(own, c.Hostname)
	}
	own = append(own, c.Aliases...)
	if len(own) > 0 {
		addrs := c.Addrs
		if len(addrs) == 0 {
			addrs = []netip.Addr{netip.MustParseAddr("127.0.1.1")}
		}
		for _, a := range addrs {
			writeHost(&b, Host{Addr: a, Names: own})
		}
	}
	for _, h := range c.Extra {
		writeHost(&b, h)
	}
	for _, h := range c.Peers {
		writeHost(&b, h)
	}
	return b.Bytes()
}

func writeHost(b *bytes.Buffer, h Host) {
	if len(h.Names) == 0 {
		return
	}
	fmt.Fprintf(b, "%s\t%s\n", h.Addr, strings.Join(h.Names, " "))
}

// DNS is what --dns, --dns-search and --dns-option ask for; each given
// one replaces what the host's file says.
type DNS struct {
	Servers []netip.Addr
	Search  []string
	Options []string
}

// Reach is what a container's network namespace reaches of the host's
// nameservers.
type Reach int

const (
	// Routed is a namespace of its own with a way out (bridge networks):
	// every server but the host's loopback ones.
	Routed Reach = iota
	// HostNet is the host's own namespace (--network host): every server.
	HostNet
	// NoNet is a namespace with nothing but loopback (--network none):
	// no server, and so nothing to warn of.
	NoNet
)

// ResolvConf is the content of a container's /etc/resolv.conf, made from
// the host's (host) and, when the host's names loopback resolvers (such
// as systemd-resolved's 127.0.0.53, unreachable from another network
// namespace), from the upstream file systemd-resolved writes
// (/run/systemd/resolve/resolv.conf; nil when absent). The warnings say
// what was dropped and whether no server is left, where the container
// could have reached one.
func ResolvConf(host, upstream []byte, reach Reach, dns DNS) (out []byte, warnings []string) {
	h := parseResolv(host)
	servers := h.servers
	if reach != HostNet && len(dns.Servers) == 0 {
		servers = nil
		var dropped []netip.Addr
		for _, s := range h.servers {
			if s.IsLoopback() {
				dropped = append(dropped, s)
			} else {
				servers = append(servers, s)
			}
		}
		if len(dropped) > 0 {
			var up []netip.Addr
			for _, s := range parseResolv(upstream).servers {
				if !s.IsLoopback() {
					up = append(up, s)
				}
			}
			if len(up) > 0 {
				for _, u := range up {
					if !slices.Contains(servers, u) {
						servers = append(servers, u)
					}
				}
			} else {
				warnings = append(warnings, fmt.Sprintf("host resolv.conf: loopback nameservers %v are unreachable from a container; dropped", dropped))
			}
		}
		if len(servers) == 0 {
			warnings = append(warnings, "no nameserver left for the container's resolv.conf: use --dns")
		}
		if reach == NoNet {
			warnings = nil
		}
	}
	if len(dns.Servers) > 0 {
		servers = dns.Servers
	}
	search, options := h.search, h.options
	if len(dns.Search) > 0 {
		search = dns.Search
	}
	if len(dns.Options) > 0 {
		options = dns.Options
	}
	var b bytes.Buffer
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), warnings
}

type resolv struct {
	servers         []netip.Addr
	search, options []string
}

func parseResolv(data []byte) resolv {
	var r resolv
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			// A zone (fe80::1%eth0) names a host interface, which the
			// container does not have.
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Zone() == "" {
				r.servers = append(r.servers, a)
			}
		case "search", "domain":
			// The last of search and domain wins, as in the resolver.
			r.search = f[1:]
		case "options":
			r.options = append(r.options, f[1:]...)
		}
	}
	return r
}

// Rewrite replaces the content of path keeping its inode: the file is
// bind-mounted into a running container, and a rename would leave the
// mount on the old inode, so the container would never see the change.
// Callers serialise writers (the network's lock); a reader may see a
// partial file for that moment.
func Rewrite(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}
