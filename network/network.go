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
	"time"

	"github.com/berth-project/berth/netns/etcfiles"
)

var (
	// ErrNotFound is wrapped when a network or container is unknown.
	ErrNotFound = errors.New("not found")
	// ErrInUse is wrapped when a network still has containers attached.
	ErrInUse = errors.New("in use")
)

var errNotImplemented = errors.New("network: not implemented yet")

// Options configure a Manager.
type Options struct {
	DataRoot, StateRoot string // berth's --data-root and --root
	// HostResolvConf is the host's resolv.conf ("" = /etc/resolv.conf,
	// overridden by env BERTH_HOST_RESOLV_CONF for tests);
	// UpstreamResolvConf the systemd-resolved upstream file
	// ("" = /run/systemd/resolve/resolv.conf).
	HostResolvConf, UpstreamResolvConf string
}

// Manager owns the networks under one data root and the endpoints of
// the containers under one state root.
type Manager struct {
	o Options
}

// Open returns a Manager; it is cheap (no netlink, no nftables until
// needed).
func Open(o Options) (*Manager, error) {
	return &Manager{o: o}, nil
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
	Network  string
	Aliases  []string
	IP, IP6  netip.Addr
	MAC      net.HardwareAddr
	PreferIP netip.Addr // the address it had last time
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

// Create makes a network.
func (m *Manager) Create(o CreateOpts) (*Network, error) { return nil, errNotImplemented }

// List returns every network, the default one included.
func (m *Manager) List() ([]*Network, error) { return nil, errNotImplemented }

// Get finds a network by name, full id or unique id prefix.
func (m *Manager) Get(ref string) (*Network, error) { return nil, errNotImplemented }

// Endpoints lists the containers attached to a network now.
func (m *Manager) Endpoints(ref string) ([]Endpoint, error) { return nil, errNotImplemented }

// Remove deletes an unused network.
func (m *Manager) Remove(ref string) error { return errNotImplemented }

// Prune removes unused user networks.
func (m *Manager) Prune() ([]string, error) { return nil, errNotImplemented }

// Reload re-ensures the firewall, every network's rules and every
// endpoint's published ports.
func (m *Manager) Reload() error { return errNotImplemented }

// Setup prepares a container's network.
func (m *Manager) Setup(req Request) (*Result, error) { return nil, errNotImplemented }

// Teardown undoes Setup; idempotent.
func (m *Manager) Teardown(id string) error { return errNotImplemented }

// Connect attaches a set-up container to one more network.
func (m *Manager) Connect(id string, a Attachment) (*Endpoint, error) {
	return nil, errNotImplemented
}

// Disconnect detaches a set-up container from a network.
func (m *Manager) Disconnect(id, network string) error { return errNotImplemented }

// Status is the state of a set-up container; nil, nil when it holds
// nothing.
func (m *Manager) Status(id string) (*Result, error) { return nil, errNotImplemented }

// Reclaim undoes what containers left that are no longer live.
func (m *Manager) Reclaim(live func(id string) bool) error { return errNotImplemented }
