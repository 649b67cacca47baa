package network

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestIPv6Network runs containers on a dual-stack network: they reach
// each other over IPv6 by address and by name, a port published with no
// host address answers on the host's IPv6 addresses too, and create,
// inspect, port and the refusals show IPv6 as Docker does.
func TestIPv6Network(t *testing.T) {
	e := newNetEnv(t)
	e.Must("network", "create", "--ipv6", "--subnet", "10.124.0.0/24", "--subnet", "fd00:124::/64", "v6net")
	var ins []struct {
		EnableIPv6 bool
		IPAM       struct {
			Config []struct{ Subnet, Gateway string }
		}
	}
	if err := json.Unmarshal([]byte(e.Must("network", "inspect", "v6net")), &ins); err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || !ins[0].EnableIPv6 || len(ins[0].IPAM.Config) != 2 || ins[0].IPAM.Config[1].Subnet != "fd00:124::/64" ||
		ins[0].IPAM.Config[1].Gateway != "fd00:124::1" {
		t.Errorf("network inspect: %+v", ins)
	}
	e.mustFail125("overlaps network v6net", "network", "create", "--ipv6", "--subnet", "fd00:124::/48", "over6")
	e.mustFail125("needs --ipv6", "network", "create", "--subnet", "fd00:125::/64", "no6")

	e.Must("run", "-d", "--name", "web", "--network", "v6net", "--ip6", "fd00:124::50", "-p", "8080:80", img, "httpd", "-f", "-p", "80", "-h", "/data")
	e.Must("run", "-d", "--name", "peer", "--network", "v6net", img, "sleep", "1000")
	if got := e.Field("web", "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}"); got != "fd00:124::50 fd00:124::1" {
		t.Errorf("inspect: GlobalIPv6Address IPv6Gateway = %q", got)
	}
	// Container to container over IPv6, by address and by name (the
	// peer's /etc/hosts lists web's IPv6 address too).
	if out := e.Must("exec", "peer", "wget", "-qO-", "http://[fd00:124::50]/from-image.txt"); out != page {
		t.Errorf("wget over IPv6: %q", out)
	}
	if hosts := e.Must("exec", "peer", "cat", "/etc/hosts"); !strings.Contains(hosts, "fd00:124::50\tweb") {
		t.Errorf("peer's hosts lack web's IPv6 address:\n%s", hosts)
	}
	if out := e.Must("exec", "peer", "sh", "-c", "printf 'GET /from-image.txt HTTP/1.0\\r\\n\\r\\n' | nc fd00:124::50 80"); !strings.Contains(out, "HTTP/1") {
		t.Errorf("nc over IPv6: %q", out)
	}
	// -p 8080:80 is published on 0.0.0.0 and [::]: reached from the host
	// over IPv6 on the bridge address and from the outside (hairpin too).
	if out := e.Must("port", "web"); !strings.Contains(out, "80/tcp -> 0.0.0.0:8080") || !strings.Contains(out, "80/tcp -> [::]:8080") {
		t.Errorf("berth port:\n%s", out)
	}
	e.mustGet(e.h.Host, "http://[fd00:124::1]:8080/from-image.txt")
	e.mustGet(e.h.Host, "http://127.0.0.1:8080/from-image.txt")
	if out := e.Must("exec", "peer", "wget", "-qO-", "http://[fd00:124::1]:8080/from-image.txt"); out != page {
		t.Errorf("hairpin over IPv6: %q", out)
	}
	// Refusals: a taken --ip6, one outside the subnet, [::1] publishing,
	// --ip6 on a network without IPv6.
	e.mustFail125("already in use", "run", "-d", "--network", "v6net", "--ip6", "fd00:124::50", img, "true")
	e.mustFail125("fd00:999::5", "run", "-d", "--network", "v6net", "--ip6", "fd00:999::5", img, "true")
	e.mustFail125("[::1]", "run", "-d", "--network", "v6net", "-p", "[::1]:8081:80", img, "true")
	e.Must("network", "create", "--subnet", "10.126.0.0/24", "v4only")
	e.mustFail125("IPv6", "run", "-d", "--network", "v4only", "--ip6", "fd00:124::60", img, "true")

	e.Must("rm", "-f", "web", "peer")
	e.assertNothingHeld()
	e.Must("network", "rm", "v6net", "v4only")
}
