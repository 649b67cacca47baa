package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/netns/etcfiles"
)

// hostsOf is the content of st's /etc/hosts: its own names, its
// --add-host entries and, on user networks, the other containers there
// (the default network has no name resolution, as in Docker).
func hostsOf(st *epState, states []*epState) []byte {
	c := etcfiles.HostsConfig{Hostname: st.Hostname, Domainname: st.Domainname, Extra: st.Extra}
	for _, a := range st.Attach {
		if !a.IP.IsValid() || a.Leaving {
			continue
		}
		c.Addrs = append(c.Addrs, a.IP.Addr())
		if a.Default {
			continue
		}
		c.Aliases = appendNew(c.Aliases, a.Aliases...)
		for _, o := range states {
			if o.ID == st.ID {
				continue
			}
			for _, b := range o.Attach {
				if b.NetworkID != a.NetworkID || !b.IP.IsValid() || b.Leaving {
					continue
				}
				var names []string
				if o.Name != "" {
					names = append(names, o.Name)
				}
				names = appendNew(names, b.Aliases...)
				c.Peers = append(c.Peers, etcfiles.Host{Addr: b.IP.Addr(), Names: names})
				if b.IP6.IsValid() {
					c.Peers = append(c.Peers, etcfiles.Host{Addr: b.IP6.Addr(), Names: names})
				}
			}
		}
	}
	if len(c.Addrs) > 1 {
		c.Addrs = c.Addrs[:1]
	}
	// Its own IPv6 address too, from the first network that has one.
	for _, a := range st.Attach {
		if a.IP6.IsValid() && !a.Leaving {
			c.Addrs = append(c.Addrs, a.IP6.Addr())
			break
		}
	}
	return etcfiles.Hosts(c)
}

func appendNew(to []string, names ...string) []string {
	for _, n := range names {
		dup := false
		for _, x := range to {
			dup = dup || x == n
		}
		if !dup {
			to = append(to, n)
		}
	}
	return to
}

// writeFiles makes st's /etc/hostname and /etc/resolv.conf (the hosts
// file is written by joinHosts, under the networks' locks).
func (m *Manager) writeFiles(st *epState, dns etcfiles.DNS) ([]string, error) {
	if err := os.MkdirAll(st.Files, 0o700); err != nil {
		return nil, fmt.Errorf("network files: %w", err)
	}
	host, err := os.ReadFile(m.o.HostResolvConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("host resolv.conf: %w", err)
	}
	up, err := os.ReadFile(m.o.UpstreamResolvConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("upstream resolv.conf: %w", err)
	}
	reach := etcfiles.Routed
	switch st.Mode {
	case "host":
		reach = etcfiles.HostNet
	case "none":
		reach = etcfiles.NoNet
	}
	resolv, warnings := etcfiles.ResolvConf(host, up, reach, dns)
	for name, data := range map[string][]byte{"hostname": etcfiles.Hostname(st.Hostname), "resolv.conf": resolv} {
		if err := os.WriteFile(filepath.Join(st.Files, name), data, 0o644); err != nil {
			return nil, fmt.Errorf("network files: %w", err)
		}
	}
	return warnings, nil
}

// userNets are the ids of st's user networks (those with name
// resolution).
func userNets(atts []epNet) []string {
	var ids []string
	for _, a := range atts {
		if !a.Default {
			ids = append(ids, a.NetworkID)
		}
	}
	return ids
}

// joinHosts writes st's own /etc/hosts and rewrites those of its peers,
// under the locks of its user networks.
func (m *Manager) joinHosts(st *epState) error {
	unlock, err := m.lockNets(userNets(st.Attach))
	if err != nil {
		return err
	}
	defer unlock()
	states, err := m.peerStates(st)
	if err != nil {
		return err
	}
	if st.Files != "" {
		path := filepath.Join(st.Files, "hosts")
		data := hostsOf(st, states)
		if err := etcfiles.Rewrite(path, data); errors.Is(err, os.ErrNotExist) {
			err = os.WriteFile(path, data, 0o644)
			if err != nil {
				return fmt.Errorf("network files: %w", err)
			}
		} else if err != nil {
			return err
		}
	}
	return m.rewritePeers(st, st.Attach, states)
}

// leaveHosts marks atts of st as leaving (already set by the caller),
// saves that, and rewrites the peers' /etc/hosts without st, under the
// locks of those networks.
func (m *Manager) leaveHosts(st *epState, atts []epNet) error {
	unlock, err := m.lockNets(userNets(atts))
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.saveState(st); err != nil {
		return err
	}
	states, err := m.peerStates(st)
	if err != nil {
		return err
	}
	if st.Files != "" && st.Mode == "bridge" {
		if err := etcfiles.Rewrite(filepath.Join(st.Files, "hosts"), hostsOf(st, states)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return m.rewritePeers(st, atts, states)
}

// peerStates is every container's state when st is on a user network
// (its own /etc/hosts and its peers' name each other), and nil
// otherwise: with --network none or the default network alone, hostsOf
// and rewritePeers read no other state, and reading them all would make
// each start and teardown slower with every container there is.
func (m *Manager) peerStates(st *epState) ([]*epState, error) {
	if len(userNets(st.Attach)) == 0 {
		return nil, nil
	}
	return m.states()
}

// rewritePeers rewrites, in place, the /etc/hosts of every other
// container on the user networks among atts.
func (m *Manager) rewritePeers(st *epState, atts []epNet, states []*epState) error {
	on := map[string]bool{}
	for _, id := range userNets(atts) {
		on[id] = true
	}
	for _, o := range states {
		if o.ID == st.ID || o.Files == "" {
			continue
		}
		peer := false
		for _, b := range o.Attach {
			peer = peer || on[b.NetworkID]
		}
		if !peer {
			continue
		}
		// A peer still setting up has no file yet: it writes its own
		// under the same lock.
		if err := etcfiles.Rewrite(filepath.Join(o.Files, "hosts"), hostsOf(o, states)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
