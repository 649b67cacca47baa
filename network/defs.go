package network

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/netns/ipam"
	"github.com/berth-project/berth/netns/link"
	"github.com/berth-project/berth/netns/nft"
	"golang.org/x/sys/unix"
)

// DefaultName is the name of the default network, DefaultBridge its
// device.
const (
	DefaultName   = "bridge"
	DefaultBridge = "berth0"
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// lockDefs serialises changes to the set of network definitions.
func (m *Manager) lockDefs() (*os.File, error) {
	if err := os.MkdirAll(m.netDir, 0o700); err != nil {
		return nil, fmt.Errorf("network dir: %w", err)
	}
	return lockfile.Open(filepath.Join(m.netDir, "defs.lock"), unix.LOCK_EX)
}

// lockNet is one network's lock: membership of its endpoints and the
// /etc/hosts of its containers change under it.
func (m *Manager) lockNet(id string) (*os.File, error) {
	if err := os.MkdirAll(m.netDir, 0o700); err != nil {
		return nil, fmt.Errorf("network dir: %w", err)
	}
	return lockfile.Open(filepath.Join(m.netDir, id+".lock"), unix.LOCK_EX)
}

// lockNets takes the locks of several networks in id order, so two
// containers on the same two networks cannot deadlock.
func (m *Manager) lockNets(ids []string) (unlock func(), err error) {
	ids = append([]string(nil), ids...)
	sort.Strings(ids)
	var held []*os.File
	unlock = func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Close()
		}
	}
	for i, id := range ids {
		if i > 0 && ids[i-1] == id {
			continue
		}
		f, err := m.lockNet(id)
		if err != nil {
			unlock()
			return nil, err
		}
		held = append(held, f)
	}
	return unlock, nil
}

func (m *Manager) pool(n *Network) *ipam.Pool {
	return &ipam.Pool{Dir: m.ipamDir, Name: n.ID, Subnet: n.Subnet, Gateway: n.Gateway, Range: n.IPRange}
}

