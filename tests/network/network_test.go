package network

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/probe"
	"github.com/berth-project/berth/netns/nft"
	"github.com/berth-project/berth/tests/rig"
)

const img = rig.TestImage

// TestPublish covers -p: TCP on all addresses and on 127.0.0.1, a range,
// UDP; reached from the host's loopback, on the container's bridge
// address, from the outside (not the 127.0.0.1 one), and from containers
// (hairpin); berth port, ps and inspect; nothing left after rm.
func TestPublish(t *testing.T) {
	e := newNetEnv(t)
	h := e.h
	e.Must("run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:8081:80", "-p", "9000-9002:9000-9002",
		"-p", "5353:5353/udp", img, "sh", "-c",
		"for p in 9000 9001 9002; do httpd -p $p -h /data; done; httpd -p 80 -h /data; exec /probe udpecho 5353")
	e.mustGet(h.Host, "http://127.0.0.1:8080/from-image.txt")
	e.mustGet(h.Host, "http://127.0.0.1:8081/from-image.txt")
	for _, p := range []string{"9000", "9001", "9002"} {
		e.mustGet(h.Host, "http://127.0.0.1:"+p+"/from-image.txt")
	}
	ip := e.Field("web", "{{.NetworkSettings.IPAddress}}")
	if ip == "" {
		t.Fatal("no IPAddress in inspect")
	}
	e.mustGet(h.Host, "http://"+ip+":80/from-image.txt")
	got, err := udp(h.Host, "127.0.0.1:5353")
	if err != nil || !strings.HasPrefix(got, "probe ") {
		t.Errorf("UDP to a published port: %q, %v", got, err)
	}
	// From the outside: the port published on every address answers, the
	// one published on 127.0.0.1 does not (moby #41872).
	e.mustGet(h.Outside, "http://"+h.HostAddr+":8080/from-image.txt")
	e.mustNotGet(h.Outside, "http://"+h.HostAddr+":8081/from-image.txt", "127.0.0.1-only port from the outside")
	// Hairpin: another container, and the container itself, reach the
	// published port through the host's address.
	if out := e.Must("run", "--rm", img, "wget", "-qO-", "http://"+h.HostAddr+":8080/from-image.txt"); out != page {
		t.Errorf("another container to a published port: %q", out)
	}
	if out := e.Must("exec", "web", "wget", "-qO-", "http://"+h.HostAddr+":8080/from-image.txt"); out != page {
		t.Errorf("a container to its own published port: %q", out)
	}

	port := e.Must("port", "web")
	for _, want := range []string{"80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:8081", "5353/udp -> 0.0.0.0:5353", "9001/tcp -> 0.0.0.0:9001"} {
		if !strings.Contains(port, want+"\n") {
			t.Errorf("berth port web:\n%s\nlacks %q", port, want)
		}
	}
	if out := e.Must("port", "web", "5353/udp"); out != "0.0.0.0:5353\n" {
		t.Errorf("berth port web 5353/udp: %q", out)
	}
	if r := e.Berth("port", "web", "81"); r.Code == 0 {
		t.Errorf("berth port of an unpublished port: %q", r.Stdout)
	}
	ps := e.Must("ps", "--format", "{{.Ports}}")
	for _, want := range []string{"0.0.0.0:9000-9002->9000-9002/tcp", "127.0.0.1:8081->80/tcp", "0.0.0.0:8080->80/tcp", "0.0.0.0:5353->5353/udp"} {
		if !strings.Contains(ps, want) {
			t.Errorf("ps PORTS %q lacks %q", ps, want)
		}
	}
	var ports map[string][]struct{ HostIp, HostPort string }
	if err := json.Unmarshal([]byte(e.Field("web", "{{json .NetworkSettings.Ports}}")), &ports); err != nil {
		t.Fatal(err)
	}
	if len(ports["80/tcp"]) != 2 || ports["5353/udp"][0].HostPort != "5353" {
		t.Errorf("inspect Ports %+v", ports)
	}
	if sk := e.Field("web", "{{.NetworkSettings.SandboxKey}}"); !strings.HasPrefix(sk, e.Root+"/") {
		t.Errorf("SandboxKey %q not under the state root", sk)
	}

	e.Must("rm", "-f", "web")
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "0.0.0.0:9001"} {
		if !portFree(h.Host, a) {
			t.Errorf("host port %s still held after rm", a)
		}
	}
	e.assertNothingHeld()
}

