package container

import (
	"io"
	"os"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/overlay"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/state"
)

// Deps are what the engine is built on, each behind the few methods it
// calls, so that a test can give it fakes.
type Deps struct {
	Images  Images
	Volumes Volumes
	Runtime Runtime
	// Mounter mounts a container's root; nil is the overlay.
	Mounter Mounter
	// Network sets up a container's network at each start; New adds it to
	// Hooks, so the one teardown undoes it. Without it only the modes none
	// and host work (and containers get no /etc files).
	Network Network
	// Hooks undo, in the one teardown, what else a container's start set
	// up.
	Hooks []TeardownHook
}

// TeardownHook releases what a container's run held beyond its root and
// runtime state. Teardown must do nothing for a container that holds
// nothing (any more): it also runs for containers that never started, or
// whose teardown a crash cut short.
type TeardownHook interface {
	Teardown(id string) error
}

// Images is the image store as the engine uses it: a container's layers
// for its root, and commit.
type Images interface {
	Resolve(ref string) (*image.Image, error)
	LayerDirsOf(imageID string) ([]string, error)
	AddLayer(parent digest.Digest, r io.Reader) (image.LayerDesc, error)
	Create(config ocispec.Image, layers []image.LayerDesc, tags ...string) (*image.Image, error)
}

// Volumes is the volume store as the engine uses it: rm -v of anonymous
// volumes.
type Volumes interface {
	Remove(name string, force bool) error
}

// Runtime is the OCI runtime as the engine uses it.
type Runtime interface {
	// Create sets up the container and its stopped init; StartCreated
	// lets the init exec the program.
	Create(id string, o runtime.CreateOpts) (*state.Container, *runtime.Proc, error)
	StartCreated(c *state.Container) error
	Exec(id string, o runtime.ExecOpts) (*runtime.Proc, error)
	// Exists says the runtime has state for id; HalfMade that a start
	// was cut short before its state was complete.
	Exists(id string) bool
	HalfMade(id string) bool
	Paused(id string) bool
	Pause(id string) error
	Resume(id string) error
	Delete(id string, force bool) error
	// DeleteCounting deletes and returns the OOM kills the cgroup counted.
	DeleteCounting(id string) (oomKills uint64, err error)
	Pids(id string) ([]int, error)
	Stats(id string) (*cgroupfs.Stats, error)
	// Update applies resource limits to a live container's cgroup.
	Update(id string, res *specs.LinuxResources) error
}

// idMappedMounter mounts the root of a container with a user namespace
// of its own, the layers id-mapped to it.
type idMappedMounter interface {
	MountIDMapped(layers []string, upper, work, merged, dir string, userns *os.File) error
}

// Mounter mounts and unmounts a container's root.
type Mounter interface {
	Mount(layers []string, upper, work, merged string) error
	// Unmount also says whether merged was busy and only detached (its
	// files may still be in use).
	Unmount(merged string) (detached bool, err error)
	Mounted(path string) bool
}

// NewRuntime opens berth's OCI runtime under stateRoot for the engine;
// its helper programs go under dataRoot where stateRoot is noexec.
func NewRuntime(stateRoot, dataRoot string) (Runtime, error) {
	rt, err := runtime.NewWithDataRoot(stateRoot, dataRoot)
	if err != nil {
		return nil, err
	}
	return ociRuntime{rt}, nil
}

// ociRuntime is *runtime.Runtime with the few shapes the engine asks for.
type ociRuntime struct{ *runtime.Runtime }

func (r ociRuntime) Exists(id string) bool   { return r.Store.Exists(id) }
func (r ociRuntime) HalfMade(id string) bool { return r.Store.HalfMade(id) }

func (r ociRuntime) Paused(id string) bool {
	c, err := r.Load(id)
	return err == nil && r.Status(c) == runtime.StatusPaused
}

// overlayMounter is the overlay mount of package overlay.
type overlayMounter struct{}

func (overlayMounter) Mount(layers []string, upper, work, merged string) error {
	return overlay.Mount(layers, upper, work, merged, false)
}
func (overlayMounter) Unmount(merged string) (bool, error) { return overlay.UnmountDetached(merged) }
func (overlayMounter) MountIDMapped(layers []string, upper, work, merged, dir string, userns *os.File) error {
	return overlay.MountIDMapped(layers, upper, work, merged, dir, userns)
}
func (overlayMounter) Mounted(path string) bool {
	ok, _ := mountinfo.Mounted(path)
	return ok
}
