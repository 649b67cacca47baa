// Package runtime is berth's OCI engine: it creates, starts, signals,
// execs and deletes containers from a runtime-spec bundle, and holds the
// re-executed init that sets a container up from the inside. It knows
// nothing of images or networks; the layers above compose those.
package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/internal/liveness"
	"github.com/berth-project/berth/state"
)

// Status values of the runtime-spec (plus paused).
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusStopped  = "stopped"
	StatusPaused   = "paused"
)

// Runtime is the state root and the operations on its containers.
type Runtime struct {
	Store *state.Store
	// Helpers is where the init program is installed: under the state
	// root, unless the caller names a data root too (NewWithDataRoot).
	Helpers helperbin.Dirs
}

// New opens the runtime at a state root.
func New(root string) (*Runtime, error) {
	return NewWithDataRoot(root, "")
}

// NewWithDataRoot opens the runtime at a state root, with a data root
// where its helper programs go when the state root is mounted noexec.
func NewWithDataRoot(root, dataRoot string) (*Runtime, error) {
	s, err := state.New(root)
	if err != nil {
		return nil, err
	}
	return &Runtime{Store: s, Helpers: helperbin.Dirs{StateRoot: root, DataRoot: dataRoot}}, nil
}

func (r *Runtime) fifoPath(id string) string { return filepath.Join(r.Store.Dir(id), "exec.fifo") }

// creatingPath marks a container whose init is still setting up.
func (r *Runtime) creatingPath(id string) string { return filepath.Join(r.Store.Dir(id), "creating") }

// cgroupNotePath names the cgroup of a container whose record may not be
// written yet.
func (r *Runtime) cgroupNotePath(id string) string { return filepath.Join(r.Store.Dir(id), "cgroup") }

// Status derives a container's status from the kernel, not from a stored
// field, so it stays truthful when processes die behind berth's back.
func (r *Runtime) Status(c *state.Container) string {
	if !c.Alive() {
		return StatusStopped
	}
	// The init's setup is done when the marker goes; start removes the
	// exec fifo when it lets the program run.
	if _, err := os.Stat(r.creatingPath(c.ID)); err == nil {
		return StatusCreating
	}
	if _, err := os.Stat(r.fifoPath(c.ID)); err == nil {
		return StatusCreated
	}
	if mgr, err := r.manager(c); err == nil {
		if frozen, err := mgr.Frozen(); err == nil && frozen {
			return StatusPaused
		}
	}
	return StatusRunning
}

// Load reads a container's record.
func (r *Runtime) Load(id string) (*state.Container, error) { return r.Store.Load(id) }

// State is the runtime-spec state of a container.
func (r *Runtime) State(id string) (*specs.State, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	return r.specState(c), nil
}

func (r *Runtime) specState(c *state.Container) *specs.State {
	st := &specs.State{Version: specs.Version, ID: c.ID, Status: specs.ContainerState(r.Status(c)), Bundle: c.Bundle}
	if c.Config != nil {
		st.Annotations = c.Config.Annotations
	}
	if st.Status != StatusStopped {
		st.Pid = c.Pid
	}
	return st
}