// pool6 is a dual-stack network's IPv6 pool: a file of its own.
func (m *Manager) pool6(n *Network) *ipam.Pool {
	return &ipam.Pool{Dir: m.ipamDir, Name: n.ID + "-v6", Subnet: n.Subnet6, Gateway: n.Gateway6}
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// load reads every stored network definition.
func (m *Manager) load() ([]*Network, error) {
	ents, err := os.ReadDir(m.netDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []*Network
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.netDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read network: %w", err)
		}
		var n Network
		if err := json.Unmarshal(data, &n); err != nil {
			return nil, fmt.Errorf("network %s: %w", e.Name(), err)
		}
		out = append(out, &n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *Manager) store(n *Network) error {
	data, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.netDir, 0o700); err != nil {
		return fmt.Errorf("network dir: %w", err)
	}
	return atomicfile.Write(filepath.Join(m.netDir, n.ID+".json"), append(data, '\n'), 0o600)
}

// hostPrefixes are the host's routes and address subnets.
func (m *Manager) hostPrefixes() ([]netip.Prefix, error) {
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.Prefixes()
}

// candidates are the subnets tried when none is asked for, Docker's
// order: 172.17-31.0.0/16, then 192.168.x.0/20.
func candidates() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i < 256; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// pickSubnet returns the first candidate that overlaps no network and
// no host route. Called under the defs lock.
func (m *Manager) pickSubnet(nets []*Network) (netip.Prefix, error) {
	host, err := m.hostPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, c := range candidates() {
		if m.overlap(c, nets, host) == "" {
			return c, nil
		}
	}
	return netip.Prefix{}, errors.New("no free subnet left for a network: give one with --subnet")
}

// ulaSubnet picks an IPv6 subnet for --ipv6 with none given, as Docker
// 27 and later do: a /64 of a unique local prefix (RFC 4193, fd00::/8
// with a random 40-bit global ID) that overlaps no network and no host
// route. Called under the defs lock.
func (m *Manager) ulaSubnet(nets []*Network) (netip.Prefix, error) {
	host, err := m.hostPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	for range 16 {
		var b [16]byte
		b[0] = 0xfd
		if _, err := rand.Read(b[1:6]); err != nil {
			return netip.Prefix{}, fmt.Errorf("random ULA prefix: %w", err)
		}
		p := netip.PrefixFrom(netip.AddrFrom16(b), 64)
		if m.overlap(p, nets, host) == "" {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free IPv6 subnet found: give one with --subnet")
}

// checkFree refuses a subnet that overlaps another network's or a host
// route.
func (m *Manager) checkFree(sub netip.Prefix, nets []*Network) error {
	host, err := m.hostPrefixes()
	if err != nil {
		return err
	}
	if what := m.overlap(sub, nets, host); what != "" {
		return fmt.Errorf("subnet %v overlaps %s", sub, what)
	}
	return nil
}

// overlap names what s collides with, or "".
func (m *Manager) overlap(s netip.Prefix, nets []*Network, host []netip.Prefix) string {
	for _, n := range nets {
		for _, x := range []netip.Prefix{n.Subnet, n.Subnet6} {
			if x.IsValid() && x.Overlaps(s) {
				return fmt.Sprintf("network %s (%v)", n.Name, x)
			}
		}
	}
	for _, h := range host {
		if h.Overlaps(s) {
			return fmt.Sprintf("a route of the host (%v)", h)
		}
	}
	return ""
}

// ensureDefault returns the default network, recording it first when
// missing. Called under the defs lock.
func (m *Manager) ensureDefault(nets []*Network) (*Network, error) {
	for _, n := range nets {
		if n.Default {
			return n, nil
		}
	}
	s, err := m.pickSubnet(nets)
	if err != nil {
		return nil, fmt.Errorf("default network: %w", err)
	}
	n := &Network{ID: newID(), Name: DefaultName, Driver: "bridge", Bridge: DefaultBridge,
		Subnet: s, Gateway: s.Addr().Next(), Default: true, Created: time.Now().UTC()}
	if err := m.store(n); err != nil {
		return nil, err
	}
	return n, nil
}

// all returns every network, the default one recorded when missing.
func (m *Manager) all() ([]*Network, error) {
	nets, err := m.load()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Default {
			return nets, nil
		}
	}
	lk, err := m.lockDefs()
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	if nets, err = m.load(); err != nil {
		return nil, err
	}
	if _, err := m.ensureDefault(nets); err != nil {
		return nil, err
	}
	return m.load()
}

// Create makes a network: its definition only; the bridge and its
// rules are made when the first container joins.
func (m *Manager) Create(o CreateOpts) (*Network, error) {
	if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("invalid network name %q: want letters, digits, '_', '.', '-'", o.Name)
	}
	if o.MTU < 0 || (o.MTU > 0 && o.MTU < 68) || o.MTU > 65535 {
		return nil, fmt.Errorf("invalid mtu %d", o.MTU)
	}
	n := &Network{ID: newID(), Name: o.Name, Driver: "bridge", Internal: o.Internal, MTU: o.MTU,
		Labels: o.Labels, Created: time.Now().UTC(), IPv6: o.IPv6}
	n.Bridge = "br-" + n.ID[:12]
	if err := parse6(n, o); err != nil {
		return nil, err
	}
	var err error
	if o.Subnet != "" {
		if n.Subnet, err = ipv4.parseSubnet(o.Subnet); err != nil {
			return nil, err
		}
	} else if o.Gateway != "" || o.IPRange != "" {
		return nil, errors.New("--gateway and --ip-range need --subnet")
	}
	if o.Gateway != "" {
		if n.Gateway, err = parseGateway(o.Gateway, n.Subnet); err != nil {
			return nil, err
		}
	}
	if o.IPRange != "" {
		if n.IPRange, err = netip.ParsePrefix(o.IPRange); err != nil || !n.IPRange.Addr().Is4() {
			return nil, fmt.Errorf("invalid ip range %q", o.IPRange)
		}
		if n.IPRange.Bits() < n.Subnet.Bits() || !n.Subnet.Contains(n.IPRange.Addr()) {
			return nil, fmt.Errorf("ip range %v is not inside subnet %v", n.IPRange, n.Subnet)
		}
		n.IPRange = n.IPRange.Masked()
	}

	lk, err := m.lockDefs()
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	nets, err := m.load()
	if err != nil {
		return nil, err
	}
	if o.Name == DefaultName || o.Name == "host" || o.Name == "none" {
		return nil, fmt.Errorf("network name %s is reserved", o.Name)
	}
	for _, x := range nets {
		if x.Name == o.Name {
			return nil, fmt.Errorf("network %s already exists", o.Name)
		}
	}
	if _, err := m.ensureDefault(nets); err != nil {
		return nil, err
	}
	if nets, err = m.load(); err != nil {
		return nil, err
	}
	if err := m.place(&n.Subnet, &n.Gateway, nets, m.pickSubnet); err != nil {
		return nil, err
	}
	if n.IPv6 {
		if err := m.place(&n.Subnet6, &n.Gateway6, nets, m.ulaSubnet); err != nil {
			return nil, err
		}
	}
	if err := m.store(n); err != nil {
		return nil, err
	}
	return n, nil
}

// parse6 checks and records the IPv6 part of a network create.
func parse6(n *Network, o CreateOpts) error {
	if !o.IPv6 {
		if o.Subnet6 != "" || o.Gateway6 != "" {
			return errors.New("an IPv6 --subnet or --gateway needs --ipv6")
		}
		return nil
	}
	var err error
	if o.Subnet6 != "" {
		if n.Subnet6, err = ipv6.parseSubnet(o.Subnet6); err != nil {
			return err
		}
		if a := n.Subnet6.Addr(); a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLoopback() {
			return fmt.Errorf("invalid subnet %v: link-local, multicast or loopback", n.Subnet6)
		}
	} else if o.Gateway6 != "" {
		return errors.New("an IPv6 --gateway needs an IPv6 --subnet")
	}
	if o.Gateway6 != "" {
		if n.Gateway6, err = parseGateway(o.Gateway6, n.Subnet6); err != nil {
			return err
		}
	}
	return nil
}

// family is what differs between the IPv4 and the IPv6 half of a
// network's definition; the rest is checked and completed alike.
type family struct {
	is      func(netip.Addr) bool
	wrong   string // the complaint about a subnet not of the family
	maxBits int    // the longest prefix that leaves room for containers
}

var (
	ipv4 = family{is: netip.Addr.Is4, wrong: "want an IPv4 subnet (an IPv6 one goes in Subnet6)", maxBits: 30}
	ipv6 = family{is: func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }, wrong: "want an IPv6 subnet", maxBits: 126}
)

