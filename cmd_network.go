package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/runconfig"
)

func init() {
	register(func() []*cli.Command {
		subs := []*cli.Command{networkCreateCommand(), networkLsCommand(), networkInspectCommand(), networkRmCommand(),
			networkPruneCommand(), networkConnectCommand(), networkDisconnectCommand(), networkReloadCommand()}
		return []*cli.Command{{Name: "network", Usage: "manage networks", Subcommands: subs}, portCommand()}
	})
}

// openNetwork opens the network manager of berth's roots.
func openNetwork(c *cli.Context) (*network.Manager, error) {
	return network.Open(network.Options{DataRoot: c.String("data-root"), StateRoot: c.String("root")})
}

func networkCreateCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a network", ArgsUsage: "NETWORK",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "bridge", Usage: "network driver (only bridge)"},
			&cli.StringSliceFlag{Name: "subnet", Usage: "subnet in CIDR form (one IPv4, one IPv6)"},
			&cli.StringSliceFlag{Name: "gateway", Usage: "gateway of a subnet"},
			&cli.StringFlag{Name: "ip-range", Usage: "allocate container addresses from this sub-range"},
			&cli.BoolFlag{Name: "internal", Usage: "no traffic in or out of the network"},
			&cli.BoolFlag{Name: "ipv6", Usage: "enable IPv6 (needs an IPv6 --subnet)"},
			&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver option: mtu=N"},
			&cli.StringSliceFlag{Name: "label", Usage: "set metadata (key=value)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usage(c, "needs exactly one network name")
			}
			if d := c.String("driver"); d != "bridge" {
				return fmt.Errorf("network create: unknown driver %q (berth has only bridge)", d)
			}
			o := network.CreateOpts{Name: c.Args().First(), IPRange: c.String("ip-range"), IPv6: c.Bool("ipv6"), Internal: c.Bool("internal")}
			for _, s := range c.StringSlice("subnet") {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("network create: invalid subnet %q", s)
				}
				dst := &o.Subnet
				if p.Addr().Is6() {
					dst = &o.Subnet6
				}
				if *dst != "" {
					return errors.New("network create: at most one IPv4 and one IPv6 --subnet")
				}
				*dst = s
			}
			for _, g := range c.StringSlice("gateway") {
				a, err := netip.ParseAddr(g)
				if err != nil {
					return fmt.Errorf("network create: invalid gateway %q", g)
				}
				dst := &o.Gateway
				if a.Is6() {
					dst = &o.Gateway6
				}
				*dst = g
			}
			opts, err := runconfig.ParseKV("--opt", c.StringSlice("opt"))
			if err != nil {
				return err
			}
			for k, v := range opts {
				switch k {
				case "mtu", "com.docker.network.driver.mtu":
					n, err := strconv.Atoi(v)
					if err != nil || n < 68 || n > 65535 {
						return fmt.Errorf("network create: invalid mtu %q", v)
					}
					o.MTU = n
				default:
					return fmt.Errorf("network create: unknown option %q (berth knows mtu)", k)
				}
			}
			if o.Labels, err = runconfig.ParseLabels(c.StringSlice("label")); err != nil {
				return err
			}
			m, err := openNetwork(c)
			if err != nil {
				return err
			}
			n, err := m.Create(o)
			if err != nil {
				return err
			}
			fmt.Println(n.ID)
			return nil
		},
	}
}

// networkRow is one network as ls templates see it (Docker's fields).
type networkRow struct {
	ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt string
	n                                                          *network.Network
}

// Label is the value of one label, for --format '{{.Label "k"}}'.
func (r networkRow) Label(k string) string { return r.n.Labels[k] }

