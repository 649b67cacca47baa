package network

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/tests/rig"
)

// netEnv is a berth whose every command runs in the host namespace h.
type netEnv struct {
	*rig.ContainerEnv
	h      *rig.NetHost
	resolv string // the host resolv.conf berth is pointed at
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	h := rig.NewNetHost(t) // first: its cleanup runs after the containers'
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+h.OutsideAddr+"\nsearch example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := rig.NewContainerEnv(t)
	c.Netns = h.Host
	c.Environ = []string{"BERTH_DEFAULT_NETWORK=bridge", "BERTH_HOST_RESOLV_CONF=" + resolv}
	e := &netEnv{ContainerEnv: c, h: h, resolv: resolv}
	return e
}

// get fetches url (http://host:port/path) from inside namespace ns with
// HTTP/1.0; a failure or a status other than 200 is an error. (net/http
// dials on goroutines of its own, outside the namespace's thread.)
func get(ns, url string) (string, error) {
	hostport, path, _ := strings.Cut(strings.TrimPrefix(url, "http://"), "/")
	var body string
	err := rig.InNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", hostport, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n", path, hostport); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		head, rest, _ := strings.Cut(string(b), "\r\n\r\n")
		if !strings.Contains(strings.SplitN(head, "\r\n", 2)[0], " 200 ") {
			return fmt.Errorf("GET %s: %q", url, head)
		}
		body = rest
		return nil
	})
	return body, err
}

const page = "from the image\n"

func (e *netEnv) mustGet(ns, url string) {
	e.T.Helper()
	// A published port answers as soon as run -d returns, but httpd in
	// the container may not listen yet.
	var err error
	var got string
	for i := 0; i < 50; i++ {
		if got, err = get(ns, url); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || got != page {
		e.T.Fatalf("GET %s from %s: %q, %v", url, filepath.Base(ns), got, err)
	}
}

func (e *netEnv) mustNotGet(ns, url, why string) {
	e.T.Helper()
	if got, err := get(ns, url); err == nil {
		e.T.Fatalf("%s: GET %s from %s answered %q", why, url, filepath.Base(ns), got)
	}
}

// udp sends a datagram to addr from ns and returns the answer.
func udp(ns, addr string) (string, error) {
	var out string
	err := rig.InNetns(ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 512)
		for i := 0; i < 20; i++ {
			if _, err := c.Write([]byte("hi")); err != nil {
				return err
			}
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := c.Read(buf)
			if err == nil {
				out = string(buf[:n])
				return nil
			}
		}
		return fmt.Errorf("no answer from %s", addr)
	})
	return out, err
}

// serveOutside answers each TCP connection on addr in ns with the peer's
// address, until the test ends.
func serveOutside(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := rig.InNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "peer %s\n", host)
			c.Close()
		}
	}()
}

// serveDNS answers every A query on addr (UDP) in ns with answer, until
// the test ends: a resolver on the "outside".
func serveDNS(t *testing.T, ns, addr string, answer net.IP) {
	t.Helper()
	var c net.PacketConn
	if err := rig.InNetns(ns, func() (err error) { c, err = net.ListenPacket("udp", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			// The question ends after its name (labels up to a 0) and
			// 4 bytes of type and class.
			end := 12
			for end < n && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if end > n {
				continue
			}
			qtype := int(q[end-4])<<8 | int(q[end-3])
			resp := append([]byte{}, q[:end]...)
			resp[2] = 0x81 // response, recursion desired
			resp[3] = 0x80 // recursion available, no error
			resp[6], resp[7] = 0, 0
			resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0
			if qtype == 1 {
				resp[7] = 1
				resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, answer.To4()...)
			}
			_, _ = c.WriteTo(resp, from)
		}
	}()
}

// hold binds addr in ns the way another program would, until release.
func hold(t *testing.T, ns, addr string) (release func()) {
	t.Helper()
	var ln net.Listener
	if err := rig.InNetns(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	return func() { ln.Close() }
}

// portFree says whether a TCP port can be bound in ns.
func portFree(ns, addr string) bool {
	return rig.InNetns(ns, func() error {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
		}
		return err
	}) == nil
}

// links lists the host namespace's links.
func (e *netEnv) links() []string {
	e.T.Helper()
	var out []string
	if err := rig.InNetns(e.h.Host, func() error {
		ls, err := netlink.LinkList()
		for _, l := range ls {
			out = append(out, l.Attrs().Name)
		}
		return err
	}); err != nil {
		e.T.Fatal(err)
	}
	return out
}

// published lists the port elements in berth's tables of the host (IPv4
// and IPv6).
func (e *netEnv) published() []nft.Port {
	return append(e.publishedIn(nft.Open), e.publishedIn(nft.Open6)...)
}

func (e *netEnv) publishedIn(open func(string) (*nft.Firewall, error)) []nft.Port {
	e.T.Helper()
	fw, err := open(e.h.Host)
	if err != nil {
		e.T.Fatal(err)
	}
	defer fw.Close()
	ps, err := fw.Published()
	if err != nil {
		return nil // no table: nothing published
	}
	return ps
}

// assertNothingHeld checks that no container holds anything: no veth,
// no published port, no netns file, no container on any network.
func (e *netEnv) assertNothingHeld() {
	e.T.Helper()
	for _, l := range e.links() {
		if l != "lo" && l != "uplink" && l != "berth0" && !strings.HasPrefix(l, "br-") {
			e.T.Errorf("link %s left behind", l)
		}
	}
	if ps := e.published(); len(ps) > 0 {
		e.T.Errorf("published ports left in the table: %v", ps)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.Root, "netns")); len(ents) > 0 {
		e.T.Errorf("netns files left behind: %v", ents)
	}
	for _, n := range strings.Fields(e.Must("network", "ls", "-q")) {
		if got := e.Field0("network", "inspect", "-f", "{{len .Containers}}", n); got != "0" {
			e.T.Errorf("network %s still has %s containers", n, got)
		}
	}
}

// Field0 is Must trimmed.
func (e *netEnv) Field0(args ...string) string {
	e.T.Helper()
	return strings.TrimSpace(e.Must(args...))
}

// mustFail125 checks a refused command: status 125, one line on stderr
// containing want.
func (e *netEnv) mustFail125(want string, args ...string) {
	e.T.Helper()
	r := e.Berth(args...)
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.Code != 125 || len(lines) != 1 || !strings.Contains(r.Stderr, want) {
		e.T.Errorf("berth %v: exit %d, stderr %q; want 125 and one line with %q", args, r.Code, r.Stderr, want)
	}
}