// parseSubnet reads a --subnet of the family: a network address whose
// prefix leaves room for a gateway and containers.
func (f family) parseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !f.is(p.Addr()) {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %q: %s", s, f.wrong)
	}
	if p != p.Masked() || p.Bits() > f.maxBits {
		return netip.Prefix{}, fmt.Errorf("invalid subnet %v: want a network address and a /%d or larger", p, f.maxBits)
	}
	return p, nil
}

// parseGateway reads a --gateway: a host address of subnet.
func parseGateway(s string, subnet netip.Prefix) (netip.Addr, error) {
	gw, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid gateway %q", s)
	}
	if !subnet.Contains(gw) || gw == subnet.Addr() {
		return netip.Addr{}, fmt.Errorf("gateway %v is not a host address of subnet %v", gw, subnet)
	}
	return gw, nil
}

// place completes one half of a new network: the subnet asked for once
// it is seen to be free, or one that pick finds, and the subnet's first
// host as the gateway unless one was given.
func (m *Manager) place(subnet *netip.Prefix, gw *netip.Addr, nets []*Network, pick func([]*Network) (netip.Prefix, error)) error {
	if subnet.IsValid() {
		if err := m.checkFree(*subnet, nets); err != nil {
			return err
		}
	} else {
		p, err := pick(nets)
		if err != nil {
			return err
		}
		*subnet = p
	}
	if !gw.IsValid() {
		*gw = subnet.Addr().Next()
	}
	return nil
}

