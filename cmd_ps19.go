package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

// portFilter is ps's publish= or expose= value: PORT[-END][/PROTO], tcp
// when no protocol is given, as Docker.
type portFilter struct {
	lo, hi int
	proto  string
}

func parsePortFilter(key, v string) (portFilter, error) {
	ports, proto, hasProto := strings.Cut(v, "/")
	if !hasProto {
		proto = "tcp"
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	a, err1 := strconv.Atoi(lo)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || b < a || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return portFilter{}, fmt.Errorf("--filter %s=%s: want PORT[-END][/tcp|udp|sctp]", key, v)
	}
	return portFilter{lo: a, hi: b, proto: proto}, nil
}

// matches tells whether a "PORT/PROTO" key is in the filter's range.
func (f portFilter) matches(key string) bool {
	n, proto, _ := strings.Cut(key, "/")
	p, err := strconv.Atoi(n)
	return err == nil && proto == f.proto && p >= f.lo && p <= f.hi
}

// matchPorts is ps's publish= (a container port published on the host)
// and expose= (a port the container exposes, published or not).
func matchPorts(r *container.Record, key, v string) (bool, error) {
	f, err := parsePortFilter(key, v)
	if err != nil {
		return false, err
	}
	var keys []string
	if key == "expose" {
		for k := range r.Config.ExposedPorts {
			keys = append(keys, k)
		}
	} else {
		for k, b := range r.HostConfig.PortBindings {
			if len(b) > 0 {
				keys = append(keys, k)
			}
		}
		if r.NetworkSettings != nil {
			// -P's ports get their host ports at the start.
			for k, b := range r.NetworkSettings.Ports {
				if len(b) > 0 {
					keys = append(keys, k)
				}
			}
		}
	}
	for _, k := range keys {
		if f.matches(k) {
			return true, nil
		}
	}
	return false, nil
}

// onNetwork tells whether r is on network name (its mode or one it was
// connected to).
func onNetwork(r *container.Record, name string) bool {
	for _, n := range strings.Split(networksText(r), ",") {
		if n == name {
			return true
		}
	}
	return false
}

// sizeText is ps -s's SIZE: the container's changes and, as "virtual",
// those plus its image.
func sizeText(rw, image int64) string {
	return fmt.Sprintf("%s (virtual %s)", units.HumanSize(rw), units.HumanSize(rw+image))
}
