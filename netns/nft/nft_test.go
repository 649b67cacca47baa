package nft

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-project/berth/netns/nsfile"
)

// open returns a Firewall in a namespace of the test's own: nothing
// here touches the host's ruleset.
func open(t *testing.T) *Firewall {
	f, _ := openFam(t, false)
	return f
}

// openFam also returns the namespace's path.
func openFam(t *testing.T, v6 bool) (*Firewall, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	p := filepath.Join(t.TempDir(), "host")
	if err := nsfile.Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nsfile.Remove(p); err != nil {
			t.Error(err)
		}
	})
	f, err := openFamily(p, v6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, p
}

func port(proto, host string, hport uint16, addr string, cport uint16) Port {
	p := Port{Proto: proto, HostPort: hport, Addr: netip.MustParseAddr(addr), Port: cport}
	if host != "" {
		p.HostAddr = netip.MustParseAddr(host)
	}
	return p
}

func sorted(ps []Port) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func TestEnsurePublishHeal(t *testing.T) {
	f := open(t)
	if re, err := f.Ensure(); err != nil || !re {
		t.Fatalf("first Ensure: recreated=%v err=%v", re, err)
	}
	if re, err := f.Ensure(); err != nil || re {
		t.Fatalf("second Ensure: recreated=%v err=%v, want an intact table left alone", re, err)
	}
	a := []Port{port("tcp", "127.0.0.1", 8080, "10.88.0.2", 80), port("udp", "", 5353, "10.88.0.2", 53)}
	b := []Port{port("tcp", "", 9000, "10.88.0.3", 9000), port("tcp", "", 9001, "10.88.0.3", 9001)}
	if err := f.Publish(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Publish(b); err != nil {
		t.Fatal(err)
	}
	// The same host port to another container is refused, and the
	// batch adds nothing.
	if err := f.Publish([]Port{port("tcp", "", 7000, "10.88.0.4", 1), port("tcp", "", 9000, "10.88.0.4", 80)}); err == nil {
		t.Error("publishing a taken host port to another address succeeded")
	}
	got, err := f.Published()
	if err != nil {
		t.Fatal(err)
	}
	want := sorted(append(slices.Clone(a), b...))
	if !slices.Equal(sorted(got), want) {
		t.Fatalf("published %v, want %v", sorted(got), want)
	}
	if err := f.Unpublish(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Unpublish(a); err != nil {
		t.Fatalf("second Unpublish: %v", err)
	}
	got, _ = f.Published()
	if !slices.Equal(sorted(got), sorted(b)) {
		t.Fatalf("after unpublishing a: %v, want %v", sorted(got), sorted(b))
	}
	if re, err := f.Ensure(); err != nil || re {
		t.Fatalf("Ensure with elements: recreated=%v err=%v", re, err)
	}

	if err := f.AddNetwork("br0", netip.MustParsePrefix("10.88.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork("br0", netip.MustParsePrefix("10.88.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork("br1", netip.MustParsePrefix("10.89.0.0/24")); err != nil {
		t.Fatal(err)
	}
	rules, err := f.c.GetRules(f.table, f.chains()[2])
	if err != nil || len(rules) != 6 {
		t.Fatalf("postrouting rules: %d, %v; want 3 per network", len(rules), err)
	}
	if err := f.SetNetwork(Network{Bridge: "br1", Subnet: netip.MustParsePrefix("10.89.0.0/24"), Internal: true}); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.networkRules("br1"); len(r) != 5 {
		t.Fatalf("internal br1: %d rules, want 5 (hairpin, localhost, isolate, 2 internal)", len(r))
	}
	if err := f.RemoveNetwork("br0"); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.networkRules("br1"); len(r) == 0 {
		t.Fatal("removing br0 removed br1's rule")
	}
	if r, _ := f.networkRules("br0"); len(r) != 0 {
		t.Fatal("br0's rule survived RemoveNetwork")
	}

	// Someone flushes the ruleset: Ensure heals it.
	f.c.FlushRuleset()
	if err := f.c.Flush(); err != nil {
		t.Fatal(err)
	}
	if re, err := f.Ensure(); err != nil || !re {
		t.Fatalf("Ensure after a flush: recreated=%v err=%v", re, err)
	}
	if ok, err := f.intact(); err != nil || !ok {
		t.Fatalf("table after healing: intact=%v err=%v", ok, err)
	}
	// So does a damaged table (a chain flushed).
	f.c.FlushChain(f.chains()[0])
	if err := f.c.Flush(); err != nil {
		t.Fatal(err)
	}
	if re, err := f.Ensure(); err != nil || !re {
		t.Fatalf("Ensure after a chain flush: recreated=%v err=%v", re, err)
	}
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if ok, _ := f.intact(); ok {
		t.Fatal("table left after Delete")
	}
}

func TestBadPorts(t *testing.T) {
	f := &Firewall{}
	for _, p := range []Port{
		port("sctp", "", 1, "10.0.0.2", 1),
		port("tcp", "", 0, "10.0.0.2", 1),
		port("tcp", "::1", 1, "10.0.0.2", 1),
		port("tcp", "", 1, "fd00::2", 1),
	} {
		if _, _, err := f.element(p); err == nil {
			t.Errorf("%v accepted", p)
		}
	}
	f6 := &Firewall{v6: true}
	for _, p := range []Port{
		port("tcp", "", 1, "10.0.0.2", 1),
		port("tcp", "127.0.0.1", 1, "fd00::2", 1),
		port("tcp", "", 1, "::ffff:10.0.0.2", 1),
	} {
		if _, _, err := f6.element(p); err == nil {
			t.Errorf("IPv6 table: %v accepted", p)
		}
	}
}

// The IPv6 table: the same maps keyed by IPv6 addresses, published
// ports read back as they were given, per-network rules, and a table of
// its own beside the IPv4 one.
func TestIPv6Table(t *testing.T) {
	f, ns := openFam(t, true)
	if re, err := f.Ensure(); err != nil || !re {
		t.Fatalf("Ensure: recreated=%v err=%v", re, err)
	}
	if ok, err := f.intact(); err != nil || !ok {
		t.Fatalf("intact=%v err=%v", ok, err)
	}
	a := []Port{port("tcp", "::1", 8080, "fd00:1::2", 80), port("udp", "", 5353, "fd00:1::2", 53),
		port("tcp", "fd00:9::1", 8081, "fd00:1::3", 81)}
	if err := f.Publish(a); err != nil {
		t.Fatal(err)
	}
	got, err := f.Published()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sorted(got), sorted(a)) {
		t.Fatalf("published %v, want %v", sorted(got), sorted(a))
	}
	if err := f.SetNetwork(Network{Bridge: "br6", Subnet: netip.MustParsePrefix("fd00:1::/64")}); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.networkRules("br6"); len(r) != 4 {
		t.Fatalf("br6: %d rules, want 4 (masq, hairpin, localhost, isolate)", len(r))
	}
	if err := f.SetNetwork(Network{Bridge: "br4", Subnet: netip.MustParsePrefix("10.1.0.0/24")}); err == nil {
		t.Error("an IPv4 subnet accepted in the IPv6 table")
	}
	// The IPv4 table of the same namespace is another table.
	f4, err := Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f4.Close()
	if ok, _ := f4.intact(); ok {
		t.Fatal("making the IPv6 table made an IPv4 one")
	}
	if err := f.Unpublish(a); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Published(); len(got) != 0 {
		t.Fatalf("left after Unpublish: %v", got)
	}
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.intact(); ok {
		t.Fatal("table left after Delete")
	}
}
