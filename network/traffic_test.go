package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/netns/nsfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestTrafficPortsHairpinAndHosts(t *testing.T) {
	e := newEnv(t)
	app := e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})
	c1 := e.setup(Request{ID: "c1", Name: "one", Hostname: "one", Networks: []Attachment{{Network: "appnet"}}})
	c2 := e.setup(Request{ID: "c2", Name: "two", Hostname: "two", Networks: []Attachment{{Network: "appnet", Aliases: []string{"pg"}}},
		Ports: []PortBinding{{Proto: "tcp", HostPort: 8080, Port: 80}, {Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, Port: 81}}})
	serve(t, c1.Netns, ":80", "c1")
	serve(t, c2.Netns, ":80", "c2")
	serve(t, c2.Netns, ":81", "c2-81")

	// Container to container by address.
	if peer := mustAsk(t, c1.Netns, hostport(ipOf(c2, 0), 80), "c2"); peer != ipOf(c1, 0).String() {
		t.Errorf("c2 saw c1 as %s", peer)
	}
	// Published: from the host's loopback and the bridge address.
	mustAsk(t, e.host, "127.0.0.1:8080", "c2")
	mustAsk(t, e.host, hostport(app.Gateway, 8080), "c2")
	mustAsk(t, e.host, "127.0.0.1:8081", "c2-81")
	mustFail(t, e.host, hostport(app.Gateway, 8081), "a port published on 127.0.0.1 only")
	// Hairpin: another container and the container itself through the
	// published port; each must see the reply come from where it asked.
	mustAsk(t, c1.Netns, hostport(app.Gateway, 8080), "c2")
	mustAsk(t, c2.Netns, hostport(app.Gateway, 8080), "c2")

	eps, err := e.m.Endpoints("appnet")
	if err != nil || len(eps) != 2 {
		t.Fatalf("endpoints of appnet: %+v, %v", eps, err)
	}
	stat, err := e.m.Status("c2")
	if err != nil || stat.Netns != c2.Netns || len(stat.Ports) != 2 || stat.Ports[0].HostPort != 8080 ||
		len(stat.Endpoints) != 1 || stat.Endpoints[0].IP != c2.Endpoints[0].IP || stat.Endpoints[0].Aliases[0] != "pg" {
		t.Fatalf("status of c2: %+v, %v", stat, err)
	}
	if stat, err := e.m.Status("ghost"); stat != nil || err != nil {
		t.Fatalf("status of nothing: %+v, %v", stat, err)
	}
	// Peers' hosts: c1 learnt c2 (and its alias) when c2 came.
	checkContains(t, c1.Files["/etc/hosts"], ipOf(c2, 0).String()+"\ttwo pg")
	checkContains(t, c2.Files["/etc/hosts"], ipOf(c1, 0).String()+"\tone")
	// The bind mount keeps the inode: the rewrite must be in place.
	var before unix.Stat_t
	mustOK(t, unix.Stat(c1.Files["/etc/hosts"], &before))
	mustOK(t, e.m.Teardown("c2"))
	var after unix.Stat_t
	mustOK(t, unix.Stat(c1.Files["/etc/hosts"], &after))
	if before.Ino != after.Ino {
		t.Error("c1's hosts file was replaced, not rewritten in place")
	}
	checkLacks(t, c1.Files["/etc/hosts"], "two")
	e.assertNothingOf("c2")
	e.assertNoPorts()

	// Connect and disconnect update the peers as well.
	c3 := e.setup(Request{ID: "c3", Name: "three"})
	checkLacks(t, c1.Files["/etc/hosts"], "three")
	ep, err := e.m.Connect("c3", Attachment{Network: "appnet", Aliases: []string{"tri"}})
	if err != nil {
		t.Fatal(err)
	}
	checkContains(t, c1.Files["/etc/hosts"], ep.IP.Addr().String()+"\tthree tri")
	mustAsk(t, c3.Netns, hostport(ipOf(c1, 0), 80), "c1")
	mustOK(t, e.m.Disconnect("c3", "appnet"))
	checkLacks(t, c1.Files["/etc/hosts"], "three")
	mustFail(t, c3.Netns, hostport(ipOf(c1, 0), 80), "after disconnect")
	// The default bridge has no name resolution.
	c4 := e.setup(Request{ID: "c4", Name: "four"})
	checkLacks(t, c4.Files["/etc/hosts"], "three")
}

