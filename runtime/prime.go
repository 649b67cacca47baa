package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-project/berth/cgroupfs"
)

// PrimeCgroupMigration makes the next cgroup v1 migration fast. The first
// write to a cgroup.procs file waits for an RCU grace period (the kernel's
// cgroup_threadgroup_rwsem switches to its writer mode, ~10 ms here), and
// later writes inside the same window do not. Moving berth into the cgroup
// it is already in takes that wait in the background, while the caller
// mounts the root and starts the init; placing the init is then quick.
// It is a no-op migration, so nothing changes if it is late or fails.
// Only the first call in a process does anything.
func PrimeCgroupMigration() {
	primeOnce.Do(primeCgroupMigration)
}

var primeOnce sync.Once

func primeCgroupMigration() {
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		return // v2 clones straight into the cgroup
	}
	go func() {
		hs, err := ownCgroups()
		if err != nil {
			return
		}
		for _, h := range hs {
			if h.controllers != "" && !strings.HasPrefix(h.controllers, "name=") {
				p := filepath.Join(h.mountpoint, h.path, "cgroup.procs")
				_ = os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0)
				return
			}
		}
	}()
}
