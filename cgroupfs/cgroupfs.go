// Package cgroupfs manages the cgroup of one container directly through the
// cgroup filesystem: cgroup v2 (unified), v1 (legacy) and the hybrid layout,
// behind one interface. The mode is detected at run time.
package cgroupfs

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs/hostcg"
)

// Mode is the cgroup layout of the host.
type Mode = hostcg.Mode

// The layouts (see hostcg).
const (
	Legacy  = hostcg.Legacy
	Hybrid  = hostcg.Hybrid
	Unified = hostcg.Unified
)

// Stats is a snapshot of a cgroup's usage, as both cgroup versions can report it.
type Stats struct {
	MemoryUsage    uint64 `json:"memory_usage"`
	MemoryLimit    uint64 `json:"memory_limit"` // 0 means unlimited
	MemoryMaxUsage uint64 `json:"memory_max_usage,omitempty"`
	CPUUsageNanos  uint64 `json:"cpu_usage_nanos"`
	CPUUserNanos   uint64 `json:"cpu_user_nanos"`
	CPUSystemNanos uint64 `json:"cpu_system_nanos"`
	PidsCurrent    uint64 `json:"pids_current"`
	PidsLimit      uint64 `json:"pids_limit"` // 0 means unlimited
	IOReadBytes    uint64 `json:"io_read_bytes"`
	IOWriteBytes   uint64 `json:"io_write_bytes"`
	// OOMKills counts processes the kernel's OOM killer ended in the cgroup.
	OOMKills uint64 `json:"oom_kills"`
}

// Manager is the cgroup of one container.
type Manager interface {
	// Apply creates the cgroup (and any missing parents, enabling the
	// controllers it needs on v2) and moves pid into it. With pid <= 0 it
	// only creates the cgroup.
	Apply(pid int) error
	// Enter moves pid into the cgroup, which Apply has made.
	Enter(pid int) error
	// Set writes the resource limits. It may be called again on a running
	// container (berth update).
	Set(r *specs.LinuxResources) error
	// Pids lists the processes in the cgroup (and its descendants).
	Pids() ([]int, error)
	// Stats reads the current usage.
	Stats() (*Stats, error)
	// OOMKills counts the processes the kernel's OOM killer ended in the
	// cgroup: Stats' counter alone, for an exit's one question.
	OOMKills() (uint64, error)
	// Freeze stops every process in the cgroup and waits until frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// KillAll sends sig to every process in the cgroup.
	KillAll(sig int) error
	// Destroy removes the cgroup directories; processes must be gone.
	Destroy() error
	// Path returns the directory of the cgroup for a controller ("" for the
	// unified hierarchy).
	Path(controller string) string
	// Exists reports whether the cgroup directory is there.
	Exists() bool
	// OpenAttach opens what a process about to be started needs to join
	// the cgroup, which Apply has made, without being moved in as a whole
	// (see Attach).
	OpenAttach() (*Attach, error)
}
