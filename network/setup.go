package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/netns/etcfiles"
	"github.com/berth-project/berth/netns/ipam"
	"github.com/berth-project/berth/netns/link"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/netns/nsfile"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// hostVeth names the host end of id's veth on network netID: unique on
// the host and within IFNAMSIZ.
func hostVeth(id, netID string) string {
	h := sha256.Sum256([]byte(id + "/" + netID))
	return "vb" + hex.EncodeToString(h[:])[:11]
}

// macFor is Docker's rule: 02:42 followed by the IPv4 address.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

func (m *Manager) files(id string) map[string]string {
	dir := filepath.Join(m.filesDir, id)
	return map[string]string{
		"/etc/hostname":    filepath.Join(dir, "hostname"),
		"/etc/hosts":       filepath.Join(dir, "hosts"),
		"/etc/resolv.conf": filepath.Join(dir, "resolv.conf"),
	}
}

// parseExtraHosts checks --add-host entries; host-gateway is resolved
// later, once the gateway is known.
func parseExtraHosts(in []string) ([][2]string, error) {
	var out [][2]string
	for _, e := range in {
		name, addr, ok := strings.Cut(e, ":")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("invalid --add-host %q: want name:address or name:host-gateway", e)
		}
		if addr != "host-gateway" {
			if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err != nil {
				return nil, fmt.Errorf("invalid --add-host %q: %q is not an IP address", e, addr)
			}
		}
		out = append(out, [2]string{name, strings.Trim(addr, "[]")})
	}
	return out, nil
}

func checkPorts(ports []PortBinding) error {
	for _, p := range ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return fmt.Errorf("invalid port protocol %q: want tcp or udp", p.Proto)
		}
		if p.Port == 0 {
			return errors.New("invalid published port: container port 0")
		}
		if p.HostIP.IsValid() && p.HostIP.Is6() && p.HostIP.IsLoopback() {
			// The kernel does not route a packet from ::1 out of lo, and
			// IPv6 has no route_localnet: DNAT cannot reach a container.
			return fmt.Errorf("cannot publish on [::1]: IPv6 loopback cannot be forwarded to a container; use 127.0.0.1 or [::]")
		}
	}
	return nil
}

// Setup prepares a container's network. On error nothing is left and
// the error is one line.
func (m *Manager) Setup(req Request) (*Result, error) {
	if err := validID(req.ID); err != nil {
		return nil, err
	}
	lk, err := m.lockContainer(req.ID)
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	res, err := m.setup(req)
	if err != nil {
		// Nothing is left of the container, its lock file neither.
		os.Remove(filepath.Join(m.epDir, req.ID+".lock"))
	}
	return res, err
}

// NetnsPath is where Setup makes the network namespace of container id
// in network modes none and bridge.
func (m *Manager) NetnsPath(id string) string {
	return filepath.Join(m.nsDir, id)
}

// lockContainer serialises the work on one container's network (a
// monitor's teardown racing an rm's).
func (m *Manager) lockContainer(id string) (*os.File, error) {
	if err := os.MkdirAll(m.epDir, 0o700); err != nil {
		return nil, fmt.Errorf("endpoint dir: %w", err)
	}
	return lockfile.Open(filepath.Join(m.epDir, id+".lock"), unix.LOCK_EX)
}

