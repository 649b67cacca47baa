package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/state"
)

// Busy reports whether a live berth holds the container it created (see
// Create): it is being created or started right now, or run in the
// foreground.
func (s *Store) Busy(id string) bool { return state.HeldBy(s.Dir(id)) }

// isContainerID is the shape of the ids berth gives its containers.
func isContainerID(name string) bool { return len(name) == 64 && isHex(name) }

// RemoveAbandoned removes what a berth killed while creating or starting
// a container left half-made, and no live berth is working on: a
// container directory without its record, and the runtime's state
// directory without its record, with the cgroup and any process in it.
// With ref (a full id or a prefix of one) only that container's. It
// returns the ids it removed something of.
func (s *Store) RemoveAbandoned(ref string) ([]string, error) {
	match := func(name string) bool {
		return isContainerID(name) && (ref == "" || strings.HasPrefix(name, ref))
	}
	if ref != "" {
		// As with Find, a prefix must name one container.
		seen := map[string]bool{}
		for _, dir := range []string{filepath.Join(s.DataRoot, "containers"), s.StateRoot} {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if match(e.Name()) {
					seen[e.Name()] = true
				}
			}
		}
		if len(seen) > 1 {
			return nil, fmt.Errorf("multiple containers match %q", ref)
		}
	}
	removed := map[string]bool{}
	var errs []error
	dirs, err := state.FindAbandoned(filepath.Join(s.DataRoot, "containers"), func(name string) bool {
		if !match(name) {
			return false
		}
		_, err := os.Stat(s.recordPath(name))
		return errors.Is(err, os.ErrNotExist)
	})
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		// Its runtime state, when its start was under way.
		s.teardown(d.Name)
		if err := os.RemoveAll(s.Dir(d.Name)); err != nil {
			errs = append(errs, fmt.Errorf("remove half-made container %.12s: %w", d.Name, err))
		} else {
			removed[d.Name] = true
		}
		d.Unlock()
	}
	states, err := state.FindAbandoned(s.StateRoot, func(name string) bool {
		return match(name) && s.rt.HalfMade(name)
	})
	if err != nil {
		return nil, err
	}
	for _, d := range states {
		// The runtime's delete takes this lock itself. Nobody can create
		// this directory meanwhile: it exists.
		d.Unlock()
		if err := s.rt.Delete(d.Name, true); err != nil && !errors.Is(err, state.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove half-made state of %.12s: %w", d.Name, err))
			continue
		}
		// What the start set up beyond the runtime (its network).
		s.runHooks(d.Name)
		removed[d.Name] = true
	}
	var ids []string
	for id := range removed {
		logrus.Debugf("removed half-made container %.12s", id)
		ids = append(ids, id)
	}
	return ids, errors.Join(errs...)
}
