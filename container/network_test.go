package container

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/network"
)

// fakeNet is a Network that sets up nothing but a real listening socket
// per published port (what the engine must hold) and records what it was
// asked.
type fakeNet struct {
	mu        sync.Mutex
	dir       string
	reqs      []network.Request
	teardowns map[string]int
	held      map[string][]*os.File
	setupErr  error
	removed   []string
}

func (n *fakeNet) Get(ref string) (*network.Network, error) {
	switch ref {
	case "bridge":
		return &network.Network{ID: "b1", Name: "bridge", Bridge: "berth0", Default: true, Subnet: netip.MustParsePrefix("10.88.0.0/16")}, nil
	case "appnet", "a1":
		return &network.Network{ID: "a1", Name: "appnet", Bridge: "br-a1", Subnet: netip.MustParsePrefix("10.1.0.0/24")}, nil
	}
	return nil, network.ErrNotFound
}

func (n *fakeNet) Setup(req network.Request) (*network.Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reqs = append(n.reqs, req)
	if n.setupErr != nil {
		return nil, n.setupErr
	}
	res := &network.Result{Files: map[string]string{"/etc/hosts": filepath.Join(n.dir, "hosts")}}
	if req.Mode == "bridge" {
		res.Netns = n.NetnsPath(req.ID)
		ip := netip.MustParsePrefix("10.88.0.7/16")
		if req.Networks[0].PreferIP.IsValid() {
			ip = netip.PrefixFrom(req.Networks[0].PreferIP, 16)
		}
		res.Endpoints = []network.Endpoint{{Network: req.Networks[0].Network, ContainerID: req.ID, IP: ip, Gateway: netip.MustParseAddr("10.88.0.1")}}
	}
	for _, p := range req.Ports {
		l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		f, err := l.File()
		l.Close()
		if err != nil {
			return nil, err
		}
		res.Held = append(res.Held, f)
		p.HostPort = uint16(l.Addr().(*net.TCPAddr).Port)
		res.Ports = append(res.Ports, p)
	}
	if n.held == nil {
		n.held = map[string][]*os.File{}
	}
	n.held[req.ID] = res.Held
	return res, nil
}

func (n *fakeNet) NetnsPath(id string) string { return filepath.Join(n.dir, "netns", id) }

func (n *fakeNet) Teardown(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.teardowns[id]++
	return nil
}

func (n *fakeNet) Connect(id string, a network.Attachment) (*network.Endpoint, error) {
	return &network.Endpoint{Network: a.Network, ContainerID: id, IP: netip.MustParsePrefix("10.1.0.9/24")}, nil
}
func (n *fakeNet) Disconnect(id, network string) error     { return nil }
func (n *fakeNet) Reclaim(live func(id string) bool) error { return nil }
func (n *fakeNet) Endpoints(ref string) ([]network.Endpoint, error) {
	return []network.Endpoint{{Network: "appnet", IP: netip.MustParsePrefix("10.1.0.9/24")}}, nil
}

func (n *fakeNet) List() ([]*network.Network, error) {
	b, _ := n.Get("bridge")
	a, _ := n.Get("appnet")
	o := &network.Network{ID: "o1", Name: "other"}
	return []*network.Network{b, a, o}, nil
}

func (n *fakeNet) Remove(ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removed = append(n.removed, ref)
	return nil
}

func newNetFixture(t *testing.T) (*fixture, *fakeNet) {
	t.Helper()
	dir := t.TempDir()
	fn := &fakeNet{dir: dir, teardowns: map[string]int{}}
	f := &fixture{rt: newFakeRuntime(), mnt: &fakeMounter{mounted: map[string]bool{}}, hooks: &countHook{n: map[string]int{}}}
	s, err := New(filepath.Join(dir, "data"), filepath.Join(dir, "run"),
		Deps{Images: fakeImages{}, Runtime: f.rt, Mounter: f.mnt, Network: fn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.releaseHeld() })
	f.s = s
	return f, fn
}

func netRecord(mode string) *Record {
	return &Record{ID: NewID(), Image: "sha256:fake",
		Spec: &specs.Spec{Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}, Root: &specs.Root{Path: "rootfs"},
			Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}}}},
		HostConfig: HostConfig{NetworkMode: mode, RestartPolicy: RestartPolicy{Name: "no"}}}
}

// fdOpen says whether f's descriptor is still open in this process.
func fdOpen(f *os.File) bool {
	_, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	return err == nil
}

