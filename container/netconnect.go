package container

import (
	"errors"
	"fmt"

	"github.com/berth-project/berth/network"
)

// ReclaimNetwork makes every lost exit known (which tears its network
// down) and has the network manager reclaim what containers left that no
// longer exist or whose owner died: prune's part after a kill -9.
func (s *Store) ReclaimNetwork() error {
	if s.net == nil {
		return nil
	}
	if _, err := s.List(); err != nil { // List refreshes: lost exits are recorded and torn down
		return err
	}
	return s.net.Reclaim(s.netLive)
}

// PruneNetworks removes the user networks no container uses, as Docker's
// network prune: attached to none (after what dead containers held was
// reclaimed) and named by no container's record, stopped ones included.
func (s *Store) PruneNetworks() ([]string, error) {
	if s.net == nil {
		return nil, nil
	}
	if err := s.ReclaimNetwork(); err != nil {
		return nil, err
	}
	recs, err := s.List()
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, r := range recs {
		named[r.HostConfig.NetworkMode] = true
		if r.NetworkingConfig != nil {
			for n := range r.NetworkingConfig.EndpointsConfig {
				named[n] = true
			}
		}
	}
	nets, err := s.net.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range nets {
		if n.Default || named[n.Name] || named[n.ID] {
			continue
		}
		if err := s.net.Remove(n.ID); err != nil {
			if errors.Is(err, network.ErrInUse) || errors.Is(err, network.ErrNotFound) {
				continue
			}
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}

// netLive says whether container id may still hold network resources: its
// record exists and it runs (or its owner is about to restart it).
func (s *Store) netLive(id string) bool {
	r, err := s.Load(id)
	if err != nil {
		return !errors.Is(err, ErrNotFound)
	}
	if s.Busy(id) {
		return true // being created or started right now
	}
	s.refreshLocked(r)
	return r.State.Running || r.State.Restarting
}

// Connect attaches a container to a network: recorded for its next
// starts, and at once when it runs.
func (s *Store) Connect(ref, netRef string, ep EndpointSettings) error {
	if s.net == nil {
		return ErrNoNetworking
	}
	r, err := s.Find(ref)
	if err != nil {
		return err
	}
	if netKind(r.HostConfig.NetworkMode) != "bridge" {
		return fmt.Errorf("container %s: cannot connect a container with network mode %s to a network", r.Name, r.HostConfig.NetworkMode)
	}
	n, err := s.net.Get(netRef)
	if err != nil {
		return err
	}
	if n.Default && (ep.IPAMConfig != nil || len(ep.Aliases) > 0) {
		return errors.New("user specified IP address and network-scoped aliases are supported on user defined networks only")
	}
	if err := checkIPAM(n, ep.IPAMConfig); err != nil {
		return err
	}
	unlock, err := s.Lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if r, err = s.Load(r.ID); err != nil {
		return err
	}
	if r.NetworkingConfig == nil {
		r.NetworkingConfig = &NetworkingConfig{}
	}
	if r.NetworkingConfig.EndpointsConfig == nil {
		r.NetworkingConfig.EndpointsConfig = map[string]*EndpointSettings{}
	}
	if _, dup := r.NetworkingConfig.EndpointsConfig[n.Name]; dup || r.HostConfig.NetworkMode == n.Name {
		return fmt.Errorf("container %s is already connected to network %s", r.Name, n.Name)
	}
	s.refreshLocked(r)
	if r.State.Running {
		a, err := attachment(r, n.Name, &ep)
		if err != nil {
			return err
		}
		got, err := s.net.Connect(r.ID, a)
		if err != nil {
			return err
		}
		if r.NetworkSettings == nil {
			r.NetworkSettings = &NetworkSettings{}
		}
		s.addEndpoint(r, r.NetworkSettings, *got, &ep, false)
	}
	cp := ep
	r.NetworkingConfig.EndpointsConfig[n.Name] = &cp
	return s.Save(r)
}

// Disconnect detaches a container from a network, at once when it runs
// and for its next starts.
func (s *Store) Disconnect(ref, netRef string) error {
	if s.net == nil {
		return ErrNoNetworking
	}
	r, err := s.Find(ref)
	if err != nil {
		return err
	}
	n, err := s.net.Get(netRef)
	if err != nil {
		return err
	}
	unlock, err := s.Lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if r, err = s.Load(r.ID); err != nil {
		return err
	}
	asked := false
	if r.NetworkingConfig != nil {
		_, asked = r.NetworkingConfig.EndpointsConfig[n.Name]
	}
	if r.HostConfig.NetworkMode == n.Name {
		return fmt.Errorf("container %s: cannot disconnect it from %s, the network it was created on", r.Name, n.Name)
	}
	if !asked {
		return fmt.Errorf("container %s is not connected to network %s", r.Name, n.Name)
	}
	s.refreshLocked(r)
	if r.State.Running {
		if err := s.net.Disconnect(r.ID, n.Name); err != nil {
			return err
		}
	}
	delete(r.NetworkingConfig.EndpointsConfig, n.Name)
	if r.NetworkSettings != nil {
		delete(r.NetworkSettings.Networks, n.Name)
	}
	delete(r.LastIPs, n.Name)
	delete(r.LastIPs6, n.Name)
	return s.Save(r)
}
