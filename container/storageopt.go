package container

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/internal/projquota"
)

// limitStorage applies --storage-opt size to the new, empty container
// directory dir, which will hold its upper and work directories: a
// project quota, where the data root's filesystem has them.
func limitStorage(dir string, r *Record) error {
	v, ok := r.HostConfig.StorageOpt["size"]
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return fmt.Errorf("--storage-opt size: invalid size %q", v)
	}
	if err := projquota.Enforceable(dir); err != nil {
		if errors.Is(err, projquota.ErrUnsupported) || errors.Is(err, projquota.ErrExempt) {
			return fmt.Errorf("--storage-opt size: not supported on the data root's filesystem: %w", err)
		}
		return fmt.Errorf("--storage-opt size: %w", err)
	}
	if err := projquota.Limit(dir, r.ID, n); err != nil {
		return fmt.Errorf("--storage-opt size: %w", err)
	}
	return nil
}

// unlimitStorage drops the quota of a container being removed.
func unlimitStorage(dir string, r *Record) {
	if _, ok := r.HostConfig.StorageOpt["size"]; !ok {
		return
	}
	if err := projquota.Clear(dir); err != nil {
		logrus.Warnf("container %s: %v", r.Name, err)
	}
}