// TestHeldPorts checks that a detached container's published ports stay
// bound by its monitor after it became the lean monitor program, and
// that those sockets do not reach the container.
func TestHeldPorts(t *testing.T) {
	e := newNetEnv(t)
	e.Must("run", "-d", "--name", "held", "-p", "8086:80", img, "sleep", "1000")
	if portFree(e.h.Host, "0.0.0.0:8086") {
		t.Error("the published port is not held while the container runs")
	}
	mon, _ := strconv.Atoi(e.Field("held", "{{.State.MonitorPid}}"))
	rig.WaitFor(t, "the lean monitor", 5e9, func() bool {
		exe, _ := os.Readlink("/proc/" + strconv.Itoa(mon) + "/exe")
		return strings.Contains(exe, "monitor")
	})
	if portFree(e.h.Host, "0.0.0.0:8086") {
		t.Error("the published port was freed when the monitor exec'd its lean program")
	}
	// A foreground container with a published port: the probe lists its
	// descriptors.
	out := e.Must("run", "--rm", "-p", "8087:80", img, "/probe")
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, fd := range rep.FDs {
		if fd.FD > 2 && strings.HasPrefix(fd.Target, "socket:") {
			t.Errorf("a socket reached the container: fd %d %s", fd.FD, fd.Target)
		}
	}
	// Detached with a restart: the run after the lean monitor gave the
	// sockets back to berth must not see them either.
	e.Must("run", "-d", "--name", "again", "--restart", "on-failure:1", "-p", "8088:80", img, "sh", "-c", "/probe; exit 1")
	rig.WaitFor(t, "the restart to end", 20e9, func() bool {
		return e.Field("again", "{{.State.Status}}") == "exited" && e.Field("again", "{{.RestartCount}}") == "1"
	})
	dec := json.NewDecoder(strings.NewReader(e.Must("logs", "again")))
	runs := 0
	for dec.More() {
		var rep probe.Report
		if err := dec.Decode(&rep); err != nil {
			t.Fatal(err)
		}
		runs++
		for _, fd := range rep.FDs {
			if fd.FD > 2 && strings.HasPrefix(fd.Target, "socket:") {
				t.Errorf("run %d of a detached container: a socket reached it: fd %d %s", runs, fd.FD, fd.Target)
			}
		}
	}
	if runs != 2 {
		t.Errorf("%d probe reports in the logs, want 2", runs)
	}
	if !portFree(e.h.Host, "0.0.0.0:8088") {
		t.Error("the port of a container that exited for good is still held")
	}
	e.Must("rm", "again")

	ip := e.Field("held", "{{.NetworkSettings.IPAddress}}")
	e.Must("restart", "-t", "0", "held")
	if portFree(e.h.Host, "0.0.0.0:8086") {
		t.Error("the published port is not held after a restart")
	}
	if got := e.Field("held", "{{.NetworkSettings.IPAddress}}"); got != ip {
		t.Errorf("restart changed the address from %s to %s", ip, got)
	}
	e.Must("stop", "-t", "0", "held")
	if !portFree(e.h.Host, "0.0.0.0:8086") {
		t.Error("the published port is still held after stop")
	}
	if got := e.Field("held", "{{.NetworkSettings.IPAddress}}"); got != "" {
		t.Errorf("a stopped container shows the address %s", got)
	}
	e.assertNothingHeld()
	// Another container meanwhile, then start: the old address again.
	e.Must("run", "--rm", img, "true")
	e.Must("start", "held")
	if got := e.Field("held", "{{.NetworkSettings.IPAddress}}"); got != ip {
		t.Errorf("start after stop got %s, had %s", got, ip)
	}
	e.Must("rm", "-f", "held")
	e.assertNothingHeld()
}

