package container

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/liveness"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/safetree"
)

// Network is the network manager (package network) as the engine uses
// it: a container's network is set up at each start, before the runtime
// makes the container, and torn down in the one teardown (as a hook).
type Network interface {
	Get(ref string) (*network.Network, error)
	Setup(req network.Request) (*network.Result, error)
	Teardown(id string) error
	// NetnsPath is where Setup makes the network namespace of container
	// id in network modes none and bridge.
	NetnsPath(id string) string
	Connect(id string, a network.Attachment) (*network.Endpoint, error)
	Disconnect(id, network string) error
	Reclaim(live func(id string) bool) error
	Endpoints(ref string) ([]network.Endpoint, error)
	List() ([]*network.Network, error)
	Remove(ref string) error
}

// ErrNoNetworking is returned for a bridge mode when the engine was built
// without a network manager.
var ErrNoNetworking = errors.New("bridge networking is not available")

// netKind is what HostConfig.NetworkMode names: none, host, container or
// bridge (the default network and user networks).
func netKind(mode string) string {
	switch {
	case mode == "" || mode == "none":
		return "none"
	case mode == "host":
		return "host"
	case strings.HasPrefix(mode, "container:"):
		return "container"
	default:
		return "bridge"
	}
}

// checkNetwork checks, before a container is created, that what its
// network mode names exists: the network, or the container whose network
// it shares, which must be running (recorded by id, with its host name).
func (s *Store) checkNetwork(r *Record) error {
	mode := r.HostConfig.NetworkMode
	switch netKind(mode) {
	case "container":
		other, err := s.netPeer(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return err
		}
		r.HostConfig.NetworkMode = "container:" + other.ID
		r.Config.Hostname, r.Config.Domainname = other.Config.Hostname, other.Config.Domainname
		if r.Spec != nil {
			r.Spec.Hostname, r.Spec.Domainname = other.Config.Hostname, other.Config.Domainname
		}
	case "bridge":
		if s.net == nil {
			return ErrNoNetworking
		}
		n, err := s.net.Get(mode)
		if err != nil {
			if errors.Is(err, network.ErrNotFound) {
				return fmt.Errorf("network %s not found", mode)
			}
			return err
		}
		if r.NetworkingConfig != nil {
			if ep := r.NetworkingConfig.EndpointsConfig[mode]; ep != nil {
				if n.Default && (ep.IPAMConfig != nil || len(ep.Aliases) > 0) {
					return errors.New("user specified IP address and network-scoped aliases are supported on user defined networks only")
				}
				if err := checkIPAM(n, ep.IPAMConfig); err != nil {
					return err
				}
				if mode != n.Name {
					delete(r.NetworkingConfig.EndpointsConfig, mode)
					r.NetworkingConfig.EndpointsConfig[n.Name] = ep
				}
			}
		}
		r.HostConfig.NetworkMode = n.Name
		if err := s.checkTaken(r, n); err != nil {
			return err
		}
	}
	return nil
}

// checkTaken refuses, before the container exists, an --ip that a running
// container has and a host port that a process has bound: the start
// would fail on them (and does, should they be taken meanwhile), but a
// refused run -d must leave nothing behind.
func (s *Store) checkTaken(r *Record, n *network.Network) error {
	if r.NetworkingConfig != nil {
		if ep := r.NetworkingConfig.EndpointsConfig[n.Name]; ep != nil && ep.IPAMConfig != nil {
			eps, err := s.net.Endpoints(n.Name)
			if err != nil {
				return err
			}
			for _, e := range eps {
				for _, want := range []string{ep.IPAMConfig.IPv4Address, ep.IPAMConfig.IPv6Address} {
					if want != "" && (e.IP.IsValid() && e.IP.Addr().String() == want || e.IP6.IsValid() && e.IP6.Addr().String() == want) {
						return fmt.Errorf("address %s is already in use on network %s", want, n.Name)
					}
				}
			}
		}
	}
	ports, err := publishedPorts(r)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		if err := portFree(p); err != nil {
			return err
		}
	}
	return nil
}

