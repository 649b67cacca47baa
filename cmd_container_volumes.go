package main

import (
	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/volume"
)

// removeVolumes removes the volumes a failed create made.
func removeVolumes(vs *volume.Store, names []string) {
	for _, n := range names {
		if err := vs.Remove(n, true); err != nil {
			logrus.Warnf("remove volume %s: %v", n, err)
		}
	}
}
