package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/lockfile"
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
	return m.writeHosts(st, st.Attach, true)
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
	return m.writeHosts(st, atts, false)
}

// writeHosts writes st's own /etc/hosts (made when join is set, else
// only rewritten, and only on a bridge) and those of its peers on the
// user networks among atts. Two containers on different networks can
// share a peer, and the networks' locks do not order their writes to
// that peer's file; so the files are written under their containers'
// hosts locks (see lockHosts), from the states read once those are held:
// the last writer has every state saved before it, and a container
// saved after it writes the files again itself.
func (m *Manager) writeHosts(st *epState, atts []epNet, join bool) error {
	states, err := m.peerStates(st)
	if err != nil {
		return err
	}
	self := st.Files != "" && (join || st.Mode == "bridge")
	var files []string
	if self {
		files = append(files, st.Files)
	}
	for _, o := range peersOn(st, atts, states) {
		files = append(files, o.Files)
	}
	// Only containers on a user network write each other's files: off
	// one, st's own file is st's alone, and needs no lock.
	if len(userNets(st.Attach)) > 0 {
		release, err := m.lockHosts(files)
		if err != nil {
			return err
		}
		defer release()
		if states, err = m.peerStates(st); err != nil {
			return err
		}
	}
	locked := map[string]bool{}
	for _, f := range files {
		locked[f] = true
	}
	if self {
		path := filepath.Join(st.Files, "hosts")
		data := hostsOf(st, states)
		switch err := etcfiles.Rewrite(path, data); {
		case err == nil:
		case errors.Is(err, os.ErrNotExist) && join:
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return fmt.Errorf("network files: %w", err)
			}
		case errors.Is(err, os.ErrNotExist):
			// Leaving, and its files already gone.
		default:
			return err
		}
	}
	for _, o := range peersOn(st, atts, states) {
		if !locked[o.Files] {
			// On the network since the first look: it writes its own
			// file and this one's, after this.
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

// peerStates is every container's state when st is on a user network
// (its own /etc/hosts and its peers' name each other), and nil
// otherwise: with --network none or the default network alone, hostsOf
// and peersOn read no other state, and reading them all would make
// each start and teardown slower with every container there is.
func (m *Manager) peerStates(st *epState) ([]*epState, error) {
	if len(userNets(st.Attach)) == 0 {
		return nil, nil
	}
	return m.states()
}

// peersOn are the other containers among states, with files, on the user
// networks among atts.
func peersOn(st *epState, atts []epNet, states []*epState) []*epState {
	on := map[string]bool{}
	for _, id := range userNets(atts) {
		on[id] = true
	}
	var peers []*epState
	for _, o := range states {
		if o.ID == st.ID || o.Files == "" {
			continue
		}
		for _, b := range o.Attach {
			if on[b.NetworkID] {
				peers = append(peers, o)
				break
			}
		}
	}
	return peers
}

// lockHosts takes the hosts locks of the containers whose files
// directories are dirs, in their order by name, and returns their
// release. A hosts lock is a flock on the directory, which the container
// does not see (only the files in it are mounted into it); it is taken
// last, under the networks' locks, and nothing else is taken while it is
// held, so sorted it cannot deadlock. A directory gone (its container
// torn down) has nothing to lock.
func (m *Manager) lockHosts(dirs []string) (release func(), err error) {
	dirs = slices.Clone(dirs)
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	var held []*os.File
	release = func() {
		for _, f := range held {
			f.Close()
		}
	}
	for _, d := range dirs {
		f, err := lockfile.OpenDir(d, unix.LOCK_EX)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, f)
	}
	return release, nil
}