// portFree binds a published host port for a moment.
func portFree(p network.PortBinding) error {
	host := ""
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(p.HostPort)))
	var err error
	if p.Proto == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	}
	if errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("host port %d/%s is already in use", p.HostPort, p.Proto)
	}
	if err != nil {
		return fmt.Errorf("host port %d/%s: %w", p.HostPort, p.Proto, err)
	}
	return nil
}

// checkIPAM refuses an --ip or --ip6 outside the network's subnet.
func checkIPAM(n *network.Network, c *EndpointIPAMConfig) error {
	if c == nil {
		return nil
	}
	if c.IPv4Address != "" {
		a, err := netip.ParseAddr(c.IPv4Address)
		if err != nil || !n.Subnet.Contains(a) {
			return fmt.Errorf("address %s is not in the subnet %s of network %s", c.IPv4Address, n.Subnet, n.Name)
		}
	}
	if c.IPv6Address != "" {
		a, err := netip.ParseAddr(c.IPv6Address)
		if err != nil || !n.IPv6 || !n.Subnet6.Contains(a) {
			return fmt.Errorf("address %s is not in an IPv6 subnet of network %s", c.IPv6Address, n.Name)
		}
	}
	return nil
}

// netPeer finds the running container whose network --network
// container:REF shares.
func (s *Store) netPeer(ref string) (*Record, error) {
	other, err := s.Find(ref)
	if err != nil {
		return nil, err
	}
	if !other.State.Running || !liveness.Alive(other.State.Pid, other.PidStart) {
		return nil, fmt.Errorf("cannot join the network of container %s: it is not running", other.Name)
	}
	return other, nil
}

// netRequest is the network request of a container, from its record.
func (s *Store) netRequest(r *Record) (network.Request, error) {
	h := &r.HostConfig
	req := network.Request{ID: r.ID, Name: r.Name, Mode: netKind(h.NetworkMode),
		Hostname: r.Config.Hostname, Domainname: r.Config.Domainname, ExtraHosts: h.ExtraHosts}
	for _, d := range h.Dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return req, fmt.Errorf("--dns %q: not an IP address", d)
		}
		req.DNS.Servers = append(req.DNS.Servers, a)
	}
	req.DNS.Search, req.DNS.Options = h.DnsSearch, h.DnsOptions
	switch req.Mode {
	case "container":
		other, err := s.netPeer(strings.TrimPrefix(h.NetworkMode, "container:"))
		if err != nil {
			return req, err
		}
		req.Join = other.ID
	case "bridge":
		names := []string{h.NetworkMode}
		var eps map[string]*EndpointSettings
		if r.NetworkingConfig != nil {
			eps = r.NetworkingConfig.EndpointsConfig
		}
		var more []string
		for n := range eps {
			if n != h.NetworkMode {
				more = append(more, n)
			}
		}
		sort.Strings(more)
		for _, n := range append(names, more...) {
			a, err := attachment(r, n, eps[n])
			if err != nil {
				return req, err
			}
			req.Networks = append(req.Networks, a)
		}
		ports, err := publishedPorts(r)
		if err != nil {
			return req, err
		}
		req.Ports = ports
	}
	return req, nil
}