// List returns every container's record.
func (r *Runtime) List() ([]*state.Container, error) {
	ids, err := r.Store.List()
	if err != nil {
		return nil, err
	}
	var out []*state.Container
	for _, id := range ids {
		c, err := r.Store.Load(id)
		if err != nil {
			logrus.Warnf("skip %s: %v", id, err)
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// manager is the container's cgroup; an empty path is a container created
// without one (CreateOpts.NoCgroup).
func (r *Runtime) manager(c *state.Container) (cgroupfs.Manager, error) {
	if c.CgroupPath == "" {
		return cgroupfs.None(), nil
	}
	return cgroupfs.New(c.CgroupPath)
}

// lockLoad locks a container and reads its record; the caller unlocks.
func (r *Runtime) lockLoad(id string) (*state.Lock, *state.Container, error) {
	lock, err := r.Store.Lock(id)
	if err != nil {
		return nil, nil, err
	}
	c, err := r.Store.Load(id)
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return lock, c, nil
}

// Start lets a created container run its program.
func (r *Runtime) Start(id string) error {
	lock, c, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return r.start(c)
}

// StartCreated is Start for the caller that created the container and
// holds its record: the record is not read back.
func (r *Runtime) StartCreated(c *state.Container) error {
	lock, err := r.Store.Lock(c.ID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	return r.start(c)
}

func (r *Runtime) start(c *state.Container) error {
	id := c.ID
	if st := r.Status(c); st != StatusCreated {
		return fmt.Errorf("container %s is %s, not created", id, st)
	}
	if err := r.openFifo(c); err != nil {
		return err
	}
	if c.Config.Hooks != nil {
		if err := initproto.RunHooks("poststart", c.Config.Hooks.Poststart, *r.specState(c)); err != nil {
			logrus.Warnf("%v", err)
		}
	}
	return nil
}

// openFifo releases the init blocked on the exec fifo.
func (r *Runtime) openFifo(c *state.Container) error {
	path := r.fifoPath(c.ID)
	// Non-blocking, so a dead init cannot hang us; the init is blocked
	// opening the write end and is released by this open.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1)
	for {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll exec fifo: %w", err)
		}
		if n > 0 {
			k, err := f.Read(buf)
			if k == 1 {
				break
			}
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.EAGAIN) {
				return fmt.Errorf("read exec fifo: %w", err)
			}
		}
		if !c.Alive() {
			return fmt.Errorf("container %s exited before start", c.ID)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove exec fifo: %w", err)
	}
	return nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	st := r.Status(c)
	if st == StatusStopped && !all {
		return fmt.Errorf("container %s is not running", id)
	}
	if all {
		mgr, err := r.manager(c)
		if err != nil {
			return err
		}
		if st == StatusPaused && sig != unix.SIGKILL {
			// A frozen process would not act on the signal until thawed.
			logrus.Debugf("container %s is paused; signal %d is delivered on resume", id, sig)
		}
		return mgr.KillAll(int(sig))
	}
	if err := unix.Kill(c.Pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", c.Pid, err)
	}
	return nil
}

// Delete removes a container: its processes (with force, or when only
// created), cgroup and state, then runs the poststop hooks.
func (r *Runtime) Delete(id string, force bool) error {
	return r.delete(id, force, nil)
}

// DeleteCounting is Delete with force that also returns how many processes
// the kernel's OOM killer ended in the container's cgroup, read before the
// cgroup goes: the owner of a container records both when it exits.
func (r *Runtime) DeleteCounting(id string) (oomKills uint64, err error) {
	err = r.delete(id, true, &oomKills)
	return oomKills, err
}

func (r *Runtime) delete(id string, force bool, oomKills *uint64) error {
	lock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := r.Store.Load(id)
	if err != nil {
		if errors.Is(err, state.ErrNotExist) {
			// A directory without a record: a create that died half-way
			// (the lock says its creator is gone), maybe with a cgroup
			// and an init in it.
			if cg, err := os.ReadFile(r.cgroupNotePath(id)); err == nil && len(cg) > 0 {
				if err := r.destroy(&state.Container{ID: id, CgroupPath: string(cg)}); err != nil {
					return err
				}
			}
			return r.Store.Remove(id)
		}
		return err
	}
	st := r.Status(c)
	if st == StatusRunning && !force {
		if liveness.Exiting(c.Pid, c.PidStart) {
			// Killed and not yet gone (its namespace's processes die
			// first): a delete right after kill KILL means this one, as
			// with runc once the kill has landed. Its end is certain; the
			// bound is for a kernel that hangs, not for a slow but sure
			// teardown.
			for deadline := time.Now().Add(time.Minute); c.Alive() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
		}
		// Looked at again: an init that ended, and was reaped, between
		// the two looks is not exiting any more, but gone.
		st = r.Status(c)
	}
	if (st == StatusRunning || st == StatusPaused) && !force {
		return fmt.Errorf("container %s is %s: stop it first or use --force", id, st)
	}
	if oomKills != nil {
		mgr, err := r.manager(c)
		if err == nil {
			*oomKills, err = mgr.OOMKills()
		}
		if err != nil {
			logrus.Debugf("OOM kills of %s: %v", id, err)
		}
	}
	if err := r.destroy(c); err != nil {
		return err
	}
	if c.Config != nil && c.Config.Hooks != nil {
		hs := *r.specState(c)
		hs.Status = StatusStopped
		if err := initproto.RunHooks("poststop", c.Config.Hooks.Poststop, hs); err != nil {
			logrus.Warnf("%v", err)
		}
	}
	return r.Store.Remove(id)
}

// destroy kills whatever is left of a container and removes its cgroup.
func (r *Runtime) destroy(c *state.Container) error {
	mgr, err := r.manager(c)
	if err != nil {
		return err
	}
	if c.Alive() {
		_ = unix.Kill(c.Pid, unix.SIGKILL)
	}
	if mgr.Exists() {
		if frozen, _ := mgr.Frozen(); frozen {
			if err := mgr.Thaw(); err != nil {
				logrus.Warnf("thaw %s: %v", c.ID, err)
			}
		}
		if pids, _ := mgr.Pids(); len(pids) > 0 {
			if err := mgr.KillAll(int(unix.SIGKILL)); err != nil {
				logrus.Warnf("kill processes of %s: %v", c.ID, err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, _ := mgr.Pids()
		if !c.Alive() && len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %s: processes %v did not exit", c.ID, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if mgr.Exists() {
		if err := mgr.Destroy(); err != nil {
			return fmt.Errorf("remove cgroup of %s: %w", c.ID, err)
		}
	}
	return nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	if st := r.Status(c); st != StatusRunning && st != StatusCreated {
		return fmt.Errorf("container %s is %s, not running", id, st)
	}
	mgr, err := r.manager(c)
	if err != nil {
		return err
	}
	return mgr.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	if st := r.Status(c); st != StatusPaused {
		return fmt.Errorf("container %s is %s, not paused", id, st)
	}
	mgr, err := r.manager(c)
	if err != nil {
		return err
	}
	return mgr.Thaw()
}

// Update applies new resource limits to a live container and records them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	lock, c, err := r.lockLoad(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if st := r.Status(c); st == StatusStopped {
		return fmt.Errorf("container %s is stopped", id)
	}
	mgr, err := r.manager(c)
	if err != nil {
		return err
	}
	if err := mgr.Set(res); err != nil {
		return err
	}
	mergeResources(c.Config.Linux, res)
	return r.Store.Save(c)
}

func mergeResources(l *specs.Linux, res *specs.LinuxResources) {
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	cur := l.Resources
	if res.Memory != nil {
		cur.Memory = res.Memory
	}
	if res.CPU != nil {
		cur.CPU = res.CPU
	}
	if res.Pids != nil {
		cur.Pids = res.Pids
	}
	if res.BlockIO != nil {
		cur.BlockIO = res.BlockIO
	}
	if res.HugepageLimits != nil {
		cur.HugepageLimits = res.HugepageLimits
	}
	if res.Unified != nil {
		cur.Unified = res.Unified
	}
}

// Pids lists the host pids of the container's processes.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	mgr, err := r.manager(c)
	if err != nil {
		return nil, err
	}
	if !mgr.Exists() {
		return nil, nil
	}
	return mgr.Pids()
}

// Stats reads a container's cgroup usage.
func (r *Runtime) Stats(id string) (*cgroupfs.Stats, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	mgr, err := r.manager(c)
	if err != nil {
		return nil, err
	}
	return mgr.Stats()
}
