package network

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/netns/nsfile"
)

// ip_forward and route_localnet are set only when something needs them.
func TestSysctlsOnlyWhenNeeded(t *testing.T) {
	e := newEnv(t)
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	// A new namespace may inherit forwarding from the machine's.
	mustOK(t, nsfile.Do(e.host, func() error { return os.WriteFile(fwd, []byte("0"), 0o644) }))
	e.create(CreateOpts{Name: "inner", Subnet: "10.3.0.0/24", Internal: true})
	e.setup(Request{ID: "n1", Mode: "none"})
	e.setup(Request{ID: "i1", Networks: []Attachment{{Network: "inner"}}})
	if got := e.sysctl(fwd); got != "0" {
		t.Errorf("ip_forward %s with only mode none and an internal network", got)
	}
	e.setup(Request{ID: "b1"})
	if got := e.sysctl(fwd); got != "1" {
		t.Errorf("ip_forward %s with a container on the default bridge", got)
	}
	rl := "/proc/sys/net/ipv4/conf/" + DefaultBridge + "/route_localnet"
	if got := e.sysctl(rl); got != "0" {
		t.Errorf("route_localnet %s with nothing published", got)
	}
	e.setup(Request{ID: "b2", Ports: []PortBinding{{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, Port: 53}}})
	if got := e.sysctl(rl); got != "1" {
		t.Errorf("route_localnet %s with a port published on 127.0.0.1", got)
	}
}

// Reclaim (prune) removes what dead containers left, keeps the live.
func TestReclaim(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})
	live := e.setup(Request{ID: "live", Name: "live", Networks: []Attachment{{Network: "appnet"}}})
	e.setup(Request{ID: "dead", Name: "dead", Networks: []Attachment{{Network: "appnet"}}, Ports: []PortBinding{{Proto: "tcp", HostPort: 8080, Port: 80}}})
	checkContains(t, live.Files["/etc/hosts"], "dead")
	mustOK(t, e.m.Reclaim(func(id string) bool { return id == "live" }))
	e.assertNothingOf("dead")
	e.assertNoPorts()
	checkLacks(t, live.Files["/etc/hosts"], "dead")
	if st, _ := e.m.Status("live"); st == nil || len(st.Endpoints) != 1 {
		t.Fatalf("reclaim touched the live container: %+v", st)
	}
	// A lease with no endpoint state (a crash of an older berth) goes too.
	n, _ := e.m.Get("appnet")
	if _, err := e.m.pool(n).Allocate("orphan", netip.Addr{}, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.m.Reclaim(func(id string) bool { return id == "live" }))
	e.assertNothingOf("orphan")
	pruned, err := e.m.Prune()
	if err != nil || len(pruned) != 0 {
		t.Errorf("prune with a live container on appnet: %v, %v", pruned, err)
	}
}

// A restart: the same address when it is free, the MAC asked for, and
// a second Setup of a set-up container replaces the first.
func TestPreferIPMACAndResetup(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24", IPRange: "10.123.0.128/25"})
	mac, _ := net.ParseMAC("02:00:00:aa:bb:cc")
	r := e.setup(Request{ID: "p1", Networks: []Attachment{{Network: "appnet", MAC: mac}}})
	if !netip.MustParsePrefix("10.123.0.128/25").Contains(ipOf(r, 0)) {
		t.Errorf("address %v outside --ip-range", ipOf(r, 0))
	}
	eth, err := e.handle(r.Netns).LinkByName("eth0")
	if err != nil || eth.Attrs().HardwareAddr.String() != mac.String() {
		t.Errorf("eth0 MAC: %v, %v; want %v", eth, err, mac)
	}
	mustOK(t, e.m.Teardown("p1"))
	want := netip.MustParseAddr("10.123.0.200")
	r = e.setup(Request{ID: "p1", Networks: []Attachment{{Network: "appnet", PreferIP: want}}})
	if ipOf(r, 0) != want {
		t.Errorf("prefer %v: got %v", want, ipOf(r, 0))
	}
	old := r.Netns
	r = e.setup(Request{ID: "p1", Mode: "none"})
	if _, err := os.Stat(filepath.Join(e.dir, "state", "netns", "p1")); err != nil || r.Netns != old {
		t.Errorf("re-setup as none: %v, netns %s", err, r.Netns)
	}
	if links := e.links(); strings.Contains(strings.Join(links, " "), hostVeth("p1", mustGet(t, e, "appnet"))) {
		t.Error("re-setup left the old veth")
	}
	n, _ := e.m.Get("appnet")
	if ls, _ := e.m.pool(n).Leases(); len(ls) != 0 {
		t.Errorf("re-setup left the old lease: %v", ls)
	}
}