// TestPublishAll covers -P with --expose.
func TestPublishAll(t *testing.T) {
	e := newNetEnv(t)
	e.Must("run", "-d", "--name", "all", "-P", "--expose", "7000", img, "httpd", "-f", "-p", "7000", "-h", "/data")
	hp := strings.TrimSpace(e.Must("port", "all", "7000"))
	if !strings.HasPrefix(hp, "0.0.0.0:") || strings.HasSuffix(hp, ":0") {
		t.Fatalf("-P published 7000 on %q", hp)
	}
	e.mustGet(e.h.Host, "http://127.0.0.1:"+strings.TrimPrefix(hp, "0.0.0.0:")+"/from-image.txt")
}

// TestPublishHostOrNone: with --network host or none there is nothing to
// publish from, so -p and -P are dropped as Docker drops them (with its
// warning on the host network) instead of refusing the run.
func TestPublishHostOrNone(t *testing.T) {
	e := newNetEnv(t)
	r := e.Berth("run", "-d", "--name", "onhost", "--network", "host", "-p", "127.0.0.1:8093:80", "-P", img, "sleep", "1000")
	if r.Code != 0 || !strings.Contains(r.Stderr, "Published ports are discarded when using host network mode") {
		t.Fatalf("run --network host -p: %+v, want a warning and a run", r)
	}
	if got := e.Must("inspect", "-f", "{{json .HostConfig.PortBindings}} {{.HostConfig.PublishAllPorts}}", "onhost"); strings.TrimSpace(got) != "{} false" && strings.TrimSpace(got) != "null false" {
		t.Errorf("host mode kept its ports: %s", got)
	}
	// berth holds the host ports it publishes: this one stays free.
	l, err := net.Listen("tcp", "127.0.0.1:8093")
	if err != nil {
		t.Errorf("host port 8093 of a discarded -p is taken: %v", err)
	} else {
		l.Close()
	}
	e.Must("rm", "-f", "onhost")
	r = e.Berth("run", "--rm", "--network", "none", "-p", "8094:80", img, "true")
	if r.Code != 0 || strings.Contains(r.Stderr, "discarded") {
		t.Errorf("run --network none -p: %+v, want a run without a warning (Docker's)", r)
	}
}