func (m *Manager) setup(req Request) (res *Result, err error) {
	mode := req.Mode
	if mode == "" {
		mode = "bridge"
	}
	var warnings []string
	extra, err := parseExtraHosts(req.ExtraHosts)
	if err != nil {
		return nil, err
	}
	if err := checkPorts(req.Ports); err != nil {
		return nil, err
	}
	var nets []*Network
	var atts []Attachment
	switch mode {
	case "none", "host":
		if len(req.Ports) > 0 {
			warnings = append(warnings, fmt.Sprintf("published ports are discarded with network mode %s", mode))
			req.Ports = nil
		}
	case "container":
		if len(req.Ports) > 0 {
			return nil, errors.New("conflicting options: port publishing and network mode container")
		}
		if req.Join == "" || req.Join == req.ID {
			return nil, fmt.Errorf("network mode container: invalid container %q", req.Join)
		}
	case "bridge":
		atts = req.Networks
		if len(atts) == 0 {
			atts = []Attachment{{Network: DefaultName}}
		}
		all, err := m.all()
		if err != nil {
			return nil, err
		}
		for _, a := range atts {
			n, err := find(all, a.Network)
			if err != nil {
				return nil, err
			}
			if err := checkAttachment(n, a); err != nil {
				return nil, err
			}
			for _, x := range nets {
				if x.ID == n.ID {
					return nil, fmt.Errorf("network %s given twice", n.Name)
				}
			}
			nets = append(nets, n)
		}
	default:
		return nil, fmt.Errorf("invalid network mode %q", req.Mode)
	}

	if old, err := m.loadState(req.ID); err != nil {
		return nil, err
	} else if old != nil {
		if err := m.teardown(req.ID); err != nil {
			return nil, err
		}
	}
	var joined *epState
	if mode == "container" {
		if joined, err = m.loadState(req.Join); err != nil {
			return nil, err
		}
		if joined == nil || joined.Mode == "container" {
			return nil, fmt.Errorf("network mode container: container %s is not running", req.Join)
		}
		if joined.Mode == "host" {
			// Its Result would say "" as for the host's namespace; make
			// the user say so.
			return nil, fmt.Errorf("network mode container: container %s uses the host's network: use --network host", req.Join)
		}
	}

	st := &epState{ID: req.ID, Name: req.Name, Mode: mode, Join: req.Join,
		Hostname: req.Hostname, Domainname: req.Domainname}
	if mode != "container" {
		st.Files = filepath.Join(m.filesDir, req.ID)
	}
	if mode == "none" || mode == "bridge" {
		st.Netns = m.NetnsPath(req.ID)
	}
	// Recorded before anything is made: Teardown undoes from it.
	if err := m.saveState(st); err != nil {
		return nil, err
	}
	// res is set to nil by an error return: the deferred cleanup keeps
	// its own reference to the held sockets.
	res = &Result{Files: m.files(req.ID), Warnings: warnings}
	partial := res
	defer func() {
		if err != nil {
			for _, f := range partial.Held {
				f.Close()
			}
			if terr := m.teardown(req.ID); terr != nil {
				logrus.Warnf("network: cleaning up after a failed setup of %s: %v", req.ID, terr)
			}
			res = nil
		}
	}()

	switch mode {
	case "container":
		res.Files = m.files(joined.ID)
		res.Netns = joined.Netns
		return res, nil
	case "none", "bridge":
		if err := os.MkdirAll(m.nsDir, 0o700); err != nil {
			return nil, fmt.Errorf("netns dir: %w", err)
		}
		if err := nsfile.CreateUp(st.Netns); err != nil {
			return nil, err
		}
		crashpoint.At("network-setup-netns")
		res.Netns = st.Netns
	}

	for i, n := range nets {
		if err := m.attach(st, n, atts[i], i == 0); err != nil {
			return nil, err
		}
		crashpoint.At("network-setup-veth")
	}

	if len(req.Ports) > 0 {
		for _, p := range req.Ports {
			if portIs6(p) && !nets[0].IPv6 {
				return nil, fmt.Errorf("cannot publish on %s: network %s has no IPv6", p.HostIP, nets[0].Name)
			}
		}
		held, ports, err := m.holdPorts(req.Ports, nets[0].IPv6)
		res.Held = held
		if err != nil {
			return nil, err
		}
		st.Ports = ports
		if err := m.saveState(st); err != nil {
			return nil, err
		}
		if err := m.publish(st, nets[0]); err != nil {
			return nil, err
		}
		res.Ports = ports
		crashpoint.At("network-setup-publish")
	}

	// Files: host-gateway is the first network's gateway, or with
	// --network host an address of the host.
	var gw netip.Addr
	switch {
	case len(nets) > 0:
		gw = nets[0].Gateway
	case mode == "host" && len(extra) > 0:
		if gw, err = m.hostAddr(); err != nil {
			return nil, err
		}
	}
	for _, e := range extra {
		a := gw
		if e[1] != "host-gateway" {
			a = netip.MustParseAddr(e[1]).Unmap()
		} else if !gw.IsValid() {
			return nil, fmt.Errorf("--add-host %s:host-gateway: network mode %s has no gateway", e[0], mode)
		}
		st.Extra = append(st.Extra, etcfiles.Host{Addr: a, Names: []string{e[0]}})
	}
	if err := m.saveState(st); err != nil {
		return nil, err
	}
	w, err := m.writeFiles(st, req.DNS)
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, w...)
	if err := m.joinHosts(st); err != nil {
		return nil, err
	}
	for _, a := range st.Attach {
		res.Endpoints = append(res.Endpoints, a.endpoint(st))
	}
	return res, nil
}