func TestStartSetsUpNetworkAndTeardownReleasesIt(t *testing.T) {
	f, fn := newNetFixture(t)
	r := netRecord("bridge")
	r.HostConfig.PortBindings = map[string][]PortBinding{"80/tcp": {{HostPort: "8080"}}}
	r.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}, "81/tcp": {}}
	r.HostConfig.PublishAllPorts = true
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	req := fn.reqs[0]
	if req.Mode != "bridge" || len(req.Networks) != 1 || req.Networks[0].Network != "bridge" {
		t.Errorf("request %+v", req)
	}
	if len(req.Ports) != 2 || req.Ports[0].Port != 80 || req.Ports[0].HostPort != 8080 || req.Ports[1].Port != 81 || req.Ports[1].HostPort != 0 {
		t.Errorf("ports %+v: want 80->8080 and 81 (-P) on any port", req.Ports)
	}
	spec := f.rt.lastSpec
	var nsPath string
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			nsPath = ns.Path
		}
	}
	if nsPath != filepath.Join(fn.dir, "netns", r.ID) {
		t.Errorf("network namespace path %q", nsPath)
	}
	if r0 := f.load(t, r.ID); r0.Spec.Linux.Namespaces[1].Path != "" {
		t.Error("the stored spec was changed")
	}
	found := false
	for _, m := range spec.Mounts {
		if m.Destination == "/etc/hosts" && m.Source == filepath.Join(fn.dir, "hosts") && m.Type == "bind" {
			found = true
		}
	}
	if !found {
		t.Errorf("no bind mount of /etc/hosts in %+v", spec.Mounts)
	}
	cur := f.load(t, r.ID)
	ns := cur.NetworkSettings
	if ns == nil || ns.IPAddress != "10.88.0.7" || ns.Networks["bridge"] == nil || ns.Networks["bridge"].NetworkID != "b1" || ns.SandboxKey != nsPath || ns.Bridge != "berth0" {
		t.Fatalf("network settings %+v", ns)
	}
	if b := ns.Ports["80/tcp"]; len(b) != 1 || b[0].HostPort == "0" || b[0].HostIP != "0.0.0.0" {
		t.Errorf("ports %+v", ns.Ports)
	}
	held := fn.held[r.ID]
	if len(held) != 2 || !fdOpen(held[0]) {
		t.Fatal("the held port sockets were not kept open by the owner")
	}
	if _, err := f.s.Finished(r.ID, 0); err != nil {
		t.Fatal(err)
	}
	if fn.teardowns[r.ID] != 1 {
		t.Errorf("%d network teardowns, want 1", fn.teardowns[r.ID])
	}
	if fdOpen(held[0]) || fdOpen(held[1]) {
		t.Error("held port sockets still open after the teardown")
	}
	cur = f.load(t, r.ID)
	if cur.NetworkSettings.IPAddress != "" || cur.LastIPs["bridge"] != "10.88.0.7" {
		t.Errorf("after exit: IPAddress %q LastIPs %v", cur.NetworkSettings.IPAddress, cur.LastIPs)
	}
	// A restart asks for the address it had.
	if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	if p := fn.reqs[1].Networks[0].PreferIP; p.String() != "10.88.0.7" {
		t.Errorf("second start prefers %v", p)
	}
	if _, err := f.s.Finished(r.ID, 0); err != nil {
		t.Fatal(err)
	}
}

func TestFailedStartReleasesNetwork(t *testing.T) {
	f, fn := newNetFixture(t)
	r := netRecord("appnet")
	r.HostConfig.PortBindings = map[string][]PortBinding{"80/tcp": {{}}}
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	f.rt.createErr = errors.New("boom")
	if _, err := f.s.Start(r.ID, StartOpts{}); err == nil {
		t.Fatal("start did not fail")
	}
	if fn.teardowns[r.ID] != 1 {
		t.Errorf("%d teardowns after a failed start, want 1", fn.teardowns[r.ID])
	}
	if h := fn.held[r.ID]; len(h) != 1 || fdOpen(h[0]) {
		t.Error("a failed start kept the held port")
	}
	// Setup failing: its one-line error is the start's.
	f.rt.createErr = nil
	fn.setupErr = errors.New("host port 8080/tcp is already in use")
	if _, err := f.s.Start(r.ID, StartOpts{}); err == nil || err.Error() != "host port 8080/tcp is already in use" {
		t.Errorf("start with a setup error: %v", err)
	}
	if f.rt.Exists(r.ID) {
		t.Error("the runtime kept a container whose network setup failed")
	}
	if fn.teardowns[r.ID] != 2 {
		t.Errorf("%d teardowns after two failed starts, want 2", fn.teardowns[r.ID])
	}
}