func TestPortInUseAndEphemeral(t *testing.T) {
	e := newEnv(t)
	var ln net.Listener
	mustOK(t, nsfile.Do(e.host, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return }))
	defer ln.Close()
	busy := uint16(ln.Addr().(*net.TCPAddr).Port)
	_, err := e.m.Setup(Request{ID: "p1", Ports: []PortBinding{
		{Proto: "tcp", HostPort: 9000, Port: 90},
		{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: busy, Port: 80}}})
	want := fmt.Sprintf("host port 127.0.0.1:%d/tcp is already in use", busy)
	if err == nil || err.Error() != want {
		t.Fatalf("setup with a busy port: %v, want %q", err, want)
	}
	e.assertNothingOf("p1")
	e.assertNoPorts()
	// Port 9000 was freed again.
	var l2 net.Listener
	mustOK(t, nsfile.Do(e.host, func() (err error) { l2, err = net.Listen("tcp", ":9000"); return }))
	l2.Close()

	// Held: while p2 lives nobody else binds its port; ephemeral ports
	// get the kernel's choice.
	p2 := e.setup(Request{ID: "p2", Ports: []PortBinding{{Proto: "tcp", HostPort: 9000, Port: 90}, {Proto: "udp", Port: 53}, {Proto: "tcp", Port: 91}}})
	if len(p2.Held) != 3 || p2.Ports[1].HostPort == 0 || p2.Ports[2].HostPort == 0 {
		t.Fatalf("ports %+v, held %d", p2.Ports, len(p2.Held))
	}
	if err := nsfile.Do(e.host, func() error {
		l, err := net.Listen("tcp", ":9000")
		if err == nil {
			l.Close()
		}
		return err
	}); err == nil {
		t.Fatal("a held port could be bound by another process")
	}
	serve(t, p2.Netns, ":91", "p2")
	mustAsk(t, e.host, fmt.Sprintf("127.0.0.1:%d", p2.Ports[2].HostPort), "p2")
	if _, err := e.m.Setup(Request{ID: "p3", Ports: []PortBinding{{Proto: "tcp", HostPort: 9000, Port: 90}}}); err == nil {
		t.Fatal("a second container got port 9000")
	}
	e.assertNothingOf("p3")
	if n := len(e.published()); n != 3 {
		t.Errorf("p3's failure touched p2's ports: %d published, want 3", n)
	}
}

// A port published on 127.0.0.1 answers the host's loopback and nothing
// else, even a packet for 127.0.0.1 sent to the host by a neighbour.
func TestLocalhostPublishingNotFromOutside(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	c := e.setup(Request{ID: "l1", Ports: []PortBinding{
		{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8090, Port: 80},
		{Proto: "tcp", HostPort: 8091, Port: 80}}})
	serve(t, c.Netns, ":80", "l1")
	mustAsk(t, e.host, "127.0.0.1:8090", "l1")
	// The outside reaches the port published on every address...
	if peer := mustAsk(t, out, "192.0.2.1:8091", "l1"); peer != "192.0.2.2" {
		t.Errorf("the container saw the outside client as %s", peer)
	}
	mustFail(t, out, "192.0.2.1:8090", "the 127.0.0.1 port on the host's other address")
	// ...and sends a packet for 127.0.0.1 to the host: its own
	// 127.0.0.1 gone from lo (and with it the local routes), a route to
	// 127.0.0.1 via the host, route_localnet on its side so the kernel
	// sends it.
	oh := e.handle(out)
	eth, _ := oh.LinkByName("eth0")
	lo, _ := oh.LinkByName("lo")
	mustOK(t, oh.AddrDel(lo, mustAddr("127.0.0.1/8")))
	mustOK(t, nsfile.Do(out, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/eth0/route_localnet", []byte("1"), 0o644)
	}))
	mustOK(t, oh.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(32, 32)}, Gw: net.ParseIP("192.0.2.1"), LinkIndex: eth.Attrs().Index}))
	// The same path reaches the host's own address (the trick works).
	mustAsk(t, out, "192.0.2.1:8091", "l1")
	mustFail(t, out, "127.0.0.1:8090", "127.0.0.1 published port reached from outside")
}

