package runconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/container"
)

// NetFlags are the networking flags of run/create.
type NetFlags struct {
	Network      string
	Publish      []string
	PublishAll   bool
	Expose       []string
	IP, IP6      string
	MacAddress   string
	NetworkAlias []string
	DNS          []string
	DNSSearch    []string
	DNSOption    []string
	AddHost      []string
}

// Port is one container port with its protocol, as Docker writes it:
// "80/tcp".
type Port struct {
	Num   uint16
	Proto string
}

func (p Port) String() string { return strconv.Itoa(int(p.Num)) + "/" + p.Proto }

// ParsePortKey reads "80/tcp" (or "80", tcp).
func ParsePortKey(s string) (Port, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return Port{}, fmt.Errorf("invalid protocol %q: want tcp or udp", proto)
	}
	n, err := parsePortNum(num, false)
	if err != nil {
		return Port{}, err
	}
	return Port{n, proto}, nil
}

func parsePortNum(s string, zero bool) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 && !zero {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return uint16(n), nil
}

// parseRange reads "80" or "80-90".
func parseRange(s string, zero bool) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parsePortNum(a, zero); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePortNum(b, false); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("invalid port range %q", s)
		}
	}
	return lo, hi, nil
}

// ParsePublish parses one -p in Docker's syntax
// [ip:][hostport[-end]:]containerport[-end][/tcp|udp], an IPv6 host
// address in brackets. Ranges are expanded: a host range must be as long
// as the container range. It returns the bindings by container port.
func ParsePublish(v string) (map[Port][]container.PortBinding, error) {
	bad := func(why string) error { return fmt.Errorf("-p %q: %s", v, why) }
	rest, proto, hasProto := strings.Cut(v, "/")
	if !hasProto {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, bad("the protocol must be tcp or udp")
	}
	var ip, host, cport string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || !strings.HasPrefix(rest[end+1:], ":") {
			return nil, bad("want [ipv6]:hostport:containerport")
		}
		ip = rest[1:end]
		var ok bool
		if host, cport, ok = strings.Cut(rest[end+2:], ":"); !ok {
			return nil, bad("want [ipv6]:hostport:containerport")
		}
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			cport = parts[0]
		case 2:
			host, cport = parts[0], parts[1]
		case 3:
			ip, host, cport = parts[0], parts[1], parts[2]
		default:
			return nil, bad("want [ip:][hostport:]containerport (an IPv6 address goes in brackets)")
		}
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			return nil, bad(fmt.Sprintf("invalid host address %q", ip))
		}
		ip = a.Unmap().String()
	}
	clo, chi, err := parseRange(cport, false)
	if err != nil {
		return nil, bad(err.Error())
	}
	var hlo, hhi uint16
	if host != "" {
		if hlo, hhi, err = parseRange(host, true); err != nil {
			return nil, bad(err.Error())
		}
		if hhi-hlo != chi-clo {
			return nil, bad("the host port range must be as long as the container port range")
		}
		if hlo == 0 && hhi != 0 {
			return nil, bad("invalid host port range")
		}
	}
	out := map[Port][]container.PortBinding{}
	for i := 0; i <= int(chi-clo); i++ {
		b := container.PortBinding{HostIP: ip}
		if hlo != 0 {
			b.HostPort = strconv.Itoa(int(hlo) + i)
		}
		p := Port{clo + uint16(i), proto}
		out[p] = append(out[p], b)
	}
	return out, nil
}

// ParseExpose parses one --expose: PORT[-END][/PROTO].
func ParseExpose(v string) ([]Port, error) {
	r, proto, ok := strings.Cut(v, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("--expose %q: the protocol must be tcp or udp", v)
	}
	lo, hi, err := parseRange(r, false)
	if err != nil {
		return nil, fmt.Errorf("--expose %q: %w", v, err)
	}
	var out []Port
	for n := int(lo); n <= int(hi); n++ {
		out = append(out, Port{uint16(n), proto})
	}
	return out, nil
}

// ParseAddHost checks one --add-host: NAME:ADDR or NAME=ADDR, ADDR an IP
// address (IPv6 possibly in brackets) or host-gateway. It returns it as
// Docker records it, NAME:ADDR.
func ParseAddHost(v string) (string, error) {
	i := strings.IndexAny(v, ":=")
	if i <= 0 || i == len(v)-1 {
		return "", fmt.Errorf("--add-host %q: want NAME:ADDRESS", v)
	}
	name, addr := v[:i], v[i+1:]
	if err := validHostname(name); err != nil {
		return "", fmt.Errorf("--add-host %q: %q is not a valid host name", v, name)
	}
	if addr == "host-gateway" {
		return name + ":" + addr, nil
	}
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("--add-host %q: invalid address %q", v, addr)
	}
	return name + ":" + a.String(), nil
}

// networkKind is what a --network value names.
func networkKind(mode string) string {
	switch {
	case mode == "none", mode == "host":
		return mode
	case strings.HasPrefix(mode, "container:"):
		return "container"
	case mode == "bridge":
		return "default"
	default:
		return "user"
	}
}