// attachment is the request for network name, with the address the
// container had there last time preferred.
func attachment(r *Record, name string, ep *EndpointSettings) (network.Attachment, error) {
	a := network.Attachment{Network: name}
	if ep != nil {
		a.Aliases = ep.Aliases
		if c := ep.IPAMConfig; c != nil {
			var err error
			if c.IPv4Address != "" {
				if a.IP, err = netip.ParseAddr(c.IPv4Address); err != nil {
					return a, fmt.Errorf("--ip %q: %w", c.IPv4Address, err)
				}
			}
			if c.IPv6Address != "" {
				if a.IP6, err = netip.ParseAddr(c.IPv6Address); err != nil {
					return a, fmt.Errorf("--ip6 %q: %w", c.IPv6Address, err)
				}
			}
		}
		if ep.MacAddress != "" {
			mac, err := net.ParseMAC(ep.MacAddress)
			if err != nil {
				return a, fmt.Errorf("--mac-address %q: %w", ep.MacAddress, err)
			}
			a.MAC = mac
		}
	}
	if last := r.LastIPs[name]; last != "" {
		if ip, err := netip.ParseAddr(last); err == nil {
			a.PreferIP = ip
		}
	}
	if last := r.LastIPs6[name]; last != "" {
		if ip, err := netip.ParseAddr(last); err == nil {
			a.PreferIP6 = ip
		}
	}
	return a, nil
}

