// Package network is berth's networks and a container's endpoints on them:
// the use cases (create a network, set up and tear down a container's
// network, publish ports, keep peers' /etc/hosts current) over the
// primitives in netns/{nsfile,ipam,link,nft,etcfiles}. It knows nothing
// of containers beyond their id and name; the engine calls it.
package network

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-project/berth/netns/etcfiles"
)

var (
	// ErrNotFound is wrapped when a network or container is unknown.
	ErrNotFound = errors.New("not found")
	// ErrInUse is wrapped when a network still has containers attached.
	ErrInUse = errors.New("in use")
)

// Options configure a Manager.
type Options struct {
	DataRoot, StateRoot string // berth's --data-root and --root
	// HostResolvConf is the host's resolv.conf ("" = /etc/resolv.conf,
	// overridden by env BERTH_HOST_RESOLV_CONF for tests);
	// UpstreamResolvConf the systemd-resolved upstream file
	// ("" = /run/systemd/resolve/resolv.conf).
	HostResolvConf, UpstreamResolvConf string
	// HostNetns is the namespace file that plays the host ("" = the
	// caller's own namespace); tests run a whole berth network stack in
	// a namespace of their own this way.
	HostNetns string
}

// Manager owns the networks under one data root and the endpoints of
// the containers under one state root.
type Manager struct {
	o Options
	// dirs
	netDir, ipamDir, epDir, nsDir, filesDir string
}

// Open returns a Manager; it is cheap (no netlink, no nftables until
// needed).
func Open(o Options) (*Manager, error) {
	if o.DataRoot == "" || o.StateRoot == "" {
		return nil, errors.New("network: data root and state root are required")
	}
	if o.HostResolvConf == "" {
		o.HostResolvConf = os.Getenv("BERTH_HOST_RESOLV_CONF")
	}
	if o.HostResolvConf == "" {
		o.HostResolvConf = "/etc/resolv.conf"
	}
	if o.UpstreamResolvConf == "" {
		o.UpstreamResolvConf = "/run/systemd/resolve/resolv.conf"
	}
	m := &Manager{
		o:        o,
		netDir:   filepath.Join(o.DataRoot, "networks"),
		ipamDir:  filepath.Join(o.DataRoot, "networks", "ipam"),
		epDir:    filepath.Join(o.StateRoot, "endpoints"),
		nsDir:    filepath.Join(o.StateRoot, "netns"),
		filesDir: filepath.Join(o.StateRoot, "netfiles"),
	}
	return m, nil
}

// Network is a network definition, stored as JSON under
// <DataRoot>/networks/<id>.json.
type Network struct {
	ID, Name, Driver string // Driver "bridge"
	Bridge           string // device name, "berth0" for the default, "br-<id12>" for user networks
	Subnet           netip.Prefix
	Gateway          netip.Addr
	IPRange          netip.Prefix // optional
	IPv6             bool
	Subnet6          netip.Prefix
	Gateway6         netip.Addr
	Internal         bool
	MTU              int
	Labels           map[string]string
	Created          time.Time
	Default          bool // the "bridge" network: no name resolution, no --ip, no aliases
}

// CreateOpts is what `network create` asks for.
type CreateOpts struct {
	Name                                        string
	Subnet, Gateway, IPRange, Subnet6, Gateway6 string
	IPv6, Internal                              bool
	MTU                                         int
	Labels                                      map[string]string
}

// Request is a container's network request, built by the engine at each
// start.
type Request struct {
	ID, Name             string
	Mode                 string // "none", "host", "container" (see Join) or "bridge"
	Join                 string // Mode "container": the other container's id
	Hostname, Domainname string
	Networks             []Attachment // Mode "bridge": first gets the default route; empty = [{Network:"bridge"}]
	Ports                []PortBinding
	DNS                  etcfiles.DNS
	ExtraHosts           []string // "name:addr" or "name:host-gateway"
}

// Attachment is one network a container joins.
type Attachment struct {
	Network string
	Aliases []string
	IP, IP6 netip.Addr
	MAC     net.HardwareAddr
	// PreferIP and PreferIP6 are the addresses it had last time.
	PreferIP, PreferIP6 netip.Addr
}

// PortBinding is one published port; HostPort 0 is ephemeral.
type PortBinding struct {
	Proto    string
	HostIP   netip.Addr
	HostPort uint16
	Port     uint16
}

// Result is what the engine needs to start the container.
type Result struct {
	// Netns is the namespace file to join; "" with Mode "none" means a
	// fresh namespace, "" with Mode "host" the host's.
	Netns string
	// Files maps container paths to host files to bind-mount.
	Files map[string]string
	// Held are sockets bound on the published host ports, kept open by
	// the container's owner for the container's life.
	Held      []*os.File
	Endpoints []Endpoint
	Ports     []PortBinding // as published, ephemeral ports filled in
	Warnings  []string
}

// Endpoint is a container's attachment to one network.
type Endpoint struct {
	Network, ContainerID, ContainerName string
	Aliases                             []string
	IP                                  netip.Prefix
	Gateway                             netip.Addr
	IP6                                 netip.Prefix
	Gateway6                            netip.Addr
	MAC                                 net.HardwareAddr
	HostVeth                            string
}
