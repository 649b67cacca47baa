package network

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestNetworkDefinitions(t *testing.T) {
	e := newEnv(t)
	// The host has a route into 172.17.0.0/16: the default network must
	// pick another subnet.
	h := e.handle(e.host)
	lo, _ := h.LinkByName("lo")
	mustOK(t, h.AddrAdd(lo, mustAddr("172.17.5.5/16")))

	app := e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24", Labels: map[string]string{"a": "b"}, MTU: 1400})
	def, err := e.m.Get(DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if !def.Default || def.Bridge != DefaultBridge || def.Subnet.Overlaps(netip.MustParsePrefix("172.17.0.0/16")) {
		t.Fatalf("default network %+v: want berth0 on a subnet clear of the host's 172.17.0.0/16", def)
	}
	if app.Bridge != "br-"+app.ID[:12] || app.Gateway != netip.MustParseAddr("10.123.0.1") {
		t.Fatalf("appnet %+v", app)
	}
	for _, ref := range []string{"appnet", app.ID, app.ID[:5]} {
		if n, err := e.m.Get(ref); err != nil || n.ID != app.ID {
			t.Errorf("Get(%s) = %v, %v", ref, n, err)
		}
	}
	if _, err := e.m.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope): %v, want ErrNotFound", err)
	}
	list, err := e.m.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %v, %v", list, err)
	}

	for _, c := range []struct {
		o    CreateOpts
		want string
	}{
		{CreateOpts{Name: "over", Subnet: "10.123.0.128/25"}, "overlaps network appnet"},
		{CreateOpts{Name: "hostroute", Subnet: "172.17.200.0/24"}, "overlaps a route of the host"},
		{CreateOpts{Name: "appnet", Subnet: "10.124.0.0/24"}, "already exists"},
		{CreateOpts{Name: "v6", Subnet6: "fd00::/64"}, "needs --ipv6"},
		{CreateOpts{Name: "gw", Subnet: "10.125.0.0/24", Gateway: "10.126.0.1"}, "not a host address"},
		{CreateOpts{Name: "bad/name"}, "invalid network name"},
	} {
		_, err := e.m.Create(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("create %+v: %v, want one line with %q", c.o, err, c.want)
		}
	}
	if l, _ := e.m.List(); len(l) != 2 {
		t.Errorf("failed creates left networks: %d", len(l))
	}

	// In use: refused; prune keeps it, removes the unused one.
	spare := e.create(CreateOpts{Name: "spare"})
	if spare.Subnet.Overlaps(def.Subnet) || spare.Subnet.Overlaps(app.Subnet) {
		t.Errorf("spare got %v", spare.Subnet)
	}
	e.setup(Request{ID: "c1", Name: "one", Mode: "bridge", Networks: []Attachment{{Network: "appnet"}}})
	if err := e.m.Remove("appnet"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by container one") {
		t.Fatalf("remove in use: %v", err)
	}
	if err := e.m.Remove(DefaultName); err == nil {
		t.Fatal("the default network was removed")
	}
	pruned, err := e.m.Prune()
	if err != nil || len(pruned) != 1 || pruned[0] != "spare" {
		t.Fatalf("prune: %v, %v; want [spare]", pruned, err)
	}
	mustOK(t, e.m.Teardown("c1"))
	mustOK(t, e.m.Remove("appnet"))
	for _, l := range e.links() {
		if l == app.Bridge {
			t.Error("bridge of a removed network left")
		}
	}
	if _, err := os.Stat(filepath.Join(e.m.ipamDir, app.ID+".json")); err == nil {
		t.Error("leases of a removed network left")
	}
}