func networkLsCommand() *cli.Command {
	return &cli.Command{
		Name: "ls", Aliases: []string{"list"}, Usage: "list networks",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only the network ids"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "name=, id=, driver=, label=, type=custom|builtin"},
			&cli.StringFlag{Name: "format", Usage: "Go template per network, or table [TEMPLATE]"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "full network ids"},
		},
		Action: func(c *cli.Context) error {
			m, err := openNetwork(c)
			if err != nil {
				return err
			}
			nets, err := m.List()
			if err != nil {
				return err
			}
			var rows []networkRow
			for _, n := range nets {
				ok, err := networkMatch(n, c.StringSlice("filter"))
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				id := n.ID
				if !c.Bool("no-trunc") && len(id) > 12 {
					id = id[:12]
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: "local",
					IPv6: strconv.FormatBool(n.IPv6), Internal: strconv.FormatBool(n.Internal), Labels: labelsText(n.Labels),
					CreatedAt: n.Created.Format("2006-01-02 15:04:05.999999999 -0700 MST"), n: n})
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
			format := c.String("format")
			switch {
			case c.Bool("quiet"):
				format = "{{.ID}}"
			case format == "":
				format = "table"
			}
			return printTable(format, "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
				map[string]string{"ID": "NETWORK ID"}, rows)
		},
	}
}

// networkMatch applies ls's filters: each key must match one of its
// values; name and id match a part, as in Docker.
func networkMatch(n *network.Network, filters []string) (bool, error) {
	want := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("network ls: bad filter %q: want KEY=VALUE", f)
		}
		want[k] = append(want[k], v)
	}
	for k, vals := range want {
		match := false
		for _, v := range vals {
			switch k {
			case "name":
				match = match || strings.Contains(n.Name, v)
			case "id":
				match = match || strings.HasPrefix(n.ID, v)
			case "driver":
				match = match || n.Driver == v
			case "label":
				lk, lv, hasV := strings.Cut(v, "=")
				got, has := n.Labels[lk]
				match = match || has && (!hasV || got == lv)
			case "type":
				match = match || v == "builtin" && n.Default || v == "custom" && !n.Default
			case "scope":
				match = match || v == "local"
			default:
				return false, fmt.Errorf("network ls: invalid filter %q", k)
			}
		}
		if !match {
			return false, nil
		}
	}
	return true, nil
}

type ipamConfig struct {
	Subnet  string `json:"Subnet"`
	Gateway string `json:"Gateway,omitempty"`
	IPRange string `json:"IPRange,omitempty"`
}

type networkContainer struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// networkInspect is a network as Docker's inspect shows it.
type networkInspect struct {
	Name       string `json:"Name"`
	ID         string `json:"Id"`
	Created    time.Time
	Scope      string `json:"Scope"`
	Driver     string `json:"Driver"`
	EnableIPv6 bool   `json:"EnableIPv6"`
	IPAM       struct {
		Driver  string            `json:"Driver"`
		Options map[string]string `json:"Options"`
		Config  []ipamConfig      `json:"Config"`
	} `json:"IPAM"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	ConfigFrom struct{ Network string }    `json:"ConfigFrom"`
	ConfigOnly bool                        `json:"ConfigOnly"`
	Containers map[string]networkContainer `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

func inspectNetwork(m *network.Manager, n *network.Network) (networkInspect, error) {
	ni := networkInspect{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv6: n.IPv6,
		Internal: n.Internal, Containers: map[string]networkContainer{}, Options: map[string]string{}, Labels: n.Labels}
	if ni.Labels == nil {
		ni.Labels = map[string]string{}
	}
	ni.IPAM.Driver, ni.IPAM.Options = "default", map[string]string{}
	add := func(subnet netip.Prefix, gw netip.Addr, r netip.Prefix) {
		if !subnet.IsValid() {
			return
		}
		c := ipamConfig{Subnet: subnet.String()}
		if gw.IsValid() {
			c.Gateway = gw.String()
		}
		if r.IsValid() {
			c.IPRange = r.String()
		}
		ni.IPAM.Config = append(ni.IPAM.Config, c)
	}
	add(n.Subnet, n.Gateway, n.IPRange)
	add(n.Subnet6, n.Gateway6, netip.Prefix{})
	if ni.IPAM.Config == nil {
		ni.IPAM.Config = []ipamConfig{}
	}
	ni.Options["com.docker.network.bridge.name"] = n.Bridge
	if n.MTU > 0 {
		ni.Options["com.docker.network.driver.mtu"] = strconv.Itoa(n.MTU)
	}
	eps, err := m.Endpoints(n.ID)
	if err != nil {
		return ni, err
	}
	for _, ep := range eps {
		nc := networkContainer{Name: ep.ContainerName, EndpointID: ep.ContainerID[:min(12, len(ep.ContainerID))] + "-" + n.Name}
		if len(ep.MAC) > 0 {
			nc.MacAddress = ep.MAC.String()
		}
		if ep.IP.IsValid() {
			nc.IPv4Address = ep.IP.String()
		}
		if ep.IP6.IsValid() {
			nc.IPv6Address = ep.IP6.String()
		}
		ni.Containers[ep.ContainerID] = nc
	}
	return ni, nil
}

func networkInspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "show networks in detail", ArgsUsage: "NETWORK...",
		Flags:  inspectFlags(),
		Action: func(c *cli.Context) error { return inspectAction(c, "network") },
	}
}

