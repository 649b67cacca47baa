package main

import (
	"testing"

	"github.com/berth-project/berth/container"
)

func TestPortsText(t *testing.T) {
	r := &container.Record{State: container.State{Running: true}, NetworkSettings: &container.NetworkSettings{Ports: map[string][]container.PortBinding{
		"80/tcp":   {{HostIP: "0.0.0.0", HostPort: "8080"}},
		"9000/tcp": {{HostIP: "0.0.0.0", HostPort: "9000"}},
		"9001/tcp": {{HostIP: "0.0.0.0", HostPort: "9001"}},
		"9002/tcp": {{HostIP: "0.0.0.0", HostPort: "9002"}},
		"53/udp":   {{HostIP: "127.0.0.1", HostPort: "5353"}},
		"443/tcp":  {{HostIP: "::1", HostPort: "8443"}},
		"81/tcp":   nil,
	}}}
	want := "0.0.0.0:8080->80/tcp, 0.0.0.0:9000-9002->9000-9002/tcp, 127.0.0.1:5353->53/udp, [::1]:8443->443/tcp, 81/tcp"
	if got := portsText(r); got != want {
		t.Errorf("PORTS %q\nwant  %q", got, want)
	}
	r.State.Running = false
	if got := portsText(r); got != "" {
		t.Errorf("PORTS of a stopped container: %q", got)
	}
	if got := hostPortText(container.PortBinding{HostIP: "::", HostPort: "80"}); got != "[::]:80" {
		t.Errorf("hostPortText %q", got)
	}
}
