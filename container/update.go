package container

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/liveness"
)

// UpdateLimits is `berth update`: change changes the record (HostConfig and
// the stored spec, which the next start uses) and returns the limits to
// apply now to the cgroup of a running container. Under the record's lock,
// the cgroup is changed first and the record saved only when that worked,
// so inspect, the cgroup and a later start agree.
func (s *Store) UpdateLimits(ref string, change func(*Record) (*specs.LinuxResources, error)) (*Record, error) {
	found, err := s.Find(ref)
	if err != nil {
		return nil, err
	}
	r, unlock, err := s.lockLoad(found.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.refreshLocked(r)
	if r.State.Status == StatusRemoving {
		return nil, fmt.Errorf("container %s is being removed", r.Name)
	}
	if r.Spec == nil || r.Spec.Linux == nil {
		return nil, errors.New("container has no linux spec")
	}
	live, err := change(r)
	if err != nil {
		return nil, err
	}
	if live != nil && r.State.Running && liveness.Alive(r.State.Pid, r.PidStart) && s.rt.Exists(r.ID) {
		if err := s.rt.Update(r.ID, live); err != nil {
			return nil, fmt.Errorf("update container %s: %w", r.Name, err)
		}
	}
	if err := s.Save(r); err != nil {
		return nil, err
	}
	s.emit(r, "update")
	return r, nil
}