// networkErr says "network X not found" as Docker does.
func networkErr(ref string, err error) error {
	if errors.Is(err, network.ErrNotFound) {
		return fmt.Errorf("network %s not found", ref)
	}
	return err
}

func networkRmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Aliases: []string{"remove"}, Usage: "remove networks", ArgsUsage: "NETWORK...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "no error for networks that do not exist"}},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usage(c, "needs at least one network")
			}
			m, err := openNetwork(c)
			if err != nil {
				return err
			}
			var errs []string
			for _, ref := range c.Args().Slice() {
				if err := m.Remove(ref); err != nil {
					if c.Bool("force") && errors.Is(err, network.ErrNotFound) {
						continue
					}
					errs = append(errs, networkErr(ref, err).Error())
					continue
				}
				fmt.Println(ref)
			}
			if len(errs) > 0 {
				return errors.New(strings.Join(errs, "; "))
			}
			return nil
		},
	}
}

func networkPruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "remove all unused networks",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask"}},
		Action: func(c *cli.Context) error {
			if !c.Bool("force") && !confirm("WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			removed, err := s.PruneNetworks()
			printDeleted("Networks", removed)
			return err
		},
	}
}

func networkConnectCommand() *cli.Command {
	return &cli.Command{
		Name: "connect", Usage: "connect a container to a network", ArgsUsage: "NETWORK CONTAINER",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "alias", Usage: "a name of the container on the network"},
			&cli.StringFlag{Name: "ip", Usage: "IPv4 address"},
			&cli.StringFlag{Name: "ip6", Usage: "IPv6 address"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usage(c, "needs a network and a container")
			}
			// The same checks as run's --network-alias, --ip and --ip6.
			o, err := runconfig.FromFlags("-", nil, runconfig.Flags{NetFlags: runconfig.NetFlags{Network: c.Args().First(),
				NetworkAlias: c.StringSlice("alias"), IP: c.String("ip"), IP6: c.String("ip6")}}, nil)
			if err != nil {
				return fmt.Errorf("network connect: %w", err)
			}
			var ep container.EndpointSettings
			if o.Networking != nil {
				for _, e := range o.Networking.EndpointsConfig {
					ep = *e
				}
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			return networkErr(c.Args().First(), s.Connect(c.Args().Get(1), c.Args().First(), ep))
		},
	}
}

func networkDisconnectCommand() *cli.Command {
	return &cli.Command{
		Name: "disconnect", Usage: "disconnect a container from a network", ArgsUsage: "NETWORK CONTAINER",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "no error when the container or the network is gone"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usage(c, "needs a network and a container")
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			err = s.Disconnect(c.Args().Get(1), c.Args().First())
			if c.Bool("force") && (errors.Is(err, container.ErrNotFound) || errors.Is(err, network.ErrNotFound)) {
				return nil
			}
			return networkErr(c.Args().First(), err)
		},
	}
}

