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
	return nil
}

// removeVolumes removes the volumes a failed create made.
func removeVolumes(vs *volume.Store, names []string) {
	for _, n := range names {
		if err := vs.Remove(n, true); err != nil {
			logrus.Warnf("remove volume %s: %v", n, err)
		}
	}
}