func mustGet(t *testing.T, e *env, name string) string {
	t.Helper()
	n, err := e.m.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// A host whose resolver is systemd-resolved's stub: its upstream file
// gives the servers; with none, a warning.
func TestResolvConf(t *testing.T) {
	e := newEnv(t)
	stub := filepath.Join(e.dir, "stub.conf")
	mustOK(t, os.WriteFile(stub, []byte("nameserver 127.0.0.53\noptions edns0\n"), 0o644))
	up := filepath.Join(e.dir, "upstream.conf")
	mustOK(t, os.WriteFile(up, []byte("nameserver 198.51.100.7\n"), 0o644))
	t.Setenv("BERTH_HOST_RESOLV_CONF", stub)
	m, err := Open(Options{DataRoot: e.m.o.DataRoot, StateRoot: e.m.o.StateRoot, UpstreamResolvConf: up, HostNetns: e.host})
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Setup(Request{ID: "r1", Mode: "none"})
	mustOK(t, err)
	checkContains(t, r.Files["/etc/resolv.conf"], "nameserver 198.51.100.7")
	checkLacks(t, r.Files["/etc/resolv.conf"], "127.0.0.53")
	m.o.UpstreamResolvConf = filepath.Join(e.dir, "missing")
	r, err = m.Setup(Request{ID: "r2"})
	mustOK(t, err)
	if len(r.Warnings) == 0 {
		t.Error("no warning when no DNS server is left")
	}
	// Without a network no server is reachable anyway: no warning.
	r, err = m.Setup(Request{ID: "r4", Mode: "none"})
	mustOK(t, err)
	if len(r.Warnings) != 0 {
		t.Errorf("warnings with --network none: %q", r.Warnings)
	}
	r, err = m.Setup(Request{ID: "r3", Mode: "host"})
	mustOK(t, err)
	checkContains(t, r.Files["/etc/resolv.conf"], "nameserver 127.0.0.53")
}

// Teardown waits for whoever holds the container's lock (a monitor's
// teardown racing an rm's). TestConcurrentTeardowns below cannot tell:
// the firewall's and the networks' locks happen to order racing
// teardowns even without this one.
func TestTeardownWaitsForContainerLock(t *testing.T) {
	e := newEnv(t)
	const id = "tlock"
	e.setup(Request{ID: id, Networks: []Attachment{{Network: DefaultName}}})
	lk, err := e.m.lockContainer(id)
	mustOK(t, err)
	done := make(chan error, 1)
	go func() { done <- e.m.Teardown(id) }()
	if !waitBlocked(t, lk, done) {
		t.Fatal("teardown went on while another held the container's lock")
	}
	if _, err := os.Stat(e.m.statePath(id)); err != nil {
		t.Errorf("waiting for the lock, teardown already removed the state: %v", err)
	}
	lk.Close()
	mustOK(t, <-done)
	e.assertNothingOf(id)
}

// A setup waiting for a network's lock, which a removal of that network
// holds, does not attach the container to the network removed meanwhile:
// it fails, and leaves nothing behind. (TestConcurrentSetups passes
// without the lock.)
func TestSetupWaitsForNetworkLock(t *testing.T) {
	e := newEnv(t)
	n := e.create(CreateOpts{Name: "lknet", Subnet: "10.124.0.0/24"})
	lk, err := e.m.lockNet(n.ID)
	mustOK(t, err)
	done := make(chan error, 1)
	var res *Result
	go func() {
		var err error
		res, err = e.m.Setup(Request{ID: "slock", Networks: []Attachment{{Network: "lknet"}}})
		done <- err
	}()
	if !waitBlocked(t, lk, done) {
		if res != nil {
			e.held = append(e.held, res.Held...)
		}
		t.Fatal("setup went on while another held the network's lock")
	}
	// What Remove does under that lock once it saw no endpoint.
	mustOK(t, os.Remove(filepath.Join(e.m.netDir, n.ID+".json")))
	lk.Close()
	if err := <-done; !errors.Is(err, ErrNotFound) {
		if res != nil {
			e.held = append(e.held, res.Held...)
		}
		t.Fatalf("setup on a network removed while it waited: %v, want not found", err)
	}
	e.assertNothingOf("slock")
}

// waitBlocked waits until a flock on lk's file blocks (the kernel lists
// a blocked flock in /proc/locks with "->") and says true; it closes lk
// and says false when done reports first, and fails the test when
// nothing blocks in 30 s.
func waitBlocked(t *testing.T, lk *os.File, done <-chan error) bool {
	t.Helper()
	var st unix.Stat_t
	mustOK(t, unix.Fstat(int(lk.Fd()), &st))
	blocked := func() bool {
		b, err := os.ReadFile("/proc/locks")
		mustOK(t, err)
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 6 && f[1] == "->" && f[2] == "FLOCK" && strings.HasSuffix(f[6], ":"+strconv.FormatUint(st.Ino, 10)) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !blocked(); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			lk.Close()
			t.Logf("returned %v without waiting", err)
			return false
		default:
		}
		if time.Now().After(deadline) {
			lk.Close()
			<-done
			t.Fatal("nothing ever waited for the lock")
		}
	}
	return true
}