func checkAttachment(n *Network, a Attachment) error {
	if n.Default {
		if a.IP.IsValid() {
			return fmt.Errorf("--ip is supported on user-defined networks only, not on network %s", n.Name)
		}
		if len(a.Aliases) > 0 {
			return fmt.Errorf("network aliases are supported on user-defined networks only, not on network %s", n.Name)
		}
	}
	if a.IP.IsValid() {
		ip := a.IP.Unmap()
		if !ip.Is4() {
			return fmt.Errorf("--ip %v: not an IPv4 address (use --ip6)", a.IP)
		}
		if !n.Subnet.Contains(ip) || ip == n.Subnet.Addr() || ip == n.Gateway {
			return fmt.Errorf("address %v is not a free host address of subnet %v of network %s", ip, n.Subnet, n.Name)
		}
	}
	if a.IP6.IsValid() {
		ip := a.IP6
		if !n.IPv6 {
			return fmt.Errorf("--ip6 %v: network %s has no IPv6", ip, n.Name)
		}
		if !n.Subnet6.Contains(ip) || ip == n.Subnet6.Addr() || ip == n.Gateway6 {
			return fmt.Errorf("address %v is not a free host address of subnet %v of network %s", ip, n.Subnet6, n.Name)
		}
	}
	return nil
}

// ensureNetwork makes the bridge, its rules and forwarding exist.
func (m *Manager) ensureNetwork(n *Network) error {
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return err
	}
	err = h.EnsureBridge(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), n.MTU)
	h.Close()
	if err != nil {
		return err
	}
	setRules := func(v6 bool) func(fw *nft.Firewall) error {
		return func(fw *nft.Firewall) error {
			ok, err := fw.HasNetwork(n.Bridge)
			if err != nil || ok {
				return err
			}
			return fw.SetNetwork(n.nft(v6))
		}
	}
	if err := m.fwDo(setRules(false)); err != nil {
		return err
	}
	if !n.Internal {
		// Routing to and from the world; an internal network needs none.
		if err := m.sysctlOn("/proc/sys/net/ipv4/ip_forward"); err != nil {
			return err
		}
	}
	if !n.IPv6 {
		return nil
	}
	if err := m.bridgeAddr6(n); err != nil {
		return err
	}
	if err := m.fw6Do(setRules(true)); err != nil {
		return err
	}
	if !n.Internal {
		return m.sysctlOn("/proc/sys/net/ipv6/conf/all/forwarding")
	}
	return nil
}

// bridgeAddr6 gives a dual-stack network's bridge its IPv6 gateway.
func (m *Manager) bridgeAddr6(n *Network) error {
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.AddBridgeAddr(n.Bridge, netip.PrefixFrom(n.Gateway6, n.Subnet6.Bits()))
}