func TestModes(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})

	none := e.setup(Request{ID: "none1", Mode: "none", Hostname: "quiet"})
	if none.Netns == "" {
		t.Fatal("mode none: no netns file")
	}
	if ls, _ := e.handle(none.Netns).LinkList(); len(ls) != 1 {
		t.Errorf("mode none: %d links, want lo only", len(ls))
	}
	checkFile(t, none.Files["/etc/hostname"], "quiet\n")
	checkContains(t, none.Files["/etc/hosts"], "127.0.1.1\tquiet")
	checkContains(t, none.Files["/etc/resolv.conf"], "nameserver 192.0.2.53")

	host := e.setup(Request{ID: "host1", Mode: "host", Hostname: "hosty", ExtraHosts: []string{"gw:host-gateway"}})
	if host.Netns != "" {
		t.Errorf("mode host: netns %q, want the host's", host.Netns)
	}
	checkContains(t, host.Files["/etc/resolv.conf"], "search example.test")
	checkContains(t, host.Files["/etc/hosts"], "127.0.0.1\tgw") // the test host has only lo

	br := e.setup(Request{ID: "br1", Name: "web", Hostname: "web", ExtraHosts: []string{"hgw:host-gateway", "db:10.9.9.9"}})
	def, _ := e.m.Get(DefaultName)
	if len(br.Endpoints) != 1 || !def.Subnet.Contains(ipOf(br, 0)) || br.Endpoints[0].HostVeth == "" {
		t.Fatalf("bridge endpoints %+v", br.Endpoints)
	}
	ch := e.handle(br.Netns)
	routes, _ := ch.RouteList(nil, netlink.FAMILY_V4)
	gwOK := false
	for _, r := range routes {
		gwOK = gwOK || ((r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == def.Gateway.String())
	}
	if !gwOK {
		t.Errorf("no default route via %v in %v", def.Gateway, routes)
	}
	checkContains(t, br.Files["/etc/hosts"], def.Gateway.String()+"\thgw")
	checkContains(t, br.Files["/etc/hosts"], "10.9.9.9\tdb")
	checkContains(t, br.Files["/etc/hosts"], ipOf(br, 0).String()+"\tweb")

	joined := e.setup(Request{ID: "j1", Mode: "container", Join: "br1"})
	if joined.Netns != br.Netns || joined.Files["/etc/hosts"] != br.Files["/etc/hosts"] {
		t.Errorf("container mode: %+v, want br1's netns and files", joined)
	}
	if _, err := e.m.Setup(Request{ID: "j2", Mode: "container", Join: "ghost"}); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("container: a missing one: %v", err)
	}
	e.assertNothingOf("j2")
	if _, err := e.m.Setup(Request{ID: "j3", Mode: "container", Join: "host1"}); err == nil || !strings.Contains(err.Error(), "use --network host") {
		t.Errorf("container: a host-mode one: %v", err)
	}
	jn := e.setup(Request{ID: "j4", Mode: "container", Join: "none1"})
	if jn.Netns != none.Netns {
		t.Errorf("container: joining a mode none container: netns %q, want %q", jn.Netns, none.Netns)
	}

	// Bad input: one line, nothing left.
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{ID: "bad1", Networks: []Attachment{{Network: DefaultName, IP: netip.MustParseAddr("172.17.0.9")}}}, "--ip is supported on user-defined networks only"},
		{Request{ID: "bad2", Networks: []Attachment{{Network: "appnet", IP: netip.MustParseAddr("10.9.0.5")}}}, "not a free host address of subnet 10.123.0.0/24"},
		{Request{ID: "bad3", Networks: []Attachment{{Network: "nonet"}}}, "not found"},
		{Request{ID: "bad4", ExtraHosts: []string{"nocolon"}}, "invalid --add-host"},
		{Request{ID: "bad5", Ports: []PortBinding{{Proto: "sctp", Port: 1}}}, "invalid port protocol"},
	} {
		_, err := e.m.Setup(c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("setup %s: %v, want one line with %q", c.req.ID, err, c.want)
		}
		e.assertNothingOf(c.req.ID)
	}
	a := e.setup(Request{ID: "a1", Networks: []Attachment{{Network: "appnet", IP: netip.MustParseAddr("10.123.0.50")}}})
	if ipOf(a, 0) != netip.MustParseAddr("10.123.0.50") {
		t.Errorf("--ip: got %v", ipOf(a, 0))
	}
	_, err := e.m.Setup(Request{ID: "a2", Networks: []Attachment{{Network: "appnet", IP: netip.MustParseAddr("10.123.0.50")}}})
	if err == nil || err.Error() != "address 10.123.0.50 is already in use on network appnet" {
		t.Errorf("taken --ip: %v", err)
	}
	e.assertNothingOf("a2")

	for _, id := range []string{"none1", "host1", "j1", "j4", "br1", "a1"} {
		mustOK(t, e.m.Teardown(id))
		mustOK(t, e.m.Teardown(id)) // idempotent
	}
	e.assertNothingOf("br1")
	e.assertNoPorts()
	if _, err := os.Stat(none.Netns); err == nil {
		t.Error("netns of mode none left")
	}
}

func checkFile(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("%s: %q, %v; want %q", path, b, err, want)
	}
}

func checkContains(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), want) {
		t.Errorf("%s: %q, %v; want it to contain %q", path, b, err, want)
	}
}

func checkLacks(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || strings.Contains(string(b), want) {
		t.Errorf("%s: %q, %v; want it without %q", path, b, err, want)
	}
}