// TestUserNetwork covers a user network: names and aliases in /etc/hosts,
// peers' hosts files updated as containers come and go, connect and
// disconnect, isolation from the default bridge, --internal, network ls,
// inspect and rm.
func TestUserNetwork(t *testing.T) {
	e := newNetEnv(t)
	id := e.Field0("network", "create", "--subnet", "10.123.0.0/24", "--label", "team=a", "appnet")
	if len(id) != 64 {
		t.Errorf("network create printed %q", id)
	}
	e.Must("run", "-d", "--name", "peer", "--network", "appnet", img, "sleep", "1000")
	e.Must("run", "-d", "--name", "db", "--network", "appnet", "--network-alias", "pg", "--ip", "10.123.0.50", img, "httpd", "-f", "-p", "80", "-h", "/data")
	for _, name := range []string{"db", "pg"} {
		if out := e.Must("run", "--rm", "--network", "appnet", img, "wget", "-qO-", "http://"+name+"/from-image.txt"); out != page {
			t.Errorf("%s by name: %q", name, out)
		}
	}
	hosts := e.Must("exec", "peer", "cat", "/etc/hosts")
	if !strings.Contains(hosts, "10.123.0.50") || !strings.Contains(hosts, "pg") {
		t.Errorf("the hosts of a running peer lack db joining:\n%s", hosts)
	}
	if ip := e.Field("db", `{{(index .NetworkSettings.Networks "appnet").IPAddress}}`); ip != "10.123.0.50" {
		t.Errorf("--ip: got %s", ip)
	}
	// The default bridge has no names, and cannot reach appnet.
	if r := e.Berth("run", "--rm", img, "wget", "-T", "2", "-qO-", "http://10.123.0.50/from-image.txt"); r.Code == 0 {
		t.Error("a container on the default bridge reached one on appnet")
	}
	// connect and disconnect of a running container.
	e.Must("run", "-d", "--name", "other", img, "sleep", "1000")
	e.Must("network", "connect", "--alias", "oth", "appnet", "other")
	if out := e.Must("exec", "other", "wget", "-qO-", "http://db/from-image.txt"); out != page {
		t.Errorf("after connect: %q", out)
	}
	if !strings.Contains(e.Must("exec", "peer", "cat", "/etc/hosts"), "oth") {
		t.Error("the hosts of a running peer lack a connected container")
	}
	e.Must("network", "disconnect", "appnet", "other")
	if strings.Contains(e.Must("exec", "peer", "cat", "/etc/hosts"), "oth") {
		t.Error("a disconnected container stayed in a peer's hosts")
	}
	// ls and inspect.
	if out := e.Field0("network", "ls", "-q", "--filter", "name=appn"); out != id[:12] {
		t.Errorf("ls -q --filter name=: %q", out)
	}
	ls := e.Must("network", "ls")
	if !strings.HasPrefix(ls, "NETWORK ID") || !strings.Contains(ls, "appnet") || !strings.Contains(ls, "bridge") {
		t.Errorf("network ls:\n%s", ls)
	}
	if out := e.Field0("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", "--filter", "label=team=a"); out != "appnet bridge local" {
		t.Errorf("ls --format: %q", out)
	}
	var ins []struct {
		Name       string
		IPAM       struct{ Config []struct{ Subnet string } }
		Containers map[string]struct{ Name, IPv4Address string }
	}
	if err := json.Unmarshal([]byte(e.Must("network", "inspect", "appnet")), &ins); err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].IPAM.Config[0].Subnet != "10.123.0.0/24" || len(ins[0].Containers) != 2 {
		t.Errorf("inspect %+v", ins)
	}
	// inspect finds networks too.
	if got := e.Field0("inspect", "-f", "{{.Name}} {{.Driver}}", "appnet"); got != "appnet bridge" {
		t.Errorf("inspect of a network: %q", got)
	}
	// rm while used is refused; removal takes db out of the peer's hosts.
	e.mustFail125("in use", "network", "rm", "appnet")
	e.Must("rm", "-f", "db")
	if strings.Contains(e.Must("exec", "peer", "cat", "/etc/hosts"), "10.123.0.50") {
		t.Error("a removed container stayed in a peer's hosts")
	}
	e.Must("rm", "-f", "peer", "other")
	e.Must("network", "rm", "appnet")
	e.assertNothingHeld()
}

// TestInternalAndNAT covers outbound NAT to the outside (the outside sees
// the host's address) and an --internal network that cannot get out.
func TestInternalAndNAT(t *testing.T) {
	e := newNetEnv(t)
	serveOutside(t, e.h.Outside, e.h.OutsideAddr+":7000")
	out := e.Must("run", "--rm", img, "nc", e.h.OutsideAddr, "7000")
	if out != "peer "+e.h.HostAddr+"\n" {
		t.Errorf("outbound from the default bridge: %q, want it masqueraded to %s", out, e.h.HostAddr)
	}
	// DNS through a resolver on the outside, which the host's
	// resolv.conf names.
	serveDNS(t, e.h.Outside, e.h.OutsideAddr+":53", net.IPv4(192, 0, 2, 77))
	if out := e.Must("run", "--rm", img, "nslookup", "svc.example.test"); !strings.Contains(out, "192.0.2.77") {
		t.Errorf("DNS through the outside resolver:\n%s", out)
	}
	e.Must("network", "create", "--internal", "--subnet", "10.124.0.0/24", "closed")
	if r := e.Berth("run", "--rm", "--network", "closed", img, "nc", "-w", "2", e.h.OutsideAddr, "7000"); r.Code == 0 || strings.Contains(r.Stdout, "peer") {
		t.Errorf("an --internal network got out: %q", r.Stdout)
	}
	e.Must("network", "rm", "closed")
}