// attach puts the container (whose netns exists) on network n: lease,
// veth, address. The state is saved before each step.
func (m *Manager) attach(st *epState, n *Network, a Attachment, first bool) error {
	ifIndex := 0
	for slices.ContainsFunc(st.Attach, func(x epNet) bool { return x.IfName == fmt.Sprintf("eth%d", ifIndex) }) {
		ifIndex++
	}
	ep := epNet{NetworkID: n.ID, Network: n.Name, Bridge: n.Bridge, Default: n.Default,
		Aliases: a.Aliases, Gateway: n.Gateway, Gateway6: n.Gateway6, HostVeth: hostVeth(st.ID, n.ID), IfName: fmt.Sprintf("eth%d", ifIndex)}
	// Under the network's lock, so Remove sees either this container or
	// a network it may remove.
	nl, err := m.lockNet(n.ID)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(m.netDir, n.ID+".json")); err != nil {
		nl.Close()
		return fmt.Errorf("network %s: %w", n.Name, ErrNotFound)
	}
	st.Attach = append(st.Attach, ep)
	err = m.saveState(st)
	nl.Close()
	if err != nil {
		return err
	}
	i := len(st.Attach) - 1
	if err := m.ensureNetwork(n); err != nil {
		return err
	}
	pool := m.pool(n)
	want := a.IP.Unmap()
	if err := refuseTaken(pool, st.ID, want, n.Name); err != nil {
		return err
	}
	ip, err := pool.Allocate(st.ID, want, a.PreferIP.Unmap())
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	mac := a.MAC
	if len(mac) == 0 {
		mac = macFor(ip)
	}
	st.Attach[i].IP = netip.PrefixFrom(ip, n.Subnet.Bits())
	st.Attach[i].MAC = mac.String()
	if err := m.saveState(st); err != nil {
		return err
	}
	if n.IPv6 {
		// Recorded in the state before the veth is made, as the IPv4
		// lease: teardown releases both pools anyway.
		pool6 := m.pool6(n)
		if err := refuseTaken(pool6, st.ID, a.IP6, n.Name); err != nil {
			return err
		}
		ip6, err := pool6.Allocate(st.ID, a.IP6, a.PreferIP6)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		st.Attach[i].IP6 = netip.PrefixFrom(ip6, n.Subnet6.Bits())
		if err := m.saveState(st); err != nil {
			return err
		}
	}
	v := link.Veth{HostName: st.Attach[i].HostVeth, Bridge: n.Bridge, Netns: st.Netns, IfName: st.Attach[i].IfName,
		Addr: st.Attach[i].IP, Addr6: st.Attach[i].IP6, MTU: n.MTU, MAC: mac, Hairpin: true}
	if first && !n.Internal {
		v.Gateway = n.Gateway
		if n.IPv6 {
			v.Gateway6 = n.Gateway6
		}
	}
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.AddVeth(v); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// refuseTaken says, in the user's words, that want (when valid) is held
// by another container.
func refuseTaken(pool *ipam.Pool, id string, want netip.Addr, network string) error {
	if !want.IsValid() {
		return nil
	}
	leases, err := pool.Leases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.Addr == want && l.ID != id {
			return fmt.Errorf("address %v is already in use on network %s", want, network)
		}
	}
	return nil
}

// publish adds the container's ports, to its address on n, in one
// batch; with any port reachable through the host's loopback, the
// bridge gets route_localnet (the table's guard chain drops what
// would abuse it).
func (m *Manager) publish(st *epState, n *Network) error {
	if err := m.fwDo(func(fw *nft.Firewall) error { return fw.Publish(st.nftPorts(false)) }); err != nil {
		return err
	}
	if ports := st.nftPorts(true); len(ports) > 0 {
		if err := m.fw6Do(func(fw *nft.Firewall) error { return fw.Publish(ports) }); err != nil {
			return err
		}
	}
	for _, p := range st.Ports {
		if portIs6(p) {
			continue
		}
		if !p.HostIP.IsValid() || p.HostIP.IsUnspecified() || p.HostIP.IsLoopback() {
			return m.sysctlOn("/proc/sys/net/ipv4/conf/" + n.Bridge + "/route_localnet")
		}
	}
	return nil
}

