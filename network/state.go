package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/netns/etcfiles"
)

// epState is what a container holds, persisted under
// <StateRoot>/endpoints/<id>.json before each thing is made, so that
// Teardown after a crash at any point finds and removes it.
type epState struct {
	ID, Name   string
	Mode       string
	Join       string // Mode "container"
	Netns      string // the namespace file this container made
	Files      string // the directory of its /etc files ("" for Mode "container")
	Hostname   string
	Domainname string
	Extra      []etcfiles.Host
	Attach     []epNet
	Ports      []PortBinding // published (HostPort filled in), to the first network's address
}

// epNet is one attachment. NetworkID and HostVeth are recorded before
// the lease and the veth are made; IP once the lease is held.
type epNet struct {
	NetworkID, Network, Bridge string
	Default                    bool
	Aliases                    []string
	IP                         netip.Prefix
	Gateway                    netip.Addr
	IP6                        netip.Prefix // on a dual-stack network
	Gateway6                   netip.Addr
	MAC                        string
	HostVeth, IfName           string
	// Leaving is set, and saved, before the attachment is undone: the
	// peers' hosts no longer list it.
	Leaving bool
}

func (a epNet) endpoint(st *epState) Endpoint {
	mac, _ := net.ParseMAC(a.MAC)
	return Endpoint{Network: a.Network, ContainerID: st.ID, ContainerName: st.Name, Aliases: a.Aliases,
		IP: a.IP, Gateway: a.Gateway, IP6: a.IP6, Gateway6: a.Gateway6, MAC: mac, HostVeth: a.HostVeth}
}

func (st *epState) label() string {
	if st.Name != "" {
		return st.Name
	}
	return st.ID
}

func (m *Manager) statePath(id string) string { return filepath.Join(m.epDir, id+".json") }

func validID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\x00") || id[0] == '.' {
		return fmt.Errorf("invalid container id %q", id)
	}
	return nil
}

func (m *Manager) saveState(st *epState) error {
	if err := os.MkdirAll(m.epDir, 0o700); err != nil {
		return fmt.Errorf("endpoint dir: %w", err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.Write(m.statePath(st.ID), data, 0o600)
}

// loadState returns nil, nil when id holds nothing.
func (m *Manager) loadState(id string) (*epState, error) {
	data, err := os.ReadFile(m.statePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read endpoint state: %w", err)
	}
	var st epState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("endpoint state of %s: %w", id, err)
	}
	return &st, nil
}

// states reads every container's state.
func (m *Manager) states() ([]*epState, error) {
	ents, err := os.ReadDir(m.epDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	var out []*epState
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		st, err := m.loadState(id)
		if err != nil {
			return nil, err
		}
		if st != nil {
			out = append(out, st)
		}
	}
	return out, nil
}
