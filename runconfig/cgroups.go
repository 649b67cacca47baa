package runconfig

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
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
		if h.CgroupParent != "" {
			h.Cgroups = "enabled"
			return "", nil
		}
		if !InUnit() {
			// Left unset: the default is settled anew at each start
			// (StartCgroups), which may be in a unit.
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

// StartCgroups settles where a start of the existing container id
// (berth start) puts its cgroup, for the same reason as ResolveCgroups:
// with --cgroups=split and by default, beside the berth that starts it
// now, inside its systemd unit, and not where an earlier start put it
// (the cgroup of a unit that may be gone); by default outside a unit,
// berth's own default place. path is the spec's new
// linux.cgroupsPath ("": keep the stored one); for split, the caller
// records splitParent as the cgroup parent and moves itself out of it
// (cgroupfs.MoveSelf) before it starts anything.
func StartCgroups(h container.HostConfig, id string) (path, splitParent string, err error) {
	switch {
	case h.Cgroups == "split":
		h.CgroupParent = ""
	case h.Cgroups == "" && h.CgroupParent == "":
	default:
		// enabled, disabled, or a --cgroup-parent of the user's.
		return "", "", nil
	}
	o := &Options{Host: h}
	if splitParent, err = ResolveCgroups(o); err != nil {
		return "", "", err
	}
	if path, err = cgroupsPath(o.Host.CgroupParent, id); err != nil {
		return "", "", err
	}
	return path, splitParent, nil
}
