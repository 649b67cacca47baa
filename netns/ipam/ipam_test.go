package ipam

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A child process started by TestProcessesGetDistinctAddresses allocates
// one address and prints it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BERTH_IPAM_CHILD_DIR"); dir != "" {
		p := Pool{Dir: dir, Name: "net", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.1")}
		a, err := p.Allocate(os.Getenv("BERTH_IPAM_CHILD_ID"), netip.Addr{}, netip.Addr{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(a)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func pool(t *testing.T, subnet, gw string) *Pool {
	p := &Pool{Dir: t.TempDir(), Name: "n1", Subnet: netip.MustParsePrefix(subnet)}
	if gw != "" {
		p.Gateway = netip.MustParseAddr(gw)
	}
	return p
}

func alloc(t *testing.T, p *Pool, id, want, prefer string) netip.Addr {
	t.Helper()
	var w, pr netip.Addr
	if want != "" {
		w = netip.MustParseAddr(want)
	}
	if prefer != "" {
		pr = netip.MustParseAddr(prefer)
	}
	a, err := p.Allocate(id, w, pr)
	if err != nil {
		t.Fatalf("allocate %s: %v", id, err)
	}
	return a
}

func TestAllocateSkipsReservedAndExhausts(t *testing.T) {
	p := pool(t, "10.1.2.0/29", "10.1.2.1")
	var got []string
	for i := range 5 {
		got = append(got, alloc(t, p, fmt.Sprint("c", i), "", "").String())
	}
	want := "10.1.2.2 10.1.2.3 10.1.2.4 10.1.2.5 10.1.2.6"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if _, err := p.Allocate("c9", netip.Addr{}, netip.Addr{}); err == nil {
		t.Fatal("allocation in a full /29 succeeded (network, gateway or broadcast handed out?)")
	}
	// The same id keeps its address.
	if a := alloc(t, p, "c3", "", ""); a.String() != "10.1.2.5" {
		t.Fatalf("c3 again: %v", a)
	}
}

func TestRequestedAddress(t *testing.T) {
	p := pool(t, "10.1.2.0/24", "10.1.2.1")
	if a := alloc(t, p, "a", "10.1.2.77", ""); a.String() != "10.1.2.77" {
		t.Fatalf("got %v", a)
	}
	for _, bad := range []string{"10.1.2.77", "10.1.3.5", "10.1.2.0", "10.1.2.255", "10.1.2.1"} {
		if _, err := p.Allocate("b", netip.MustParseAddr(bad), netip.Addr{}); err == nil {
			t.Errorf("requested %s: allowed", bad)
		}
	}
	ls, err := p.Leases()
	if err != nil || len(ls) != 1 {
		t.Fatalf("leases after refusals: %v %v", ls, err)
	}
}

func TestReleaseReclaimAndPrefer(t *testing.T) {
	p := pool(t, "10.1.2.0/24", "10.1.2.1")
	a := alloc(t, p, "a", "", "")
	b := alloc(t, p, "b", "", "")
	alloc(t, p, "c", "", "")
	if err := p.Release("a"); err != nil {
		t.Fatal(err)
	}
	// A container restarting after its lease was dropped asks for its
	// old address back and gets it while it is free.
	if got := alloc(t, p, "a", "", a.String()); got != a {
		t.Fatalf("a got %v, want its old %v", got, a)
	}
	if got := alloc(t, p, "b2", "", b.String()); got == b {
		t.Fatalf("preferred address %v handed out while held by b", b)
	}
	dropped, err := p.Reclaim(func(id string) bool { return id == "b" || id == "c" })
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 2 {
		t.Fatalf("reclaimed %v", dropped)
	}
	ls, _ := p.Leases()
	if len(ls) != 2 || ls[0].ID != "a" || ls[1].ID != "b2" {
		t.Fatalf("leases after reclaim: %v", ls)
	}
	if got := alloc(t, p, "d", "", b.String()); got != b {
		t.Fatalf("reclaimed %v not free again: got %v", b, got)
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(p.Dir); len(ents) != 0 {
		t.Fatalf("left after Remove: %v", ents)
	}
}

// An IPv6 pool: the subnet-router anycast address and the gateway are
// never handed out, the last address of the subnet is (no broadcast),
// --ip6 is honoured or refused, and a released lease is free again.
func TestIPv6Pool(t *testing.T) {
	p := pool(t, "fd00:1::/126", "fd00:1::1")
	if a, b := alloc(t, p, "a", "", ""), alloc(t, p, "b", "", ""); a.String() != "fd00:1::2" || b.String() != "fd00:1::3" {
		t.Fatalf("got %v %v, want fd00:1::2 fd00:1::3", a, b)
	}
	if _, err := p.Allocate("c", netip.Addr{}, netip.Addr{}); err == nil {
		t.Fatal("allocation in a full /126 succeeded (anycast or gateway handed out?)")
	}
	if err := p.Release("a"); err != nil {
		t.Fatal(err)
	}
	if got := alloc(t, p, "c", "", ""); got.String() != "fd00:1::2" {
		t.Fatalf("released address not reused: %v", got)
	}

	p = pool(t, "fd00:2::/64", "fd00:2::1")
	if a := alloc(t, p, "a", "fd00:2::abcd", ""); a.String() != "fd00:2::abcd" {
		t.Fatalf("--ip6: got %v", a)
	}
	for _, bad := range []string{"fd00:2::abcd", "fd00:3::5", "fd00:2::", "fd00:2::1"} {
		if _, err := p.Allocate("b", netip.MustParseAddr(bad), netip.Addr{}); err == nil {
			t.Errorf("requested %s: allowed", bad)
		}
	}
	if got := alloc(t, p, "b", "", "fd00:2::99"); got.String() != "fd00:2::99" {
		t.Fatalf("preferred v6 address not given: %v", got)
	}
}

func TestBadPool(t *testing.T) {
	for _, p := range []Pool{
		{Name: "x", Subnet: netip.MustParsePrefix("10.0.0.1/24")},
		{Name: "x", Subnet: netip.MustParsePrefix("10.0.0.0/31")},
		{Name: "x", Subnet: netip.MustParsePrefix("fd00::/127")},
		{Name: "x", Subnet: netip.MustParsePrefix("fd00::1/64")},
		{Name: "x", Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.1.1")},
		{Name: "../x", Subnet: netip.MustParsePrefix("10.0.0.0/24")},
	} {
		p.Dir = t.TempDir()
		if _, err := p.Allocate("a", netip.Addr{}, netip.Addr{}); err == nil {
			t.Errorf("%+v: allocation succeeded", p)
		}
	}
	p := pool(t, "10.0.0.0/24", "")
	alloc(t, p, "a", "", "")
	p.Subnet = netip.MustParsePrefix("10.0.1.0/24")
	if _, err := p.Allocate("b", netip.Addr{}, netip.Addr{}); err == nil {
		t.Error("allocation with another subnet than the stored leases' succeeded")
	}
}

// 100 processes allocating at once get 100 distinct addresses, all
// recorded.
func TestProcessesGetDistinctAddresses(t *testing.T) {
	dir := t.TempDir()
	const n = 100
	var wg sync.WaitGroup
	out := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BERTH_IPAM_CHILD_DIR="+dir, fmt.Sprint("BERTH_IPAM_CHILD_ID=c", i))
			b, err := cmd.Output()
			out[i], errs[i] = strings.TrimSpace(string(b)), err
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("child %d: %v", i, errs[i])
		}
		if j, dup := seen[out[i]]; dup {
			t.Fatalf("children %d and %d both got %s", j, i, out[i])
		}
		seen[out[i]] = i
	}
	p := Pool{Dir: dir, Name: "net", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.1")}
	ls, err := p.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != n {
		t.Fatalf("%d leases recorded, want %d", len(ls), n)
	}
	for _, l := range ls {
		if _, ok := seen[l.Addr.String()]; !ok {
			t.Errorf("lease %v was not handed to any child", l)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(m) != 0 {
		t.Errorf("temp files left: %v", m)
	}
}