// unpublish removes the container's ports: the elements that lead to
// one of its addresses.
func (m *Manager) unpublish(st *epState) error {
	mine := map[netip.Addr]bool{}
	has6 := false
	for _, a := range st.Attach {
		if a.IP.IsValid() {
			mine[a.IP.Addr()] = true
		}
		if a.IP6.IsValid() {
			mine[a.IP6.Addr()] = true
			has6 = true
		}
	}
	if len(mine) == 0 || len(st.Ports) == 0 {
		return nil
	}
	do := []func(func(*nft.Firewall) error) error{m.fwDo}
	if has6 {
		do = append(do, m.fw6Do)
	}
	for _, fwDo := range do {
		if err := fwDo(func(fw *nft.Firewall) error {
			published, err := fw.Published()
			if err != nil {
				return err
			}
			var gone []nft.Port
			for _, p := range published {
				if mine[p.Addr] {
					gone = append(gone, p)
				}
			}
			return fw.Unpublish(gone)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Teardown undoes Setup for id; idempotent, and it works from whatever
// a crashed Setup recorded.
func (m *Manager) Teardown(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	lk, err := m.lockContainer(id)
	if err != nil {
		return err
	}
	defer lk.Close()
	if err := m.teardown(id); err != nil {
		return err
	}
	// Unlinked while held: a waiter then finds no state, nothing to do.
	if err := os.Remove(filepath.Join(m.epDir, id+".lock")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint lock: %w", err)
	}
	return nil
}

func (m *Manager) teardown(id string) error {
	st, err := m.loadState(id)
	if err != nil {
		return err
	}
	if st == nil {
		// Nothing recorded means nothing made (the state is written
		// first); a leftover from an older layout is still removed.
		if err := nsfile.Remove(filepath.Join(m.nsDir, id)); err != nil {
			return err
		}
		return removeAll(filepath.Join(m.filesDir, id))
	}
	if err := m.unpublish(st); err != nil {
		return err
	}
	crashpoint.At("network-teardown-unpublish")
	// Leave the peers' /etc/hosts first, under the networks' locks.
	if len(st.Attach) > 0 {
		for i := range st.Attach {
			st.Attach[i].Leaving = true
		}
		if err := m.leaveHosts(st, st.Attach); err != nil {
			return err
		}
	}
	for len(st.Attach) > 0 {
		if err := m.detach(st, st.Attach[0]); err != nil {
			return err
		}
	}
	if st.Netns != "" {
		if err := nsfile.Remove(st.Netns); err != nil {
			return err
		}
	}
	if st.Files != "" {
		if err := removeAll(st.Files); err != nil {
			return err
		}
	}
	if err := os.Remove(m.statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove endpoint state: %w", err)
	}
	return nil
}

func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// detach removes one attachment's veth and lease, then forgets it.
func (m *Manager) detach(st *epState, a epNet) error {
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return err
	}
	err = h.RemoveVeth(a.HostVeth)
	h.Close()
	if err != nil {
		return err
	}
	nets, err := m.load()
	if err != nil {
		return err
	}
	if n, err := find(nets, a.NetworkID); err == nil {
		if err := m.pool(n).Release(st.ID); err != nil {
			return err
		}
		if n.IPv6 {
			if err := m.pool6(n).Release(st.ID); err != nil {
				return err
			}
		}
	}
	st.Attach = slices.DeleteFunc(st.Attach, func(x epNet) bool { return x.NetworkID == a.NetworkID })
	return m.saveState(st)
}

// Connect attaches a set-up container to one more network.
func (m *Manager) Connect(id string, a Attachment) (*Endpoint, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	lk, err := m.lockContainer(id)
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	st, err := m.loadState(id)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("container %s has no network set up: %w", id, ErrNotFound)
	}
	if st.Mode != "bridge" {
		return nil, fmt.Errorf("container %s uses network mode %s: cannot connect it to a network", st.label(), st.Mode)
	}
	n, err := m.Get(a.Network)
	if err != nil {
		return nil, err
	}
	if err := checkAttachment(n, a); err != nil {
		return nil, err
	}
	for _, x := range st.Attach {
		if x.NetworkID == n.ID {
			return nil, fmt.Errorf("container %s is already connected to network %s", st.label(), n.Name)
		}
	}
	if err := m.attach(st, n, a, false); err != nil {
		if derr := m.detach(st, st.Attach[len(st.Attach)-1]); derr != nil {
			logrus.Warnf("network: undoing connect of %s to %s: %v", id, n.Name, derr)
		}
		return nil, err
	}
	if err := m.joinHosts(st); err != nil {
		return nil, err
	}
	ep := st.Attach[len(st.Attach)-1].endpoint(st)
	return &ep, nil
}

// Disconnect detaches a set-up container from a network.
func (m *Manager) Disconnect(id, network string) error {
	if err := validID(id); err != nil {
		return err
	}
	lk, err := m.lockContainer(id)
	if err != nil {
		return err
	}
	defer lk.Close()
	st, err := m.loadState(id)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("container %s has no network set up: %w", id, ErrNotFound)
	}
	n, err := m.Get(network)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(st.Attach, func(x epNet) bool { return x.NetworkID == n.ID })
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s", st.label(), n.Name)
	}
	if i == 0 && len(st.Ports) > 0 {
		if err := m.unpublish(st); err != nil {
			return err
		}
		st.Ports = nil
	}
	st.Attach[i].Leaving = true
	if err := m.leaveHosts(st, []epNet{st.Attach[i]}); err != nil {
		return err
	}
	return m.detach(st, st.Attach[i])
}

