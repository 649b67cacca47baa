package etcfiles

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestHosts(t *testing.T) {
	got := string(Hosts(HostsConfig{
		Hostname: "web", Domainname: "example.test",
		Addrs:   []netip.Addr{netip.MustParseAddr("10.88.0.2")},
		Aliases: []string{"www"},
		Extra:   []Host{{Addr: netip.MustParseAddr("10.88.0.1"), Names: []string{"host.docker.internal"}}},
		Peers:   []Host{{Addr: netip.MustParseAddr("10.88.0.3"), Names: []string{"db", "pg"}}, {Addr: netip.MustParseAddr("10.88.0.4")}},
	}))
	for _, line := range []string{
		"127.0.0.1\tlocalhost\n",
		"::1\tlocalhost ip6-localhost ip6-loopback\n",
		"10.88.0.2\tweb.example.test web www\n",
		"10.88.0.1\thost.docker.internal\n",
		"10.88.0.3\tdb pg\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts lacks %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "10.88.0.4") {
		t.Errorf("a peer with no names got a line:\n%s", got)
	}
	none := string(Hosts(HostsConfig{Hostname: "box"}))
	if !strings.Contains(none, "127.0.1.1\tbox\n") {
		t.Errorf("hostname without an address does not resolve:\n%s", none)
	}
	if string(Hostname("box")) != "box\n" {
		t.Error("Hostname")
	}
}

const resolved = "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.test\n"
const upstream = "nameserver 192.0.2.53\nnameserver 127.0.0.1\nnameserver 2001:db8::53\nsearch corp.test\n"

func TestResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name           string
		host, upstream string
		reach          Reach
		dns            DNS
		want           string
		warn           int
	}{
		{"stub replaced by upstream", resolved, upstream, Routed, DNS{},
			"search corp.test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\noptions edns0 trust-ad\n", 0},
		{"stub with no upstream is dropped", resolved, "", Routed, DNS{},
			"search corp.test\noptions edns0 trust-ad\n", 2},
		{"loopback dropped, others kept", "nameserver 127.0.0.1\nnameserver 198.51.100.1\nnameserver fe80::1%eth0\n", "", Routed, DNS{},
			"nameserver 198.51.100.1\n", 1},
		{"host network keeps loopback", resolved, upstream, HostNet, DNS{},
			"search corp.test\nnameserver 127.0.0.53\noptions edns0 trust-ad\n", 0},
		{"no network, no warning", resolved, "", NoNet, DNS{},
			"search corp.test\noptions edns0 trust-ad\n", 0},
		{"overrides", resolved, "", Routed,
			DNS{Servers: []netip.Addr{netip.MustParseAddr("203.0.113.9")}, Search: []string{"a.test", "b.test"}, Options: []string{"ndots:2"}},
			"search a.test b.test\nnameserver 203.0.113.9\noptions ndots:2\n", 0},
	} {
		got, warns := ResolvConf([]byte(tc.host), []byte(tc.upstream), tc.reach, tc.dns)
		if string(got) != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
		if len(warns) != tc.warn {
			t.Errorf("%s: warnings %q, want %d", tc.name, warns, tc.warn)
		}
	}
}

// A bind mount of the file sees the rewrite: the inode is the same.
func TestRewriteSeenThroughBindMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "hosts"), filepath.Join(dir, "mnt")
	if err := os.WriteFile(src, []byte("127.0.0.1\tlocalhost\n10.0.0.9\tgone-peer-with-a-long-name\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	want := "127.0.0.1\tlocalhost\n"
	if err := Rewrite(src, []byte(want)); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("through the mount: %q, want %q", got, want)
	}
}