func TestIsolationAndInternal(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	serve(t, out, "192.0.2.2:9999", "outside")
	e.create(CreateOpts{Name: "neta", Subnet: "10.1.0.0/24"})
	e.create(CreateOpts{Name: "netb", Subnet: "10.2.0.0/24"})
	e.create(CreateOpts{Name: "inner", Subnet: "10.3.0.0/24", Internal: true})
	a := e.setup(Request{ID: "a", Networks: []Attachment{{Network: "neta"}}})
	b := e.setup(Request{ID: "b", Networks: []Attachment{{Network: "netb"}}, Ports: []PortBinding{{Proto: "tcp", HostPort: 7000, Port: 80}}})
	i1 := e.setup(Request{ID: "i1", Networks: []Attachment{{Network: "inner"}}})
	i2 := e.setup(Request{ID: "i2", Networks: []Attachment{{Network: "inner"}}})
	serve(t, b.Netns, ":80", "b")
	serve(t, i2.Netns, ":80", "i2")

	// Outbound NAT works for a normal network.
	if peer := mustAsk(t, a.Netns, "192.0.2.2:9999", "outside"); peer != "192.0.2.1" {
		t.Errorf("outside saw a as %s, want the masqueraded host", peer)
	}
	mustFail(t, a.Netns, hostport(ipOf(b, 0), 80), "network isolation")
	// b's published port is the host's: reachable from a.
	mustAsk(t, a.Netns, "192.0.2.1:7000", "b")
	// Internal: its containers talk, nothing leaves or enters, even for
	// a container that adds a default route itself (--cap-add NET_ADMIN).
	mustAsk(t, i1.Netns, hostport(ipOf(i2, 0), 80), "i2")
	ih := e.handle(i1.Netns)
	ieth, _ := ih.LinkByName("eth0")
	mustOK(t, ih.RouteAdd(&netlink.Route{LinkIndex: ieth.Attrs().Index, Gw: net.ParseIP("10.3.0.1")}))
	mustFail(t, i1.Netns, "192.0.2.2:9999", "internal network reached the outside")
	mustFail(t, i1.Netns, "192.0.2.1:7000", "internal network reached a published port")
	mustFail(t, a.Netns, hostport(ipOf(i2, 0), 80), "a reached an internal network")
}

// Each kill -9 point of Setup, in a child test process: Teardown from
// what it recorded leaves nothing.
func TestTeardownAfterCrash(t *testing.T) {
	if os.Getenv("BERTH_NET_CRASH_CHILD") != "" {
		crashChild(t)
		return
	}
	for _, point := range []string{"network-setup-netns", "network-setup-veth", "network-setup-publish", "network-teardown-unpublish"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})
			peer := e.setup(Request{ID: "peer", Name: "peer", Networks: []Attachment{{Network: "appnet"}}})
			cmd := exec.Command(os.Args[0], "-test.run=^TestTeardownAfterCrash$", "-test.count=1")
			cmd.Env = append(os.Environ(), "BERTH_NET_CRASH_CHILD="+e.dir, crashpoint.Env+"="+point)
			outb, err := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die at %s: %v\n%s", point, err, outb)
			}
			st, err := e.m.loadState("victim")
			if err != nil || st == nil {
				t.Fatalf("no state recorded before the crash: %v", err)
			}
			if point == "network-setup-publish" {
				checkContains(t, peer.Files["/etc/hosts"], "") // file still there
				if len(e.published()) == 0 {
					t.Fatal("the crash point after publishing published nothing")
				}
			}
			mustOK(t, e.m.Teardown("victim"))
			e.assertNothingOf("victim")
			e.assertNoPorts()
			checkLacks(t, peer.Files["/etc/hosts"], "victim")
		})
	}
}