// Status is the state of a set-up container; nil, nil when it holds
// nothing.
func (m *Manager) Status(id string) (*Result, error) {
	st, err := m.loadState(id)
	if err != nil || st == nil {
		return nil, err
	}
	res := &Result{Netns: st.Netns, Files: m.files(id), Ports: st.Ports}
	if st.Mode == "container" {
		j, err := m.loadState(st.Join)
		if err != nil {
			return nil, err
		}
		if j != nil {
			res.Netns = j.Netns
		}
		res.Files = m.files(st.Join)
	}
	for _, a := range st.Attach {
		if a.IP.IsValid() && !a.Leaving {
			res.Endpoints = append(res.Endpoints, a.endpoint(st))
		}
	}
	return res, nil
}

// Reclaim undoes what containers left that are no longer live: their
// endpoints, leases, netns files and /etc files.
func (m *Manager) Reclaim(live func(id string) bool) error {
	states, err := m.states()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, st := range states {
		if live(st.ID) {
			known[st.ID] = true
			continue
		}
		if err := m.Teardown(st.ID); err != nil {
			return err
		}
	}
	nets, err := m.load()
	if err != nil {
		return err
	}
	for _, n := range nets {
		pools := []*ipam.Pool{m.pool(n)}
		if n.IPv6 {
			pools = append(pools, m.pool6(n))
		}
		for _, p := range pools {
			if _, err := p.Reclaim(func(id string) bool { return !known[id] && !live(id) }); err != nil {
				return err
			}
		}
	}
	for _, dir := range []string{m.nsDir, m.filesDir} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reclaim: %w", err)
		}
		for _, e := range ents {
			if known[e.Name()] || live(e.Name()) {
				continue
			}
			if err := m.Teardown(e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}
