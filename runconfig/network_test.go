package runconfig

import (
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/container"
)

func netOpts(t *testing.T, f NetFlags) (*Options, error) {
	t.Helper()
	return FromFlags("img", []string{"true"}, Flags{NetFlags: f}, lookup(nil))
}

func TestParsePublish(t *testing.T) {
	type pb = container.PortBinding
	cases := []struct {
		in   string
		want map[string][]pb
	}{
		{"80", map[string][]pb{"80/tcp": {{}}}},
		{"8080:80", map[string][]pb{"80/tcp": {{HostPort: "8080"}}}},
		{"127.0.0.1:8080:80/udp", map[string][]pb{"80/udp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}},
		{"127.0.0.1::80", map[string][]pb{"80/tcp": {{HostIP: "127.0.0.1"}}}},
		{"[::1]:8080:80", map[string][]pb{"80/tcp": {{HostIP: "::1", HostPort: "8080"}}}},
		{"9000-9002:90-92/UDP", map[string][]pb{"90/udp": {{HostPort: "9000"}}, "91/udp": {{HostPort: "9001"}}, "92/udp": {{HostPort: "9002"}}}},
		{"90-91", map[string][]pb{"90/tcp": {{}}, "91/tcp": {{}}}},
	}
	for _, c := range cases {
		m, err := ParsePublish(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got := map[string][]pb{}
		for p, b := range m {
			got[p.String()] = b
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"", "x", "0", "80/sctp", "1.2.3:80:80", "::1:80:80", "[::1]80:80", "9000-9001:80", "80-79",
		"70000", "a:b:c:d", "8080:", "[fe80::1%eth0]:1:1", "1:2:3:4"} {
		if _, err := ParsePublish(bad); err == nil {
			t.Errorf("-p %q accepted", bad)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("-p %q: error of more than one line: %v", bad, err)
		}
	}
}

func TestNetFlagsRecorded(t *testing.T) {
	o, err := netOpts(t, NetFlags{Network: "appnet", Publish: []string{"8080:80", "127.0.0.1:53:53/udp"}, PublishAll: true,
		Expose: []string{"7000-7001"}, IP: "10.1.0.5", IP6: "fd00::5", MacAddress: "02:42:AC:11:00:02", NetworkAlias: []string{"pg"},
		DNS: []string{"10.0.0.53"}, DNSSearch: []string{"example.com"}, DNSOption: []string{"ndots:2"},
		AddHost: []string{"gw:host-gateway", "db=10.0.0.9", "v6:[::1]"}})
	if err != nil {
		t.Fatal(err)
	}
	h, c := o.Host, o.Config
	if h.NetworkMode != "appnet" || !h.PublishAllPorts || h.PortBindings["80/tcp"][0].HostPort != "8080" || h.PortBindings["53/udp"][0].HostIP != "127.0.0.1" {
		t.Errorf("host config %+v", h)
	}
	for _, p := range []string{"80/tcp", "53/udp", "7000/tcp", "7001/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("ExposedPorts %v lacks %s", c.ExposedPorts, p)
		}
	}
	if !reflect.DeepEqual(h.Dns, []string{"10.0.0.53"}) || !reflect.DeepEqual(h.DnsSearch, []string{"example.com"}) || !reflect.DeepEqual(h.DnsOptions, []string{"ndots:2"}) {
		t.Errorf("dns %q %q %q", h.Dns, h.DnsSearch, h.DnsOptions)
	}
	if want := []string{"gw:host-gateway", "db:10.0.0.9", "v6:::1"}; !reflect.DeepEqual(h.ExtraHosts, want) {
		t.Errorf("ExtraHosts %q, want %q", h.ExtraHosts, want)
	}
	if c.MacAddress != "02:42:ac:11:00:02" {
		t.Errorf("MacAddress %q", c.MacAddress)
	}
	ep := o.Networking.EndpointsConfig["appnet"]
	if ep == nil || !reflect.DeepEqual(ep.Aliases, []string{"pg"}) || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "10.1.0.5" || ep.IPAMConfig.IPv6Address != "fd00::5" {
		t.Errorf("endpoint %+v", ep)
	}
	s := specOf(t, o)
	if !hasNS(s, specs.NetworkNamespace) {
		t.Error("a user network lost the network namespace")
	}

	// The default is Docker's bridge.
	o, err = netOpts(t, NetFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Host.NetworkMode != "bridge" || o.Networking.EndpointsConfig["bridge"] == nil {
		t.Errorf("default network %q %+v", o.Host.NetworkMode, o.Networking)
	}
}

func TestNetFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		f    NetFlags
		want string
	}{
		{NetFlags{Publish: []string{"80:80:80:80"}}, `-p "80:80:80:80"`},
		{NetFlags{IP: "10.0.0.5"}, "user defined networks only"},
		{NetFlags{Network: "bridge", IP6: "fd00::1"}, "user defined networks only"},
		{NetFlags{Network: "none", IP: "10.0.0.5"}, "user defined networks only"},
		{NetFlags{NetworkAlias: []string{"x"}}, "user defined networks only"},
		{NetFlags{Network: "appnet", IP: "fd00::1"}, "--ip"},
		{NetFlags{Network: "container:x", Publish: []string{"80"}}, "port publishing"},
		{NetFlags{Network: "container:x", DNS: []string{"1.1.1.1"}}, "--dns"},
		{NetFlags{Network: "container:x", AddHost: []string{"a:1.2.3.4"}}, "--add-host"},
		{NetFlags{Network: "container:"}, "needs a container"},
		{NetFlags{DNS: []string{"dns.example"}}, "--dns"},
		{NetFlags{AddHost: []string{"a"}}, "--add-host"},
		{NetFlags{AddHost: []string{"a:nothere"}}, "invalid address"},
		{NetFlags{MacAddress: "zz"}, "--mac-address"},
		{NetFlags{MacAddress: "01:00:5e:00:00:01"}, "multicast"},
		{NetFlags{Expose: []string{"80/sctp"}}, "--expose"},
	} {
		_, err := netOpts(t, c.f)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v, want one line with %q", c.f, err, c.want)
		}
	}
	_, err := FromFlags("img", nil, Flags{Hostname: "h", NetFlags: NetFlags{Network: "container:x"}}, lookup(nil))
	if err == nil || !strings.Contains(err.Error(), "--hostname") {
		t.Errorf("--hostname with container: %v", err)
	}
}

func TestApplyImageExposed(t *testing.T) {
	o := opts("true")
	o.Config.ExposedPorts = map[string]struct{}{"80/tcp": {}}
	var img ocispec.ImageConfig
	img.ExposedPorts = map[string]struct{}{"53/udp": {}, "8080": {}}
	ApplyImage(o, img)
	want := map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8080/tcp": {}}
	if !reflect.DeepEqual(o.Config.ExposedPorts, want) {
		t.Errorf("ExposedPorts %v, want %v", o.Config.ExposedPorts, want)
	}
}

// Docker drops -p and -P where there is nothing to publish from.
func TestPublishDroppedOnHostAndNone(t *testing.T) {
	for _, mode := range []string{"host", "none"} {
		o, err := netOpts(t, NetFlags{Network: mode, Publish: []string{"8080:80"}, PublishAll: true})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if len(o.Host.PortBindings) > 0 || o.Host.PublishAllPorts {
			t.Errorf("%s kept %v, -P %v", mode, o.Host.PortBindings, o.Host.PublishAllPorts)
		}
	}
}