// publishedPorts is -p, and with -P every exposed port not published
// otherwise, on a free host port; sorted, so each start asks the same.
func publishedPorts(r *Record) ([]network.PortBinding, error) {
	var out []network.PortBinding
	add := func(key string, b PortBinding) error {
		num, proto, ok := strings.Cut(key, "/")
		if !ok {
			proto = "tcp"
		}
		port, err := strconv.ParseUint(num, 10, 16)
		if err != nil || port == 0 {
			return fmt.Errorf("invalid port %q", key)
		}
		pb := network.PortBinding{Proto: proto, Port: uint16(port)}
		if b.HostIP != "" {
			if pb.HostIP, err = netip.ParseAddr(b.HostIP); err != nil {
				return fmt.Errorf("invalid host address %q", b.HostIP)
			}
		}
		if b.HostPort != "" {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil {
				return fmt.Errorf("invalid host port %q", b.HostPort)
			}
			pb.HostPort = uint16(hp)
		}
		out = append(out, pb)
		return nil
	}
	keys := make([]string, 0, len(r.HostConfig.PortBindings))
	for k := range r.HostConfig.PortBindings {
		keys = append(keys, k)
	}
	if r.HostConfig.PublishAllPorts {
		for k := range r.Config.ExposedPorts {
			if _, ok := r.HostConfig.PortBindings[k]; !ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		bs := r.HostConfig.PortBindings[k]
		if len(bs) == 0 {
			bs = []PortBinding{{}}
		}
		for _, b := range bs {
			if err := add(k, b); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// setupNetwork sets up the container's network for a start and puts it in
// spec: the namespace to join by path, the /etc files to bind-mount. The
// sockets that hold its published ports stay with this process, the
// container's owner, until the teardown. The caller's failure path runs
// the teardown, which undoes this.
func (s *Store) setupNetwork(r *Record, spec *specs.Spec) error {
	kind := netKind(r.HostConfig.NetworkMode)
	if s.net == nil {
		if kind == "bridge" || kind == "container" {
			return ErrNoNetworking
		}
		return nil
	}
	req, err := s.netRequest(r)
	if err != nil {
		return err
	}
	res, err := s.net.Setup(req)
	if err != nil {
		return err
	}
	s.holdNet(r.ID, res.Held)
	for _, w := range res.Warnings {
		logrus.Warn(w)
	}
	if res.Netns != "" {
		if spec.Linux == nil {
			return errors.New("the spec has no linux section")
		}
		linux, found := withNetnsPath(spec.Linux, res.Netns)
		if !found {
			return fmt.Errorf("container %s has no network namespace to join", r.Name)
		}
		spec.Linux = linux
	}
	mounts := append([]specs.Mount{}, spec.Mounts...)
	dests := make([]string, 0, len(res.Files))
	for d := range res.Files {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	var added []string
next:
	for _, d := range dests {
		for _, m := range mounts {
			if m.Destination == d {
				continue next // the user's own mount wins, as in Docker
			}
		}
		mounts = append(mounts, specs.Mount{Destination: d, Type: "bind", Source: res.Files[d],
			Options: []string{"rbind", "rprivate"}})
		added = append(added, d)
	}
	spec.Mounts = mounts
	if _, _, mapped := mappedRoot(r); !mapped && spec.Root != nil {
		makeFileTargets(spec.Root.Path, added)
	}
	s.recordNetwork(r, res)
	return nil
}

// withNetnsPath is a copy of l whose network namespace is the one at
// path, and whether l lists one.
func withNetnsPath(l *specs.Linux, path string) (*specs.Linux, bool) {
	linux := *l
	linux.Namespaces = slices.Clone(l.Namespaces)
	found := false
	for i := range linux.Namespaces {
		if linux.Namespaces[i].Type == specs.NetworkNamespace {
			linux.Namespaces[i].Path = path
			found = true
		}
	}
	return &linux, found
}

// makeFileTargets creates inside root the files that dests (/etc/hosts
// and the like) are mounted on, where the image lacks them, as Docker's
// init layer does. Made by the init, their copy-up would be charged to
// the container's memory cgroup, and its dirty page would keep that
// cgroup alive after its removal. Each is made by descriptor: the parent
// resolved inside the root, the file created new, never through a link.
// Whatever this cannot make (no parent directory, a symlink) is left to
// the init, which resolves it as before; hence errors only logged.
func makeFileTargets(root string, dests []string) {
	if len(dests) == 0 {
		return
	}
	t, err := safetree.OpenRoot(root)
	if err != nil {
		logrus.Debugf("mount targets in %s: %v", root, err)
		return
	}
	defer t.Close()
	for _, d := range dests {
		parent, err := t.Open(path.Dir(d), true)
		if err != nil {
			logrus.Debugf("mount target %s: %v", d, err)
			continue
		}
		fd, err := unix.Openat(int(parent.Fd()), path.Base(d), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
		parent.Close()
		if err != nil {
			if !errors.Is(err, unix.EEXIST) {
				logrus.Debugf("mount target %s: %v", d, err)
			}
			continue
		}
		unix.Close(fd)
	}
}

// recordNetwork puts what the start got into r.NetworkSettings, as
// Docker's inspect shows it.
func (s *Store) recordNetwork(r *Record, res *network.Result) {
	ns := &NetworkSettings{SandboxKey: res.Netns, Networks: map[string]*EndpointSettings{}}
	if len(res.Netns) > 0 {
		ns.SandboxID = r.ID
	}
	var asked map[string]*EndpointSettings
	if r.NetworkingConfig != nil {
		asked = r.NetworkingConfig.EndpointsConfig
	}
	for i, ep := range res.Endpoints {
		s.addEndpoint(r, ns, ep, asked[ep.Network], i == 0)
	}
	if kind := netKind(r.HostConfig.NetworkMode); kind == "host" || kind == "none" {
		ns.Networks[kind] = &EndpointSettings{}
	}
	if netKind(r.HostConfig.NetworkMode) == "bridge" {
		ns.Ports = map[string][]PortBinding{}
		for k := range r.Config.ExposedPorts {
			ns.Ports[k] = nil
		}
		for _, p := range res.Ports {
			k := strconv.Itoa(int(p.Port)) + "/" + p.Proto
			ip := "0.0.0.0"
			if p.HostIP.IsValid() {
				ip = p.HostIP.String()
			}
			ns.Ports[k] = append(ns.Ports[k], PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	r.NetworkSettings = ns
}

// addEndpoint puts one endpoint into ns (the first also at the top level,
// as Docker shows a container's first network) and remembers its address
// for the next start.
func (s *Store) addEndpoint(r *Record, ns *NetworkSettings, ep network.Endpoint, asked *EndpointSettings, first bool) {
	es := &EndpointSettings{EndpointID: r.ID[:12] + "-" + ep.Network, Aliases: ep.Aliases}
	if len(ep.MAC) > 0 {
		es.MacAddress = ep.MAC.String()
	}
	if asked != nil {
		es.IPAMConfig = asked.IPAMConfig
	}
	if n, err := s.net.Get(ep.Network); err == nil {
		es.NetworkID = n.ID
		if first {
			ns.Bridge = n.Bridge
		}
		if !n.Default {
			es.DNSNames = append([]string{r.Name, r.ID[:12]}, ep.Aliases...)
		}
	}
	if ep.IP.IsValid() {
		es.IPAddress, es.IPPrefixLen = ep.IP.Addr().String(), ep.IP.Bits()
	}
	if ep.Gateway.IsValid() {
		es.Gateway = ep.Gateway.String()
	}
	if ep.IP6.IsValid() {
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen = ep.IP6.Addr().String(), ep.IP6.Bits()
	}
	if ep.Gateway6.IsValid() {
		es.IPv6Gateway = ep.Gateway6.String()
	}
	if ns.Networks == nil {
		ns.Networks = map[string]*EndpointSettings{}
	}
	ns.Networks[ep.Network] = es
	if first {
		ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress
		ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen, ns.IPv6Gateway = es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway
	}
	if es.IPAddress != "" {
		if r.LastIPs == nil {
			r.LastIPs = map[string]string{}
		}
		r.LastIPs[ep.Network] = es.IPAddress
	}
	if es.GlobalIPv6Address != "" {
		if r.LastIPs6 == nil {
			r.LastIPs6 = map[string]string{}
		}
		r.LastIPs6[ep.Network] = es.GlobalIPv6Address
	}
}

// clearNetwork blanks what only a running container has, as Docker does
// when one stops (its last addresses stay in LastIPs for the next start).
func clearNetwork(r *Record) {
	ns := r.NetworkSettings
	if ns == nil {
		return
	}
	ns.SandboxKey, ns.SandboxID, ns.Ports = "", "", map[string][]PortBinding{}
	ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress = "", 0, "", ""
	ns.GlobalIPv6Address, ns.GlobalIPv6PrefixLen, ns.IPv6Gateway = "", 0, ""
	for _, es := range ns.Networks {
		es.EndpointID, es.IPAddress, es.IPPrefixLen, es.Gateway, es.MacAddress = "", "", 0, "", ""
		es.GlobalIPv6Address, es.GlobalIPv6PrefixLen, es.IPv6Gateway = "", 0, ""
	}
}

// netMountpoint says whether a file of a container's upper dir is the
// empty mount point a start made for one of berth's /etc files: not a
// change of the container (diff, commit leave it out, as Docker does).
func netMountpoint(e *safetree.Entry) bool {
	switch e.Rel {
	case "etc/hostname", "etc/hosts", "etc/resolv.conf":
		return e.Stat.Mode&unix.S_IFMT == unix.S_IFREG && e.Stat.Size == 0
	}
	return false
}

// holdNet keeps the sockets of a container's published ports open in this
// process until its teardown.
func (s *Store) holdNet(id string, files []*os.File) {
	if len(files) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.netHeld == nil {
		s.netHeld = map[string][]*os.File{}
	}
	s.netHeld[id] = append(s.netHeld[id], files...)
}

// heldNet returns the sockets this process holds for id.
func (s *Store) heldNet(id string) []*os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.netHeld[id]
}

// releaseNet closes the sockets this process holds for id (after the
// network's teardown, so that the port is never free while a rule still
// sends it to the container).
func (s *Store) releaseNet(id string) {
	s.mu.Lock()
	files := s.netHeld[id]
	delete(s.netHeld, id)
	s.mu.Unlock()
	for _, f := range files {
		f.Close()
	}
}

// adoptHeld takes back the held sockets that the lean monitor kept across
// its exec (fds, as envLeanHeld lists them): close-on-exec again, held
// until the teardown.
func (s *Store) adoptHeld(id string, fds []int) {
	var files []*os.File
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			logrus.Warnf("held port descriptor %d of %.12s: %v", fd, id, err)
			continue
		}
		files = append(files, os.NewFile(uintptr(fd), "held-port"))
	}
	s.holdNet(id, files)
}