func networkReloadCommand() *cli.Command {
	return &cli.Command{
		Name: "reload", Usage: "put back berth's firewall rules of every network and running container",
		Action: func(c *cli.Context) error {
			m, err := openNetwork(c)
			if err != nil {
				return err
			}
			return m.Reload()
		},
	}
}

// portCommand is `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`.
func portCommand() *cli.Command {
	return &cli.Command{
		Name: "port", Usage: "list a container's published ports", ArgsUsage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usage(c, "usage: berth port CONTAINER [PRIVATE_PORT[/PROTO]]")
			}
			_, r, err := findContainer(c, c.Args().First())
			if err != nil {
				return err
			}
			var ports map[string][]container.PortBinding
			if r.State.Running && r.NetworkSettings != nil {
				ports = r.NetworkSettings.Ports
			}
			if c.NArg() == 2 {
				p, err := runconfig.ParsePortKey(c.Args().Get(1))
				if err != nil {
					return fmt.Errorf("port: %w", err)
				}
				bs := ports[p.String()]
				if len(bs) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", p, r.Name)
				}
				for _, b := range bs {
					fmt.Println(hostPortText(b))
				}
				return nil
			}
			keys := make([]string, 0, len(ports))
			for k := range ports {
				keys = append(keys, k)
			}
			sortPortKeys(keys)
			for _, k := range keys {
				for _, b := range ports[k] {
					fmt.Printf("%s -> %s\n", k, hostPortText(b))
				}
			}
			return nil
		},
	}
}

// hostPortText is a binding as Docker prints it: 0.0.0.0:8080, [::1]:8080.
func hostPortText(b container.PortBinding) string {
	ip := b.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return ip + ":" + b.HostPort
}

// sortPortKeys orders "80/tcp" keys by number, then protocol.
func sortPortKeys(keys []string) {
	num := func(k string) int {
		n, _, _ := strings.Cut(k, "/")
		v, _ := strconv.Atoi(n)
		return v
	}
	sort.Slice(keys, func(i, j int) bool {
		if a, b := num(keys[i]), num(keys[j]); a != b {
			return a < b
		}
		return keys[i] < keys[j]
	})
}

// portsText is ps's PORTS column: published ports as
// 0.0.0.0:8080->80/tcp, consecutive ones as ranges
// (0.0.0.0:9000-9002->9000-9002/tcp), exposed ones alone as 80/tcp.
func portsText(r *container.Record) string {
	if r.NetworkSettings == nil || !r.State.Running {
		return ""
	}
	type item struct {
		ip         string
		host, port int
		proto      string
		published  bool
	}
	var items []item
	for k, bs := range r.NetworkSettings.Ports {
		n, proto, _ := strings.Cut(k, "/")
		port, _ := strconv.Atoi(n)
		if len(bs) == 0 {
			items = append(items, item{port: port, proto: proto})
		}
		for _, b := range bs {
			hp, _ := strconv.Atoi(b.HostPort)
			ip := b.HostIP
			if strings.Contains(ip, ":") {
				ip = "[" + ip + "]"
			}
			items = append(items, item{ip: ip, host: hp, port: port, proto: proto, published: true})
		}
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.published != b.published {
			return a.published
		}
		if a.ip != b.ip {
			return a.ip < b.ip
		}
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		return a.port < b.port
	})
	var out []string
	for i := 0; i < len(items); {
		a := items[i]
		j := i + 1
		for j < len(items) && items[j].published == a.published && items[j].ip == a.ip && items[j].proto == a.proto &&
			items[j].port == a.port+(j-i) && (!a.published || items[j].host == a.host+(j-i)) {
			j++
		}
		rng := func(lo, hi int) string {
			if lo == hi {
				return strconv.Itoa(lo)
			}
			return strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
		}
		last := items[j-1]
		s := rng(a.port, last.port) + "/" + a.proto
		if a.published {
			s = a.ip + ":" + rng(a.host, last.host) + "->" + s
		}
		out = append(out, s)
		i = j
	}
	return strings.Join(out, ", ")
}
