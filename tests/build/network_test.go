package build

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/tests/rig"
)

// netDockerfile has three RUN steps that write, into a cache mount, the
// network namespace they run in and its interfaces: one with the
// build's network, one with --network=none, one with --network=host.
const netDockerfile = `FROM berth-test/busybox
RUN --mount=type=cache,id=net,target=/seen readlink /proc/self/ns/net > /seen/default && tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ' >> /seen/default
RUN --network=none --mount=type=cache,id=net,target=/seen readlink /proc/self/ns/net > /seen/none && tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ' >> /seen/none
RUN --network=host --mount=type=cache,id=net,target=/seen readlink /proc/self/ns/net > /seen/host
`

// netSeen reads what netDockerfile's steps wrote: namespace, then links.
func netSeen(t *testing.T, c *rig.ContainerEnv, name string) (ns, links string) {
	t.Helper()
	s := buildSeen(c, name)
	ns, links, _ = strings.Cut(s, "\n")
	if ns == "" {
		t.Fatalf("the step wrote no %s", name)
	}
	return ns, strings.TrimSpace(links)
}

// TestBuildRunNetwork: a RUN step without --network gets the build's
// network (--network host: the host's namespace; none, and the test
// suites' default: a namespace with lo only); RUN --network=none|host
// gets that whatever the build's. No bridge is made on the host.
func TestBuildRunNetwork(t *testing.T) {
	c := rig.NewContainerEnv(t)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeContext(t, map[string]string{"Dockerfile": netDockerfile})
	// The host's network is the builder's to give (BuildKit's
	// network.host entitlement), never the Dockerfile's to take.
	r := c.Berth("build", "--no-cache", "--network", "none", dir)
	if r.Code == 0 || !strings.Contains(r.Stderr, "--allow network.host") {
		t.Errorf("RUN --network=host without --allow network.host: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if ns := buildSeen(c, "host"); ns != "" {
		t.Errorf("the refused RUN --network=host step ran, in %s", ns)
	}
	if r := c.Berth("build", "--allow", "security.insecure", dir); r.Code != 125 || !strings.Contains(r.Stderr, "network.host") {
		t.Errorf("--allow security.insecure: exit %d, stderr %q", r.Code, r.Stderr)
	}
	for _, flags := range [][]string{{"--network", "host"}, {"--network", "none", "--allow", "network.host"}, {"--allow", "network.host"}} {
		mustBuild(c, append(append([]string{"--no-cache"}, flags...), dir)...)
		ns, links := netSeen(t, c, "default")
		if flags[1] == "host" {
			if ns != hostNS {
				t.Errorf("%v: the default step ran in %s, not the host's %s", flags, ns, hostNS)
			}
		} else if ns == hostNS || links != "lo" {
			t.Errorf("%v: the default step ran in %s with %q, want a namespace of its own with lo only", flags, ns, links)
		}
		if ns, links := netSeen(t, c, "none"); ns == hostNS || links != "lo" {
			t.Errorf("%v: RUN --network=none ran in %s with %q", flags, ns, links)
		}
		if ns, _ := netSeen(t, c, "host"); ns != hostNS {
			t.Errorf("%v: RUN --network=host ran in %s, not the host's %s", flags, ns, hostNS)
		}
	}
	if _, err := net.InterfaceByName("berth0"); err == nil && !preexisting {
		t.Errorf("the build made berth0 on the host")
	}
}

// preexisting: berth0 was on the host before the tests (then the check
// above cannot tell).
var preexisting = func() bool { _, err := net.InterfaceByName("berth0"); return err == nil }()

// TestBuildRunNetworkBridge: with berth's default network the bridge
// (berth in a network namespace of its own that plays the host, as the
// network tests do: never the machine's), a RUN step has an interface on
// the bridge and reaches a server outside through NAT, and its veth is
// gone after the build.
func TestBuildRunNetworkBridge(t *testing.T) {
	h := rig.NewNetHost(t) // first: its cleanup runs after the containers'
	c := rig.NewContainerEnv(t)
	c.Netns = h.Host
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+h.OutsideAddr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Environ = []string{"BERTH_DEFAULT_NETWORK=bridge", "BERTH_HOST_RESOLV_CONF=" + resolv}
	var ln net.Listener
	if err := rig.InNetns(h.Outside, func() (err error) { ln, err = net.Listen("tcp", h.OutsideAddr+":8099"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
			fmt.Fprintf(conn, "peer %s\n", host)
			conn.Close()
		}
	}()
	dir := writeContext(t, map[string]string{
		"Dockerfile": netDockerfile + "RUN nc " + h.OutsideAddr + " 8099 > /peer\n",
	})
	mustBuild(c, "--allow", "network.host", "-t", "brnet:1", dir)
	ns, links := netSeen(t, c, "default")
	if hostNS, _ := netSeen(t, c, "host"); ns == hostNS || !strings.Contains(links, "eth0") {
		t.Errorf("the default step ran in %s (berth's is %s) with %q, want eth0 on the bridge", ns, hostNS, links)
	}
	if got := c.Must("run", "--rm", "--network", "none", "brnet:1", "cat", "/peer"); got != "peer "+h.HostAddr+"\n" {
		t.Errorf("the step's connection outside: %q, want it masqueraded to %s", got, h.HostAddr)
	}
	var left []string
	if err := rig.InNetns(h.Host, func() error {
		ls, err := netlink.LinkList()
		for _, l := range ls {
			if l.Type() == "veth" && l.Attrs().Name != "uplink" {
				left = append(left, l.Attrs().Name)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("veths left after the build: %v", left)
	}
}
