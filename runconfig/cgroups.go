package runconfig

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/berth-project/berth/cgroupfs"
)

// InUnit says whether berth runs as (part of) a systemd unit: systemd sets
// INVOCATION_ID for a unit's processes, and the process's cgroup is the
// unit's.
// The answer is settled at the first call, before berth moves itself to
// a leaf of the unit's cgroup (--cgroups=split).
var InUnit = sync.OnceValue(func() bool {
	if os.Getenv("INVOCATION_ID") == "" {
		return false
	}
	own, err := cgroupfs.Own()
	return err == nil && cgroupfs.IsUnitCgroup(own)
})

// ResolveCgroups settles --cgroups. The default is split inside a systemd
// unit, so that the container stays in the unit (systemd then tracks,
// stops and accounts it, and takes its notify messages and output for the
// unit's), and enabled elsewhere. For split it sets the cgroup parent to
// berth's own cgroup and returns it: the caller moves itself out of it
// (cgroupfs.MoveSelf) before it starts anything there.
func ResolveCgroups(o *Options) (splitParent string, err error) {
	h := &o.Host
	switch h.Cgroups {
	case "":
		if h.CgroupParent != "" || !InUnit() {
			h.Cgroups = "enabled"
			return "", nil
		}
		h.Cgroups = "split"
	case "enabled":
		return "", nil
	case "disabled":
		// podman's meaning: no cgroup of the container's own, so nothing
		// can limit it apart from the caller's cgroup.
		if h.CgroupParent != "" {
			return "", errors.New("--cgroups=disabled creates no cgroup: it conflicts with --cgroup-parent")
		}
		if hasLimits(o) {
			return "", errors.New("--cgroups=disabled creates no cgroup, so the container's resource limits cannot be set: drop them or use --cgroups=enabled")
		}
		return "", nil
	case "split":
		if h.CgroupParent != "" {
			return "", errors.New("--cgroups=split puts the container under berth's own cgroup: it conflicts with --cgroup-parent")
		}
	default:
		return "", fmt.Errorf("--cgroups %q: want enabled, split or disabled", h.Cgroups)
	}
	own, err := cgroupfs.Own()
	if err != nil {
		return "", fmt.Errorf("--cgroups=split: %w", err)
	}
	if own == "/" {
		return "", errors.New("--cgroups=split: berth runs in the root cgroup; there is nothing to split")
	}
	if !cgroupfs.Delegated(own) && hasLimits(o) {
		return "", fmt.Errorf("--cgroups=split: systemd did not delegate %s (Delegate=yes), so the container's limits cannot be set there: set them on the unit (MemoryMax=, CPUQuota=, TasksMax=) or add Delegate=yes", own)
	}
	h.CgroupParent = own
	return own, nil
}

// hasLimits says whether the container asks for cgroup limits of its own.
func hasLimits(o *Options) bool {
	h := &o.Host
	return h.Memory != 0 || h.MemoryReservation != 0 || h.MemorySwap != 0 || h.NanoCpus != 0 ||
		h.CpuShares != 0 || h.CpusetCpus != "" || h.PidsLimit != nil || len(h.BlkioDeviceReadBps) > 0 ||
		len(h.BlkioDeviceWriteBps) > 0 || len(h.BlkioDeviceReadIOps) > 0 || len(h.BlkioDeviceWriteIOps) > 0
}