// List returns every network, the default one included.
func (m *Manager) List() ([]*Network, error) { return m.all() }

// Get finds a network by name, full id or unique id prefix.
func (m *Manager) Get(ref string) (*Network, error) {
	nets, err := m.all()
	if err != nil {
		return nil, err
	}
	return find(nets, ref)
}

func find(nets []*Network, ref string) (*Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network name: %w", ErrNotFound)
	}
	for _, n := range nets {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var hit *Network
	for _, n := range nets {
		if strings.HasPrefix(n.ID, ref) {
			if hit != nil {
				return nil, fmt.Errorf("network id prefix %s is ambiguous", ref)
			}
			hit = n
		}
	}
	if hit == nil {
		return nil, fmt.Errorf("network %s: %w", ref, ErrNotFound)
	}
	return hit, nil
}

// Endpoints lists the containers attached to a network now.
func (m *Manager) Endpoints(ref string) ([]Endpoint, error) {
	n, err := m.Get(ref)
	if err != nil {
		return nil, err
	}
	states, err := m.states()
	if err != nil {
		return nil, err
	}
	var out []Endpoint
	for _, st := range states {
		for _, a := range st.Attach {
			if a.NetworkID == n.ID && a.IP.IsValid() && !a.Leaving {
				out = append(out, a.endpoint(st))
			}
		}
	}
	return out, nil
}

// Remove deletes an unused network: its bridge, rules, leases and
// definition.
func (m *Manager) Remove(ref string) error {
	lk, err := m.lockDefs()
	if err != nil {
		return err
	}
	defer lk.Close()
	nets, err := m.load()
	if err != nil {
		return err
	}
	n, err := find(nets, ref)
	if err != nil {
		return err
	}
	return m.remove(n)
}

// remove is Remove under the defs lock.
func (m *Manager) remove(n *Network) error {
	if n.Default {
		return fmt.Errorf("network %s is the default network and cannot be removed", n.Name)
	}
	nl, err := m.lockNet(n.ID)
	if err != nil {
		return err
	}
	defer nl.Close()
	if user, err := m.user(n.ID); err != nil {
		return err
	} else if user != "" {
		return fmt.Errorf("network %s is in use by container %s: %w", n.Name, user, ErrInUse)
	}
	if err := m.fwDo(func(fw *nft.Firewall) error { return fw.RemoveNetwork(n.Bridge) }); err != nil {
		return err
	}
	if n.IPv6 {
		if err := m.fw6Do(func(fw *nft.Firewall) error { return fw.RemoveNetwork(n.Bridge) }); err != nil {
			return err
		}
	}
	h, err := link.Open(m.o.HostNetns)
	if err != nil {
		return err
	}
	err = h.DeleteBridge(n.Bridge)
	h.Close()
	if err != nil {
		return err
	}
	if err := m.pool(n).Remove(); err != nil {
		return err
	}
	if err := m.pool6(n).Remove(); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(m.netDir, n.ID+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	os.Remove(filepath.Join(m.netDir, n.ID+".lock"))
	return nil
}

// user names a container attached to network id (state or lease), or "".
func (m *Manager) user(id string) (string, error) {
	states, err := m.states()
	if err != nil {
		return "", err
	}
	for _, st := range states {
		for _, a := range st.Attach {
			if a.NetworkID == id {
				return st.label(), nil
			}
		}
	}
	return "", nil
}

// Prune removes the user networks no container uses and returns their
// names. Leases of containers that are gone are reclaimed by Reclaim,
// which the caller runs first.
func (m *Manager) Prune() ([]string, error) {
	lk, err := m.lockDefs()
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	nets, err := m.load()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nets {
		if n.Default {
			continue
		}
		err := m.remove(n)
		if errors.Is(err, ErrInUse) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}