// TestContainerMode covers --network container:NAME and its refusals.
func TestContainerMode(t *testing.T) {
	e := newNetEnv(t)
	e.Must("run", "-d", "--name", "web", img, "httpd", "-f", "-p", "80", "-h", "/data")
	e.Must("create", "--name", "stopped", img, "true")
	var out string
	for i := 0; i < 30; i++ {
		if r := e.Berth("run", "--rm", "--network", "container:web", img, "wget", "-qO-", "http://127.0.0.1/from-image.txt"); r.Code == 0 {
			out = r.Stdout
			break
		}
	}
	if out != page {
		t.Errorf("container:web to its 127.0.0.1: %q", out)
	}
	before := e.Must("ps", "-aq")
	e.mustFail125("not running", "run", "--rm", "--network", "container:stopped", img, "true")
	e.mustFail125("no such container", "run", "--rm", "--network", "container:missing", img, "true")
	if after := e.Must("ps", "-aq"); after != before {
		t.Errorf("a refused container was left: %q, before %q", after, before)
	}
}

// TestEtcFiles covers /etc/hosts, /etc/hostname and /etc/resolv.conf: the
// host's resolv.conf in host mode, loopback resolvers dropped with a
// warning, --dns*, --add-host with host-gateway, --hostname.
func TestEtcFiles(t *testing.T) {
	e := newNetEnv(t)
	host, err := os.ReadFile(e.resolv)
	if err != nil {
		t.Fatal(err)
	}
	// The host's servers and search list (berth may reorder the lines).
	out := e.Must("run", "--rm", "--network", "host", img, "cat", "/etc/resolv.conf")
	for _, l := range strings.Split(strings.TrimSpace(string(host)), "\n") {
		if !strings.Contains(out, l+"\n") {
			t.Errorf("--network host resolv.conf %q lacks the host's %q", out, l)
		}
	}
	out = e.Must("run", "--rm", "--hostname", "box", "--domainname", "example.test", "--add-host", "gw:host-gateway",
		"--add-host", "db:10.9.9.9", "--dns", "192.0.2.99", "--dns-search", "corp.test", "--dns-option", "ndots:3",
		img, "sh", "-c", "cat /etc/hostname /etc/hosts /etc/resolv.conf; hostname")
	gw := e.Field0("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")
	for _, want := range []string{"box\n", "10.9.9.9\tdb", gw + "\tgw", "nameserver 192.0.2.99", "search corp.test", "options ndots:3", "127.0.0.1\tlocalhost"} {
		if !strings.Contains(out, want) {
			t.Errorf("container /etc lacks %q:\n%s", want, out)
		}
	}
	// A host resolv.conf naming only systemd-resolved's stub.
	stub := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(stub, []byte("nameserver 127.0.0.53\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.Environ = append(e.Environ, "BERTH_HOST_RESOLV_CONF="+stub)
	r := e.Berth("run", "--rm", img, "cat", "/etc/resolv.conf")
	if r.Code != 0 || strings.Contains(r.Stdout, "127.0.0.53") {
		t.Errorf("loopback resolver kept: %q (exit %d)", r.Stdout, r.Code)
	}
	if !strings.Contains(strings.ToLower(r.Stderr), "warn") {
		t.Errorf("no warning when no DNS server is left: stderr %q", r.Stderr)
	}
	// run -d: the container's monitor sets the network up, and its
	// warnings reach the terminal of the run, not only monitor.log.
	r = e.Berth("run", "-d", "--name", "dwarn", img, "sleep", "1000")
	if r.Code != 0 || !strings.Contains(r.Stderr, "loopback nameservers") || !strings.Contains(r.Stderr, "no nameserver left") {
		t.Errorf("run -d with only a loopback resolver: exit %d, stderr %q; want both warnings", r.Code, r.Stderr)
	}
	e.Must("rm", "-f", "dwarn")
}

// TestKill9Prune kills the monitor and the container with SIGKILL; prune
// then leaves nothing: no veth, lease, table element, netns file or held
// port.
func TestKill9Prune(t *testing.T) {
	e := newNetEnv(t)
	e.Must("network", "create", "--subnet", "10.125.0.0/24", "killnet")
	e.Must("network", "create", "--subnet", "10.127.0.0/24", "keepnet")
	e.Must("create", "--name", "keep", "--network", "keepnet", img, "true")
	e.Must("run", "-d", "--name", "k", "-p", "8090:80", img, "sleep", "1000")
	e.Must("run", "-d", "--name", "k2", "--network", "killnet", img, "sleep", "1000")
	// A foreground berth, the owner of its container.
	fg := e.Cmd("run", "--name", "fg", "-p", "8091:80", img, "sleep", "1000")
	if err := rig.InNetns(e.Netns, fg.Start); err != nil {
		t.Fatal(err)
	}
	rig.WaitFor(t, "the foreground container", 10e9, func() bool {
		r := e.Berth("inspect", "-f", "{{.State.Running}}", "fg")
		return strings.TrimSpace(r.Stdout) == "true"
	})
	pids := []string{e.Field("fg", "{{.State.Pid}}")}
	for _, n := range []string{"k", "k2"} {
		pids = append(pids, e.Field(n, "{{.State.MonitorPid}}"), e.Field(n, "{{.State.Pid}}"))
	}
	_ = fg.Process.Kill()
	_ = fg.Wait()
	for _, p := range pids {
		if pid, _ := strconv.Atoi(p); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	for _, a := range []string{"0.0.0.0:8090", "0.0.0.0:8091"} {
		rig.WaitFor(t, "port "+a+" to be free", 5e9, func() bool { return portFree(e.h.Host, a) })
	}
	// Networks that containers name, stopped or dead ones too, stay.
	if out := e.Must("network", "prune", "-f"); strings.Contains(out, "killnet") || strings.Contains(out, "keepnet") {
		t.Errorf("network prune removed a network containers name: %q", out)
	}
	e.Must("container", "prune", "-f")
	out := e.Must("network", "prune", "-f")
	if !strings.Contains(out, "killnet") || !strings.Contains(out, "keepnet") {
		t.Errorf("network prune after container prune: %q", out)
	}
	if ps := e.Must("ps", "-aq"); ps != "" {
		t.Errorf("containers left: %q", ps)
	}
	e.assertNothingHeld()
}

// TestReload flushes berth's table; network reload puts every rule back.
func TestReload(t *testing.T) {
	e := newNetEnv(t)
	e.Must("run", "-d", "--name", "web", "-p", "8080:80", img, "httpd", "-f", "-p", "80", "-h", "/data")
	e.mustGet(e.h.Host, "http://127.0.0.1:8080/from-image.txt")
	fw, err := nft.Open(e.h.Host)
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Delete(); err != nil {
		t.Fatal(err)
	}
	fw.Close()
	e.mustNotGet(e.h.Host, "http://127.0.0.1:8080/from-image.txt", "after the table was flushed")
	e.Must("network", "reload")
	e.mustGet(e.h.Host, "http://127.0.0.1:8080/from-image.txt")
}

// TestBadInput: each refused with status 125, one line, nothing left.
func TestBadInput(t *testing.T) {
	e := newNetEnv(t)
	e.Must("network", "create", "--subnet", "10.126.0.0/24", "badnet")
	e.Must("run", "-d", "--name", "taken", "--network", "badnet", "--ip", "10.126.0.9", img, "sleep", "1000")
	release := hold(t, e.h.Host, "127.0.0.1:8085")
	defer release()
	before := e.Must("ps", "-aq")
	for _, c := range []struct {
		want string
		args []string
	}{
		{`-p "1:2:3:4"`, []string{"-p", "1:2:3:4"}},
		{`-p "80-81:90"`, []string{"-p", "80-81:90"}},
		{"network nosuch not found", []string{"--network", "nosuch"}},
		{"user defined networks only", []string{"--ip", "172.17.0.99"}},
		{"not in the subnet", []string{"--network", "badnet", "--ip", "10.99.0.5"}},
		{"10.126.0.9", []string{"--network", "badnet", "--ip", "10.126.0.9"}},
		{"8085", []string{"-p", "127.0.0.1:8085:80"}},
	} {
		args := append(append([]string{"run", "--rm"}, c.args...), img, "true")
		e.mustFail125(c.want, args...)
		args[1] = "-d"
		e.mustFail125(c.want, args...)
	}
	e.mustFail125("overlap", "network", "create", "--subnet", "10.126.0.0/25", "overlapping")
	if after := e.Must("ps", "-aq"); after != before {
		t.Errorf("refused runs left containers: %q, before %q", after, before)
	}
	e.Must("rm", "-f", "taken")
	e.assertNothingHeld()
}

// TestParallelRuns starts containers at once (100 on the host, 20 in the
// VMs, which have one slow CPU): each gets an address of its own, and
// removing them all leaves nothing.
func TestParallelRuns(t *testing.T) {
	e := newNetEnv(t)
	n := 100
	if os.Getenv("BERTH_VM") != "" || testing.Short() {
		n = 20
	}
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			r := e.Berth("run", "-d", "--name", "p"+strconv.Itoa(i), img, "sleep", "1000")
			if r.Code != 0 {
				errs <- r.Stderr
				return
			}
			errs <- ""
		}(i)
	}
	for i := 0; i < n; i++ {
		if msg := <-errs; msg != "" {
			t.Errorf("parallel run -d: %s", msg)
		}
	}
	seen := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(e.Must("ps", "-aq")), "\n") {
		ip := e.Field(l, "{{.NetworkSettings.IPAddress}}")
		if ip == "" || seen[ip] != "" {
			t.Errorf("container %s has address %q (also %s's)", l, ip, seen[ip])
		}
		seen[ip] = l
	}
	if len(seen) != n {
		t.Errorf("%d distinct addresses for %d containers", len(seen), n)
	}
	ids := strings.Fields(e.Must("ps", "-aq"))
	e.Must(append([]string{"rm", "-f"}, ids...)...)
	e.assertNothingHeld()
}