// applyNetFlags checks the networking flags and records them as Docker
// does: HostConfig.PortBindings, PublishAllPorts, Dns*, ExtraHosts,
// NetworkMode; Config.ExposedPorts and MacAddress; the endpoint of the
// network with its aliases and addresses.
func applyNetFlags(o *Options, f NetFlags) error {
	h, c := &o.Host, &o.Config
	mode := f.Network
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	if mode == "container:" {
		return errors.New("--network container: needs a container name or id")
	}
	h.NetworkMode = mode
	kind := networkKind(mode)
	for _, v := range clean(f.Publish) {
		m, err := ParsePublish(v)
		if err != nil {
			return err
		}
		if h.PortBindings == nil {
			h.PortBindings = map[string][]container.PortBinding{}
		}
		for p, bs := range m {
			h.PortBindings[p.String()] = append(h.PortBindings[p.String()], bs...)
		}
	}
	h.PublishAllPorts = f.PublishAll
	expose := map[string]struct{}{}
	for k := range h.PortBindings {
		expose[k] = struct{}{}
	}
	for _, v := range f.Expose {
		ps, err := ParseExpose(v)
		if err != nil {
			return err
		}
		for _, p := range ps {
			expose[p.String()] = struct{}{}
		}
	}
	if len(expose) > 0 {
		c.ExposedPorts = expose
	}
	for _, d := range f.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return fmt.Errorf("--dns %q: not an IP address", d)
		}
		h.Dns = append(h.Dns, a.String())
	}
	h.DnsSearch, h.DnsOptions = clean(f.DNSSearch), clean(f.DNSOption)
	for _, s := range h.DnsSearch {
		if s != "." && validHostname(strings.TrimSuffix(s, ".")) != nil {
			return fmt.Errorf("--dns-search %q: not a valid domain", s)
		}
	}
	for _, v := range f.AddHost {
		e, err := ParseAddHost(v)
		if err != nil {
			return err
		}
		h.ExtraHosts = append(h.ExtraHosts, e)
	}
	if f.MacAddress != "" {
		mac, err := net.ParseMAC(f.MacAddress)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("--mac-address %q: not an Ethernet address", f.MacAddress)
		}
		if mac[0]&1 == 1 {
			return fmt.Errorf("--mac-address %q: a multicast address", f.MacAddress)
		}
		c.MacAddress = mac.String()
	}
	ipam := &container.EndpointIPAMConfig{}
	if f.IP != "" {
		a, err := netip.ParseAddr(f.IP)
		if err != nil || !a.Is4() {
			return fmt.Errorf("--ip %q: not an IPv4 address", f.IP)
		}
		ipam.IPv4Address = a.String()
	}
	if f.IP6 != "" {
		a, err := netip.ParseAddr(f.IP6)
		if err != nil || !a.Is6() || a.Is4In6() {
			return fmt.Errorf("--ip6 %q: not an IPv6 address", f.IP6)
		}
		ipam.IPv6Address = a.String()
	}
	aliases := clean(f.NetworkAlias)
	for _, a := range aliases {
		if validHostname(a) != nil {
			return fmt.Errorf("--network-alias %q: not a valid name", a)
		}
	}
	// Docker's conflicts.
	switch kind {
	case "container":
		switch {
		case c.Hostname != "" || c.Domainname != "":
			return errors.New("conflicting options: --hostname and the network mode container")
		case len(h.Dns) > 0 || len(h.DnsSearch) > 0 || len(h.DnsOptions) > 0 || len(h.ExtraHosts) > 0:
			return errors.New("conflicting options: --dns and --add-host, and the network mode container")
		case len(h.PortBindings) > 0 || h.PublishAllPorts || len(f.Expose) > 0:
			return errors.New("conflicting options: port publishing and the network mode container")
		case c.MacAddress != "":
			return errors.New("conflicting options: --mac-address and the network mode container")
		}
	case "host", "none":
		// Docker: nothing to publish from (the host's ports are the
		// container's; no network at all), so -p and -P are dropped, with a
		// warning on the host network.
		if kind == "host" && (len(h.PortBindings) > 0 || h.PublishAllPorts) {
			logrus.Warn("Published ports are discarded when using host network mode")
		}
		h.PortBindings, h.PublishAllPorts = nil, false
		if c.MacAddress != "" {
			return fmt.Errorf("conflicting options: --mac-address and the network mode %s", kind)
		}
	}
	if kind != "user" {
		if ipam.IPv4Address != "" || ipam.IPv6Address != "" {
			return errors.New("user specified IP address is supported on user defined networks only")
		}
		if len(aliases) > 0 {
			return errors.New("network-scoped aliases are supported for user defined networks only")
		}
	}
	if kind == "user" || kind == "default" {
		ep := &container.EndpointSettings{Aliases: aliases, MacAddress: c.MacAddress}
		if *ipam != (container.EndpointIPAMConfig{}) {
			ep.IPAMConfig = ipam
		}
		o.Networking = &container.NetworkingConfig{EndpointsConfig: map[string]*container.EndpointSettings{mode: ep}}
	}
	return nil
}

// applyExposed adds the image's EXPOSE to Config.ExposedPorts.
func applyExposed(c *container.Config, exposed map[string]struct{}) {
	if len(exposed) == 0 {
		return
	}
	if c.ExposedPorts == nil {
		c.ExposedPorts = map[string]struct{}{}
	}
	for k := range exposed {
		if p, err := ParsePortKey(k); err == nil {
			c.ExposedPorts[p.String()] = struct{}{}
		}
	}
}