func TestCreateChecksNetwork(t *testing.T) {
	f, _ := newNetFixture(t)
	for _, c := range []struct {
		mode, want string
		ipam       *EndpointIPAMConfig
	}{
		{"nosuchnet", "network nosuchnet not found", nil},
		{"container:nosuch", "no such container", nil},
		{"appnet", "not in the subnet", &EndpointIPAMConfig{IPv4Address: "10.2.0.5"}},
		{"bridge", "user defined networks only", &EndpointIPAMConfig{IPv4Address: "10.88.0.5"}},
		{"appnet", "address 10.1.0.9 is already in use on network appnet", &EndpointIPAMConfig{IPv4Address: "10.1.0.9"}},
	} {
		r := netRecord(c.mode)
		if c.ipam != nil {
			r.NetworkingConfig = &NetworkingConfig{EndpointsConfig: map[string]*EndpointSettings{c.mode: {IPAMConfig: c.ipam}}}
		}
		err := f.s.Create(r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.mode, err, c.want)
		}
		if _, serr := os.Stat(f.s.Dir(r.ID)); serr == nil {
			t.Errorf("%s: the refused container left its directory", c.mode)
		}
	}
	// A host port some process has bound.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r0 := netRecord("bridge")
	r0.HostConfig.PortBindings = map[string][]PortBinding{"80/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}}}
	if err := f.s.Create(r0); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("a host port in use: %v", err)
	}
	// container: a stopped container is refused, a running one is
	// recorded by id with its host name.
	other := netRecord("bridge")
	other.Name = "web"
	other.Config.Hostname = "webhost"
	if err := f.s.Create(other); err != nil {
		t.Fatal(err)
	}
	r := netRecord("container:web")
	if err := f.s.Create(r); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("container: a stopped one: %v", err)
	}
	if _, err := f.s.Start(other.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	if r.HostConfig.NetworkMode != "container:"+other.ID || r.Config.Hostname != "webhost" {
		t.Errorf("mode %q hostname %q", r.HostConfig.NetworkMode, r.Config.Hostname)
	}
	if _, err := f.s.Finished(other.ID, 0); err != nil {
		t.Fatal(err)
	}
}

func TestNoNetworkManager(t *testing.T) {
	f := newFixture(t)
	r := netRecord("bridge")
	if err := f.s.Create(r); !errors.Is(err, ErrNoNetworking) {
		t.Errorf("bridge without a network manager: %v", err)
	}
}

func TestLeanReturnHeld(t *testing.T) {
	t.Setenv(envLeanExit, "0")
	t.Setenv(envLeanHeld, "7,9")
	st, ok := leanReturn()
	if !ok || len(st.held) != 2 || st.held[0] != 7 || st.held[1] != 9 {
		t.Errorf("held %v", st.held)
	}
	if _, set := os.LookupEnv(envLeanHeld); set {
		t.Error("the held list stayed in the environment")
	}
}

func TestConnectDisconnect(t *testing.T) {
	f, fn := newNetFixture(t)
	r := netRecord("bridge")
	r.Name = "c1"
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Connect("c1", "nosuch", EndpointSettings{}); !errors.Is(err, network.ErrNotFound) {
		t.Errorf("connect to a missing network: %v", err)
	}
	if err := f.s.Connect("c1", "appnet", EndpointSettings{Aliases: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Connect("c1", "appnet", EndpointSettings{}); err == nil {
		t.Error("connected twice")
	}
	if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	req := fn.reqs[len(fn.reqs)-1]
	if len(req.Networks) != 2 || req.Networks[0].Network != "bridge" || req.Networks[1].Network != "appnet" || req.Networks[1].Aliases[0] != "x" {
		t.Errorf("networks of the start: %+v", req.Networks)
	}
	if err := f.s.Disconnect("c1", "bridge"); err == nil {
		t.Error("disconnected from the network it was created on")
	}
	if err := f.s.Disconnect("c1", "appnet"); err != nil {
		t.Fatal(err)
	}
	if cur := f.load(t, r.ID); cur.NetworkingConfig.EndpointsConfig["appnet"] != nil {
		t.Error("disconnect left the network in the record")
	}
	if _, err := f.s.Finished(r.ID, 0); err != nil {
		t.Fatal(err)
	}
}

func TestPruneNetworksKeepsNamedOnes(t *testing.T) {
	f, fn := newNetFixture(t)
	r := netRecord("appnet") // stopped, but names appnet
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.PruneNetworks()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "other" || len(fn.removed) != 1 || fn.removed[0] != "o1" {
		t.Errorf("pruned %v (removed %v), want only other", got, fn.removed)
	}
}