func crashChild(t *testing.T) {
	dir := os.Getenv("BERTH_NET_CRASH_CHILD")
	m, err := Open(Options{DataRoot: filepath.Join(dir, "data"), StateRoot: filepath.Join(dir, "state"),
		HostResolvConf: filepath.Join(dir, "host-resolv.conf"), HostNetns: filepath.Join(dir, "hostns")})
	if err != nil {
		t.Fatal(err)
	}
	req := Request{ID: "victim", Name: "victim", Networks: []Attachment{{Network: "appnet"}},
		Ports: []PortBinding{{Proto: "tcp", HostPort: 8080, Port: 80}}}
	if _, err := m.Setup(req); err != nil {
		t.Fatal(err)
	}
	if err := m.Teardown("victim"); err != nil {
		t.Fatal(err)
	}
	t.Fatal("no crash point reached")
}

func TestConcurrentSetups(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})
	const n = 40
	var wg sync.WaitGroup
	res := make([]*Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = e.m.Setup(Request{ID: fmt.Sprintf("c%02d", i), Name: fmt.Sprintf("n%02d", i),
				Networks: []Attachment{{Network: "appnet"}}, Ports: []PortBinding{{Proto: "tcp", Port: 80}}})
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, r := range res {
		if errs[i] != nil {
			t.Fatalf("setup %d: %v", i, errs[i])
		}
		e.held = append(e.held, r.Held...)
		a := ipOf(r, 0)
		if o, dup := seen[a]; dup {
			t.Fatalf("c%02d and %s both got %v", i, o, a)
		}
		seen[a] = fmt.Sprintf("c%02d", i)
	}
	if got := len(e.published()); got != n {
		t.Errorf("%d published ports, want %d", got, n)
	}
	// Every hosts file lists every other container, however the
	// setups interleaved.
	for i, r := range res {
		b, err := os.ReadFile(r.Files["/etc/hosts"])
		mustOK(t, err)
		for j, o := range res {
			if j == i {
				continue
			}
			if line := fmt.Sprintf("%s\tn%02d\n", ipOf(o, 0), j); !strings.Contains(string(b), line) {
				t.Fatalf("hosts of c%02d lacks %q:\n%s", i, line, b)
			}
		}
	}
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.m.Teardown(fmt.Sprintf("c%02d", i)) }()
	}
	wg.Wait()
	for i := range n {
		mustOK(t, errs[i])
		e.assertNothingOf(fmt.Sprintf("c%02d", i))
	}
	e.assertNoPorts()
}

func TestReloadAfterFlush(t *testing.T) {
	e := newEnv(t)
	out := e.outside()
	serve(t, out, "192.0.2.2:9999", "outside")
	c := e.setup(Request{ID: "r1", Ports: []PortBinding{{Proto: "tcp", HostPort: 8080, Port: 80}}})
	serve(t, c.Netns, ":80", "r1")
	mustAsk(t, e.host, "127.0.0.1:8080", "r1")
	fw, err := nft.Open(e.host)
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, fw.Delete())
	fw.Close()
	mustFail(t, e.host, "127.0.0.1:8080", "after the flush")
	mustOK(t, e.m.Reload())
	mustAsk(t, e.host, "127.0.0.1:8080", "r1")
	if peer := mustAsk(t, c.Netns, "192.0.2.2:9999", "outside"); peer != "192.0.2.1" {
		t.Errorf("masquerade not restored: outside saw %s", peer)
	}
	// A Setup heals a missing table too.
	fw, _ = nft.Open(e.host)
	mustOK(t, fw.Delete())
	fw.Close()
	e.setup(Request{ID: "r2"})
	mustAsk(t, e.host, "127.0.0.1:8080", "r1")
}