// TestAddresses covers --mac-address and network connect --ip of a
// running container. (--ip6 waits for IPv6 networks in package network.)
func TestAddresses(t *testing.T) {
	e := newNetEnv(t)
	e.Must("network", "create", "--subnet", "10.128.0.0/24", "addrnet")
	e.Must("run", "-d", "--name", "a", "--network", "addrnet", "--mac-address", "02:42:0a:80:00:99", img, "sleep", "1000")
	if got := e.Field("a", "{{.NetworkSettings.MacAddress}}"); got != "02:42:0a:80:00:99" {
		t.Errorf("--mac-address: inspect says %q", got)
	}
	link := e.Must("exec", "a", "ip", "addr", "show", "eth0")
	for _, want := range []string{"02:42:0a:80:00:99"} {
		if !strings.Contains(link, want) {
			t.Errorf("eth0 in the container lacks %s:\n%s", want, link)
		}
	}
	e.Must("run", "-d", "--name", "b", img, "sleep", "1000")
	e.Must("network", "connect", "--ip", "10.128.0.77", "addrnet", "b")
	if got := e.Field("b", `{{(index .NetworkSettings.Networks "addrnet").IPAddress}}`); got != "10.128.0.77" {
		t.Errorf("connect --ip: inspect says %q", got)
	}
	if out := e.Must("exec", "b", "ping", "-c", "1", "-W", "2", "a"); !strings.Contains(out, "1 packets received") {
		t.Errorf("b reaches a by name after connect:\n%s", out)
	}
	e.Must("rm", "-f", "a", "b")
	e.Must("network", "rm", "addrnet")
	e.assertNothingHeld()
}
