package cgroupfs

import (
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNoCgroup is what None's managers answer to anything that needs a
// cgroup of the container's own.
var ErrNoCgroup = errors.New("the container has no cgroup of its own (--cgroups=disabled)")

// None is the Manager of a container created without a cgroup (berth run
// --cgroups=disabled): its processes stay in the cgroup of whoever started
// them, which berth neither limits, freezes, kills as a whole nor removes.
func None() Manager { return none{} }

type none struct{}

func (none) Apply(int) error                 { return nil }
func (none) Enter(int) error                 { return nil }
func (none) Set(*specs.LinuxResources) error { return ErrNoCgroup }

// Pids is empty: the container's processes share a cgroup with others, so
// no cgroup lists them alone.
func (none) Pids() ([]int, error)         { return nil, nil }
func (none) Stats() (*Stats, error)       { return nil, ErrNoCgroup }
func (none) OOMKills() (uint64, error)    { return 0, nil }
func (none) Freeze() error                { return ErrNoCgroup }
func (none) Thaw() error                  { return ErrNoCgroup }
func (none) Frozen() (bool, error)        { return false, nil }
func (none) KillAll(int) error            { return ErrNoCgroup }
func (none) Destroy() error               { return nil }
func (none) Path(string) string           { return "" }
func (none) Exists() bool                 { return false }
func (none) OpenAttach() (*Attach, error) { return nil, nil }