// A monitor's teardown racing rm's: the container's lock keeps one from
// writing back the state the other removed.
func TestConcurrentTeardowns(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "appnet", Subnet: "10.123.0.0/24"})
	for round := range 5 {
		id := "t" + string(rune('a'+round))
		e.setup(Request{ID: id, Networks: []Attachment{{Network: "appnet"}, {Network: DefaultName}},
			Ports: []PortBinding{{Proto: "tcp", Port: 80}}})
		errs := make(chan error, 8)
		for range 8 {
			go func() { errs <- e.m.Teardown(id) }()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("teardown %s: %v", id, err)
			}
		}
		e.assertNothingOf(id)
	}
	e.assertNoPorts()
}

// Two containers joining different networks can share a peer, and the
// networks' locks do not order their writes to that peer's /etc/hosts:
// each writes it under the peer's hosts lock, from the states read once
// it holds that lock. Here a setup waits for the peer's hosts lock while
// another container (its state, as its own setup saves it) joins the
// peer's other network; the peer's file must name both.
func TestPeerHostsWrittenFromStatesReadUnderItsLock(t *testing.T) {
	e := newEnv(t)
	e.create(CreateOpts{Name: "hnet1", Subnet: "10.125.0.0/24"})
	n2 := e.create(CreateOpts{Name: "hnet2", Subnet: "10.126.0.0/24"})
	p := e.setup(Request{ID: "hpeer", Name: "peer", Networks: []Attachment{{Network: "hnet1"}, {Network: "hnet2"}}})
	hosts := p.Files["/etc/hosts"]
	lk, err := lockfile.OpenDir(filepath.Dir(hosts), unix.LOCK_EX)
	mustOK(t, err)
	done := make(chan error, 1)
	var res *Result
	go func() {
		var err error
		res, err = e.m.Setup(Request{ID: "hjoin", Name: "joiner", Networks: []Attachment{{Network: "hnet1"}}})
		done <- err
	}()
	if !waitBlocked(t, lk, done) {
		if res != nil {
			e.held = append(e.held, res.Held...)
		}
		t.Fatal("the setup wrote its peer's /etc/hosts without the peer's hosts lock")
	}
	// Another container on the peer's other network, saved meanwhile.
	other := &epState{ID: "hother", Name: "other", Mode: "bridge",
		Attach: []epNet{{NetworkID: n2.ID, Network: "hnet2", IP: netip.MustParsePrefix("10.126.0.200/24")}}}
	mustOK(t, e.m.saveState(other))
	t.Cleanup(func() { os.Remove(e.m.statePath(other.ID)) })
	lk.Close()
	mustOK(t, <-done)
	e.held = append(e.held, res.Held...)
	b, err := os.ReadFile(hosts)
	mustOK(t, err)
	for _, want := range []string{"\tjoiner\n", "10.126.0.200\tother\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the peer's /etc/hosts lacks %q:\n%s", want, b)
		}
	}
}
