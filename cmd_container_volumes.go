package main

import (
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/volume"
)

// attachVolumes gives the container store the volume store, and the
// volume store a way to see which containers use a volume.
func attachVolumes(c *cli.Context, s *container.Store) error {
	vs, err := volume.Open(c.String("data-root"))
	if err != nil {
		return err
	}
	vs.InUse = s.VolumeUsers
	s.Volumes = vs
	s.CopyUp = volume.CopyUp
	return nil
}

// volumeTracker creates volumes for a new container and remembers which it
// made, so a failed create leaves none behind.
type volumeTracker struct {
	vs      *volume.Store
	created []string
}

func newVolumeTracker(s *container.Store) *volumeTracker {
	vs, _ := s.Volumes.(*volume.Store)
	return &volumeTracker{vs: vs}
}

func (t *volumeTracker) Ensure(name string) (string, string, bool, error) {
	n, p, created, err := t.vs.Ensure(name)
	if err == nil && created {
		t.created = append(t.created, n)
	}
	return n, p, created, err
}

func (t *volumeTracker) undo() {
	for _, n := range t.created {
		if err := t.vs.Remove(n, true); err != nil {
			logrus.Warnf("remove volume %s: %v", n, err)
		}
	}
}

type volumeUse struct {
	Name  string
	Size  int64
	InUse bool
}

// volumeUsage is each volume's size and whether a container uses it.
func volumeUsage(s *container.Store) ([]volumeUse, error) {
	vs, _ := s.Volumes.(*volume.Store)
	vols, err := vs.List()
	if err != nil {
		return nil, err
	}
	var out []volumeUse
	for _, v := range vols {
		size, _ := vs.Size(v.Name)
		users, _ := s.VolumeUsers(v.Name)
		out = append(out, volumeUse{Name: v.Name, Size: size, InUse: len(users) > 0})
	}
	return out, nil
}

// pruneVolumes removes unused anonymous volumes.
func pruneVolumes(s *container.Store) ([]string, int64, error) {
	vs, _ := s.Volumes.(*volume.Store)
	return vs.Prune(false)
}
