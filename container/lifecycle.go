package container

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/internal/liveness"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/sdnotify"
	"github.com/berth-project/berth/state"
)

// Docker's status words.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// unknownExit is what Docker reports when nobody saw the container end.
const unknownExit = 255

// Create stores a new container record and reserves its name; nothing is
// mounted or started. r.ID must be set (the spec's hostname derives from
// it); an empty r.Name gets a random one.
func (s *Store) Create(r *Record) error {
	if len(r.ID) != 64 || !isHex(r.ID) {
		return fmt.Errorf("invalid container id %q", r.ID)
	}
	if r.Spec == nil {
		return errors.New("container has no spec")
	}
	if r.Name != "" {
		if err := ValidateName(r.Name); err != nil {
			return err
		}
	}
	if err := s.checkNetwork(r); err != nil {
		return err
	}
	random := r.Name == ""
	if random {
		r.Name = randomName()
	}
	// The record exists before its name: a name whose record is missing
	// is then always stale (a crash while removing) and may be taken over.
	// Locked from its mkdir on, and for as long as this process lives:
	// prune leaves alone what a live berth is creating or starting, and
	// removes what a dead one left half-made (see RemoveAbandoned).
	lock, err := state.CreateDir(s.Dir(r.ID), 0o710)
	if err != nil {
		return fmt.Errorf("create container dir: %w", err)
	}
	s.hold(lock)
	if err := limitStorage(s.Dir(r.ID), r); err != nil {
		os.RemoveAll(s.Dir(r.ID))
		return err
	}
	crashpoint.At("container-dir")
	r.Created = time.Now().UTC()
	r.State = State{Status: StatusCreated}
	// Saved before each try, so the record always names the name it is
	// reserving: nothing is left to save once one is taken.
	err = s.Save(r)
	for i := 0; err == nil; i++ {
		if err = s.reserveName(r.Name, r.ID); err == nil || !random || !errors.Is(err, ErrNameInUse) || i > 20 {
			break
		}
		r.Name = randomName() + fmt.Sprint(i)
		err = s.Save(r)
	}
	if err != nil {
		os.RemoveAll(s.Dir(r.ID))
		return err
	}
	s.emit(r, "create")
	return nil
}

// ownerAlive is alive for a container's monitor or foreground berth, the
// owner that records its exit. An owner that execs from a thread other
// than its first (the lean monitor going back to berth; a program run
// with other threads) shows as a zombie for a moment, while the kernel
// moves it onto that thread: a zombie is looked at again before it counts
// as dead, for an owner taken for dead gets an "unknown" exit recorded.
func ownerAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	for try := 0; ; try++ {
		st, zombie, err := liveness.StartTime(pid)
		if err != nil || start != 0 && st != start {
			return false
		}
		if !zombie {
			return true
		}
		if try == 5 {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func procStart(pid int) uint64 {
	st, _, err := liveness.StartTime(pid)
	if err != nil {
		return 0
	}
	return st
}

// refresh makes r.State truthful: a container whose process and owner
// (monitor or foreground berth) are both gone has exited, whatever the
// record says; this is how a crash or a reboot shows up. The first to see
// it records it, once, so that what later reads say (FinishedAt above
// all) stays the same.
func (s *Store) refresh(r *Record) {
	if !s.refreshLocked(r) {
		return
	}
	if _, err := s.finished(r.ID, unknownExit, true, time.Time{}); err != nil {
		logrus.Debugf("record the lost exit of %.12s: %v", r.ID, err)
		return
	}
	if cur, err := s.Load(r.ID); err == nil {
		*r = *cur
		s.refreshLocked(r) // in case it was not this caller's to record
	}
}

// refreshLocked is refresh for a caller holding the record's lock, which
// records nothing; it says whether the owner was found lost.
func (s *Store) refreshLocked(r *Record) (lost bool) {
	st := &r.State
	if !st.Running && !st.Restarting {
		return
	}
	if st.Running && liveness.Alive(st.Pid, r.PidStart) {
		st.Paused = false
		st.Status = StatusRunning
		if s.rt.Paused(r.ID) {
			st.Paused = true
			st.Status = StatusPaused
		}
		return
	}
	if ownerAlive(st.MonitorPid, r.MonitorStart) {
		// The owner is recording the exit or restarting the container.
		return false
	}
	st.Running, st.Paused, st.Restarting = false, false, false
	st.Status = StatusExited
	st.Pid = 0
	st.ExitCode = unknownExit
	if st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
		st.FinishedAt = time.Now().UTC()
	}
	st.Error = errLost
	return true
}

const errLost = "berth stopped watching the container before it exited; its exit status is unknown"

// StartOpts are how a container's process is started.
type StartOpts struct {
	IO          runtime.IO
	PreserveFDs int
	// Foreground: the caller is the parent; with a terminal it gets the
	// pty master in Proc.Console.
	Foreground bool
	// Env is added to the process's environment (LISTEN_FDS and the like).
	Env []string
	// NotifySocket is the socket of the caller's notify relay
	// (--sdnotify=container), bind-mounted in as the container's
	// NOTIFY_SOCKET; "" passes none.
	NotifySocket string
	// Fork and MonitorPid: the lean monitor program started ahead forks
	// the init and is its owner (see LeanMonitor).
	Fork       func(*runtime.ForkRequest) (int, error)
	MonitorPid int
}

// StartError is a failed start; Code is Docker's 125/126/127.
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Start mounts the container's root and starts its process with the
// caller as the parent (and owner, who must call Finished when the process
// ends).
func (s *Store) Start(id string, o StartOpts) (*runtime.Proc, error) {
	r, unlock, err := s.lockLoad(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	s.refreshLocked(r)
	switch {
	case r.State.Status == StatusRemoving:
		return nil, fmt.Errorf("container %s is being removed", r.Name)
	case r.State.Running && liveness.Alive(r.State.Pid, r.PidStart):
		return nil, fmt.Errorf("container %s is already running", r.Name)
	}
	proc, err := s.startLocked(r, o)
	if err != nil {
		code := 125
		var ie *runtime.InitError
		if errors.As(err, &ie) {
			code = ie.Code
		}
		if r.HostConfig.AutoRemove {
			// --rm: a container that cannot start goes at once, on every
			// path (foreground, monitor, run -d); its teardown is part of
			// the removal.
			if derr := s.destroyLocked(r, true); derr != nil {
				logrus.Warnf("remove container %.12s: %v", id, derr)
			}
			return nil, &StartError{Code: code, Err: err}
		}
		s.teardown(r.ID)
		clearNetwork(r)
		r.State.Running, r.State.Restarting, r.State.Paused = false, false, false
		r.State.Pid = 0
		r.State.Error = err.Error()
		r.State.ExitCode = code
		if r.State.Status != StatusCreated {
			r.State.Status = StatusExited
			r.State.FinishedAt = time.Now().UTC()
		}
		if serr := s.Save(r); serr != nil {
			logrus.Warnf("save container %.12s: %v", id, serr)
		}
		return nil, &StartError{Code: code, Err: err}
	}
	return proc, nil
}

func (s *Store) startLocked(r *Record, o StartOpts) (proc *runtime.Proc, err error) {
	s.cleanupRuntime(r.ID)
	opts := runtime.CreateOpts{
		Bundle:      s.Dir(r.ID),
		IO:          o.IO,
		PreserveFDs: o.PreserveFDs,
		Foreground:  o.Foreground,
		PidFile:     r.HostConfig.PidFile,
		NoCgroup:    r.HostConfig.Cgroups == "disabled",
		Fork:        o.Fork,
	}
	// On failure the caller (Start) tears down what prepare set up.
	prepare := func() (*specs.Spec, error) { return s.prepareStart(r, o) }
	if opts.Spec = s.launchSpec(r); opts.Spec != nil {
		// The init starts first, and the root and network are made
		// while its program starts.
		opts.Complete = prepare
	} else if opts.Spec, err = prepare(); err != nil {
		return nil, err
	}
	rc, proc, err := s.rt.Create(r.ID, opts)
	if err != nil {
		return nil, err
	}
	// The record says running before the program runs, so that an exit
	// that follows at once is recorded after this.
	now := time.Now().UTC()
	owner := os.Getpid()
	if o.MonitorPid != 0 {
		owner = o.MonitorPid
	}
	r.State = State{Status: StatusRunning, Running: true, Pid: proc.Pid, StartedAt: now,
		MonitorPid: owner, ExitCode: 0}
	r.PidStart = procStart(proc.Pid)
	r.MonitorStart = procStart(owner)
	r.ManuallyStopped, r.HealthRestart = false, false
	if err := s.Save(r); err != nil {
		return nil, err
	}
	s.resetHealth(r)
	if err := s.rt.StartCreated(rc); err != nil {
		// Its init waits for the start: delete kills it, so that the
		// wait for it returns.
		if derr := s.rt.Delete(r.ID, true); derr != nil {
			logrus.Warnf("delete runtime state of %.12s: %v", r.ID, derr)
		}
		_, _ = proc.Wait()
		return nil, err
	}
	s.emit(r, "start")
	return proc, nil
}

// prepareStart mounts r's root and sets up its network, and returns the
// spec to start it with.
func (s *Store) prepareStart(r *Record, o StartOpts) (*specs.Spec, error) {
	merged, err := s.mountRoot(r)
	if err != nil {
		return nil, err
	}
	spec, err := s.startSpec(r, merged, o)
	if err != nil {
		return nil, err
	}
	if err := s.setupNetwork(r, spec); err != nil {
		return nil, err
	}
	if err := s.openMountsToMappedRoot(r, spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// launchSpec is what the runtime may start r's init with before
// prepareStart has run, or nil where the init needs its result first: a
// user namespace (whose init cannot join the host's network namespace),
// or another container's network namespace, which is only found by the
// network set-up.
func (s *Store) launchSpec(r *Record) *specs.Spec {
	if r.Spec == nil || r.Spec.Linux == nil {
		return nil
	}
	if _, _, mapped := mappedRoot(r); mapped {
		return nil
	}
	if slices.ContainsFunc(r.Spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace }) {
		return nil
	}
	spec := *r.Spec
	switch netKind(r.HostConfig.NetworkMode) {
	case "none", "bridge":
		// Where setupNetwork will put it (see there).
		if s.net != nil {
			spec.Linux, _ = withNetnsPath(spec.Linux, s.net.NetnsPath(r.ID))
		}
	case "host":
	default:
		return nil
	}
	return &spec
}

// startSpec is the stored spec with what only start can know: the mounted
// root, the user resolved in the image's /etc/passwd, the working dir.
func (s *Store) startSpec(r *Record, merged string, o StartOpts) (*specs.Spec, error) {
	spec := *r.Spec
	proc := *spec.Process
	spec.Process = &proc
	root := *spec.Root
	root.Path = merged
	spec.Root = &root
	proc.Env = append(append([]string{}, proc.Env...), o.Env...)
	if o.NotifySocket != "" {
		// Last: after a /run of the user's, which would hide it.
		spec.Mounts = append(slices.Clip(spec.Mounts), sdnotify.Mount(o.NotifySocket))
		proc.Env = append(slices.DeleteFunc(proc.Env, func(e string) bool { return strings.HasPrefix(e, "NOTIFY_SOCKET=") }),
			"NOTIFY_SOCKET="+sdnotify.ContainerPath)
	}
	if err := resolveUser(&proc, merged, r.Config.User); err != nil {
		return nil, err
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	// A missing working directory is made by the init, inside the root
	// and after the volumes are mounted (containerinit's makeCwd).
	if err := s.fillVolumes(r, merged); err != nil {
		return nil, err
	}
	return &spec, nil
}

// Finished records that the container's process ended with code, tears
// down its cgroup, state and root, and says whether the restart policy
// wants it started again. The caller is the owner that started it.
func (s *Store) Finished(id string, code int) (restart bool, err error) {
	return s.finished(id, code, false, time.Time{})
}

// finished records an exit. orphan is for a caller that is not the owner
// and saw both the process and its owner gone: under the lock it checks
// again, for the owner may have recorded the real status meanwhile. at is
// when the process ended; zero means now.
func (s *Store) finished(id string, code int, orphan bool, at time.Time) (restart bool, err error) {
	r, unlock, err := s.lockLoad(id)
	if err != nil {
		return false, err
	}
	defer unlock()
	if orphan && (!r.State.Running && !r.State.Restarting || r.State.Running && liveness.Alive(r.State.Pid, r.PidStart) ||
		ownerAlive(r.State.MonitorPid, r.MonitorStart)) {
		return false, nil
	}
	s.emit(r, "die", "exitCode", strconv.Itoa(code))
	removing := r.State.Status == StatusRemoving
	// Without its owner nobody is there to restart it.
	restart = !removing && !orphan && WantRestart(r, code)
	if !removing && !restart && !orphan && r.HostConfig.AutoRemove {
		// --rm: the owner removes it now, under this lock; recording an
		// exit in a record about to go would only cost time. Should
		// this process die half-way, the owner is gone and the record
		// still says running: ps -a shows it exited and rm cleans it.
		return false, s.destroyLocked(r, true)
	}
	r.State.OOMKilled = s.teardown(r.ID) > 0
	clearNetwork(r)
	r.State.Running, r.State.Paused, r.State.Restarting = false, false, false
	r.State.Pid = 0
	r.State.ExitCode = code
	if orphan {
		r.State.Error = errLost
	}
	if at.IsZero() {
		at = time.Now()
	}
	r.State.FinishedAt = at.UTC()
	if removing {
		return false, s.Save(r)
	}
	r.State.Status = StatusExited
	if restart {
		r.RestartCount++
		r.State.Restarting = true
		r.State.Status = StatusRestarting
	}
	return restart, s.Save(r)
}

// teardown undoes what a start set up: the hooks (networking), the
// runtime's state and cgroup, and the root mount. It is the one teardown:
// every path a container's run ends on calls it once, under the record's
// lock: its exit (Finished, by the foreground berth or the monitor; a lost
// exit that refresh records after a crash), a start that failed, rm and
// --rm (destroy), and prune of what a crash left half-made. Each step does
// nothing when what it undoes is gone, so a crash half-way through is
// finished by the next path that calls it. The hooks, the runtime's
// cleanup and the unmount depend on none of each other and mostly wait in
// the kernel (deleting a veth waits for every CPU, a cgroup rmdir for its
// last task), so they run at once. It returns the OOM kills the cgroup
// counted.
func (s *Store) teardown(id string) (oomKills uint64) {
	return s.teardownThen(id, nil)
}

// teardownThen is teardown that calls unmounted, if set, as soon as the
// root is unmounted, while the other steps may still run; clean says
// that nothing uses the root's files any more (the unmount did not have
// to detach a busy mount).
func (s *Store) teardownThen(id string, unmounted func(clean bool)) (oomKills uint64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.runHooks(id)
	}()
	go func() {
		defer wg.Done()
		oomKills = s.cleanupRuntime(id)
	}()
	clean := s.unmountRoot(id)
	if unmounted != nil {
		unmounted(clean)
	}
	wg.Wait()
	return oomKills
}

// runHooks runs the teardown hooks (the network's), then lets go of the
// published ports this process held for the container.
func (s *Store) runHooks(id string) {
	for _, h := range s.hooks {
		if err := h.Teardown(id); err != nil {
			logrus.Warnf("tear down container %.12s: %v", id, err)
		}
	}
	s.releaseNet(id)
}

// StopRestarting records that the owner of a container waiting out a
// restart back-off gives up restarting it: it stays exited with its last
// status.
func (s *Store) StopRestarting(id string) error {
	_, err := s.Update(id, func(r *Record) error {
		if r.State.Restarting {
			r.State.Restarting = false
			r.State.Status = StatusExited
		}
		return nil
	})
	return err
}

// cleanupRuntime removes the runtime's state and cgroup of the container,
// killing whatever is left in it, and returns the OOM kills the cgroup
// counted.
func (s *Store) cleanupRuntime(id string) (oomKills uint64) {
	if !s.rt.Exists(id) && !s.rt.HalfMade(id) {
		return 0
	}
	n, err := s.rt.DeleteCounting(id)
	if err != nil {
		logrus.Warnf("delete runtime state of %.12s: %v", id, err)
	}
	return n
}

// mountRoot mounts the image layers and the container's upper dir.
func (s *Store) mountRoot(r *Record) (string, error) {
	merged := s.MergedDir(r.ID)
	if s.mounter.Mounted(merged) {
		return merged, nil
	}
	if s.images == nil {
		return "", errors.New("no image store")
	}
	layers, err := s.images.LayerDirsOf(r.Image)
	if err != nil {
		return "", fmt.Errorf("image of container %s: %w", r.Name, err)
	}
	if uid, gid, ok := mappedRoot(r); ok {
		return merged, s.mountMapped(r, layers, merged, uid, gid)
	}
	if err := s.mounter.Mount(layers, s.UpperDir(r.ID), s.WorkDir(r.ID), merged); err != nil {
		return "", err
	}
	return merged, nil
}

// mountMapped mounts the root of r, which has a user namespace of its
// own whose root is uid:gid on the host: the layers id-mapped, its own
// files (upper) owned by that root, and the way to the root open to it.
func (s *Store) mountMapped(r *Record, layers []string, merged string, uid, gid int) error {
	m, ok := s.mounter.(idMappedMounter)
	if !ok {
		return errors.New("id maps: this store cannot id-map image layers")
	}
	upper, work := s.UpperDir(r.ID), s.WorkDir(r.ID)
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chown(upper, uid, gid); err != nil {
		return fmt.Errorf("id maps: %w", err)
	}
	if err := openWayTo(merged); err != nil {
		return err
	}
	ns, err := newUserns(r)
	if err != nil {
		return err
	}
	defer ns.Close()
	return m.MountIDMapped(layers, upper, work, merged, filepath.Join(s.Dir(r.ID), "idmap"), ns)
}

// unmountRoot unmounts the container's root, if mounted, and says
// whether it is cleanly gone: not left mounted, nor only detached while
// busy.
func (s *Store) unmountRoot(id string) (clean bool) {
	merged := s.MergedDir(id)
	if !s.mounter.Mounted(merged) {
		return true
	}
	detached, err := s.mounter.Unmount(merged)
	if err != nil {
		logrus.Warnf("unmount %s: %v", merged, err)
		return false
	}
	return !detached
}

// Premount mounts a created container's root ahead of its start, for a
// caller with time on its hands: run -d while its monitor starts. Start
// finds it mounted.
func (s *Store) Premount(r *Record) error {
	unlock, err := s.Lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = s.mountRoot(r)
	return err
}

// MountRoot mounts a container's root for cp, export and the like; the
// caller calls the result, which unmounts it again unless it is running.
func (s *Store) MountRoot(r *Record) (string, func(), error) {
	unlock, err := s.Lock(r.ID)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	merged := s.MergedDir(r.ID)
	was := s.mounter.Mounted(merged)
	if _, err := s.mountRoot(r); err != nil {
		return "", nil, err
	}
	return merged, func() {
		if was {
			return
		}
		unlock, err := s.Lock(r.ID)
		if err != nil {
			return
		}
		defer unlock()
		if cur, err := s.Load(r.ID); err == nil && !cur.State.Running {
			s.unmountRoot(r.ID)
		}
	}, nil
}

// StopOpts control Stop.
type StopOpts struct {
	// Timeout is in seconds; nil: the container's StopTimeout, or 10. A
	// negative one waits as long as the container takes, as Docker's.
	Timeout *int
	// Signal is sent first instead of the container's stop signal.
	Signal string
	// Restart stops the container for its owner to start again
	// (--health-on-failure=restart): it is not marked as stopped by the
	// user, a second such stop of the same run does nothing, and a
	// negative stop timeout counts as 10 seconds, giving the container
	// its chance to end cleanly before the restart.
	Restart bool
}

// Signal sends sig to the container's init; stop marks the container as
// stopped by the user first, so the restart policy leaves it alone.
func (s *Store) Signal(ref string, sig unix.Signal, manual bool) (*Record, error) {
	r, err := s.Find(ref)
	if err != nil {
		return nil, err
	}
	if !r.State.Running || !liveness.Alive(r.State.Pid, r.PidStart) {
		return r, fmt.Errorf("container %s is not running", r.Name)
	}
	if manual {
		if _, err := s.Update(r.ID, func(cur *Record) error { cur.ManuallyStopped = true; return nil }); err != nil {
			return r, err
		}
	}
	if s.rt.Paused(r.ID) && (sig == unix.SIGKILL || manual) {
		// A frozen process does not act on signals; let it go.
		_ = s.rt.Resume(r.ID)
	}
	if err := unix.Kill(r.State.Pid, sig); err != nil && err != unix.ESRCH {
		return r, fmt.Errorf("signal container %s: %w", r.Name, err)
	}
	s.emit(r, "kill", "signal", strconv.Itoa(int(sig)))
	return r, nil
}

// Stop sends the stop signal, waits for the timeout and kills.
func (s *Store) Stop(ref string, o StopOpts) error {
	r, err := s.Find(ref)
	if err != nil {
		return err
	}
	if o.Restart {
		var again bool
		r, err = s.Update(r.ID, func(cur *Record) error {
			if !cur.State.Running {
				return fmt.Errorf("container %s is not running", cur.Name)
			}
			again = cur.HealthRestart
			cur.HealthRestart = true
			return nil
		})
		if err != nil || again {
			return err
		}
	}
	if !r.State.Running {
		// Docker: stopping a stopped container is not an error; a
		// restarting one stops restarting.
		if r.State.Restarting {
			_, err := s.Update(r.ID, func(cur *Record) error { cur.ManuallyStopped = true; return nil })
			return err
		}
		return nil
	}
	timeout := 10
	if r.Config.StopTimeout != nil {
		timeout = *r.Config.StopTimeout
	}
	if o.Timeout != nil {
		timeout = *o.Timeout
	}
	if timeout < 0 && o.Restart {
		timeout = 10
	}
	sig := unix.SIGTERM
	if r.Config.StopSignal != "" {
		if sig, err = runtime.ParseSignal(r.Config.StopSignal); err != nil {
			return err
		}
	}
	if o.Signal != "" {
		if sig, err = runtime.ParseSignal(o.Signal); err != nil {
			return err
		}
	}
	manual := !o.Restart
	if _, err := s.Signal(r.ID, sig, manual); err != nil {
		if !liveness.Alive(r.State.Pid, r.PidStart) {
			return s.waitRecorded(r)
		}
		return err
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	for (timeout < 0 || time.Now().Before(deadline)) && liveness.Alive(r.State.Pid, r.PidStart) {
		time.Sleep(20 * time.Millisecond)
	}
	if liveness.Alive(r.State.Pid, r.PidStart) {
		if _, err := s.Signal(r.ID, unix.SIGKILL, manual); err != nil && liveness.Alive(r.State.Pid, r.PidStart) {
			return err
		}
	}
	if err := s.waitRecorded(r); err != nil {
		return err
	}
	if !o.Restart {
		s.emit(r, "stop")
	}
	return nil
}

// waitRecorded waits until the container's process is gone and its exit is
// recorded; when its owner is gone too, it records the exit itself.
func (s *Store) waitRecorded(r *Record) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := s.Load(r.ID)
		if errors.Is(err, ErrNotFound) {
			return nil // stopped, and removed by its owner (--rm)
		}
		if err != nil {
			return err
		}
		if !cur.State.Running || cur.State.StartedAt != r.State.StartedAt {
			return nil
		}
		if !liveness.Alive(cur.State.Pid, cur.PidStart) && !ownerAlive(cur.State.MonitorPid, cur.MonitorStart) {
			if _, err := s.finished(r.ID, unknownExit, true, time.Time{}); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("container %s: timed out waiting for its exit to be recorded", r.Name)
}

// Wait blocks until the container is not running and returns its exit code.
func (s *Store) Wait(ref string) (int, error) {
	r, err := s.Find(ref)
	if err != nil {
		return 0, err
	}
	for {
		cur, err := s.Load(r.ID)
		if err != nil {
			return 0, err
		}
		s.refresh(cur)
		if !cur.State.Running && !cur.State.Restarting && cur.State.Status != StatusCreated {
			return cur.State.ExitCode, nil
		}
		if cur.State.Status == StatusCreated && r.State.Status != StatusCreated {
			return cur.State.ExitCode, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// RemoveOpts control Remove.
type RemoveOpts struct {
	Force   bool // kill a running container
	Volumes bool // remove its anonymous volumes
}

// Remove deletes a container: its process (with Force), monitor, cgroup,
// state, root, record and name.
func (s *Store) Remove(ref string, o RemoveOpts) error {
	r, err := s.Find(ref)
	if errors.Is(err, ErrNotFound) && isHex(ref) {
		// Maybe one that a crash left half-made, without a record.
		if ids, aerr := s.RemoveAbandoned(ref); aerr != nil || len(ids) > 0 {
			return aerr
		}
	}
	if err != nil {
		return err
	}
	running := r.State.Running || r.State.Restarting
	if running && !o.Force {
		return fmt.Errorf("cannot remove container %s: container is %s: stop the container before removing or force remove", r.Name, r.State.Status)
	}
	if _, err := s.Update(r.ID, func(cur *Record) error {
		cur.ManuallyStopped = true
		if running {
			cur.State.Status = StatusRemoving
		}
		return nil
	}); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil // its owner removed it meanwhile (--rm)
		}
		// Removing frees space; on a full disk it goes on regardless,
		// and the owner, killed below, restarts nothing.
		if !errors.Is(err, unix.ENOSPC) {
			return err
		}
		logrus.Warnf("container %s: %v; removing it anyway", r.Name, err)
	}
	if running {
		if liveness.Alive(r.State.Pid, r.PidStart) {
			if s.rt.Paused(r.ID) {
				_ = s.rt.Resume(r.ID)
			}
			_ = unix.Kill(r.State.Pid, unix.SIGKILL)
		}
		// Give the owner a moment to record the exit, then make sure it
		// is gone: it must not restart or log into a removed directory.
		deadline := time.Now().Add(5 * time.Second)
		for liveness.Alive(r.State.MonitorPid, r.MonitorStart) && time.Now().Before(deadline) && r.State.MonitorPid != os.Getpid() {
			time.Sleep(10 * time.Millisecond)
		}
		if r.State.MonitorPid != os.Getpid() && liveness.Alive(r.State.MonitorPid, r.MonitorStart) && isMonitor(r.State.MonitorPid, r.ID) {
			_ = unix.Kill(r.State.MonitorPid, unix.SIGKILL)
		}
	}
	return s.destroy(r, o.Volumes)
}

// isMonitor checks that pid is berth's monitor of container id, so rm never
// kills a foreground berth or a stranger.
func isMonitor(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), MonitorArg) && strings.Contains(string(b), id)
}

func (s *Store) destroy(r *Record, volumes bool) error {
	unlock, err := s.Lock(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	return s.destroyLocked(r, volumes)
}

// destroyLocked is destroy for a caller that holds the record's lock.
func (s *Store) destroyLocked(r *Record, volumes bool) error {
	// The root's files go as soon as it is unmounted, while the network
	// and the cgroup are still being torn down (deleting them is most of
	// the removal's work); the record goes last, after the teardown, so
	// that a crash half-way leaves a container that rm finishes.
	var rootErr error
	s.teardownThen(r.ID, func(clean bool) {
		if clean {
			rootErr = s.removeRoot(r)
		}
	})
	merged := s.MergedDir(r.ID)
	if s.mounter.Mounted(merged) {
		return fmt.Errorf("remove container %s: its root is still mounted at %s", r.Name, merged)
	}
	if rootErr != nil {
		return fmt.Errorf("remove container %s: %w", r.Name, rootErr)
	}
	unlimitStorage(s.Dir(r.ID), r)
	if err := os.RemoveAll(s.Dir(r.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", r.Name, err)
	}
	s.releaseName(r.Name, r.ID)
	if p := r.HostConfig.PidFile; p != "" {
		// podman's --pidfile goes with the container.
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			logrus.Warnf("container %s: remove pid file: %v", r.Name, err)
		}
	}
	s.emit(r, "destroy")
	if volumes && s.volumes != nil {
		for _, m := range r.Mounts {
			if m.Type == "volume" && m.Anonymous {
				if err := s.volumes.Remove(m.Name, false); err != nil {
					logrus.Warnf("remove volume %s: %v", m.Name, err)
				}
			}
		}
	}
	return nil
}

// removeRoot removes the unmounted root of a container being destroyed:
// its upper, work and mount point directories.
// (Its storage limit is on the container's directory, which goes later.)
func (s *Store) removeRoot(r *Record) error {
	for _, d := range []string{s.UpperDir(r.ID), s.WorkDir(r.ID), s.MergedDir(r.ID)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// Rename changes a container's name.
func (s *Store) Rename(ref, name string) error {
	r, err := s.Find(ref)
	if err != nil {
		return err
	}
	if name == r.Name {
		return fmt.Errorf("renaming container %s: new name is the same as the old one", r.Name)
	}
	if err := s.reserveName(name, r.ID); err != nil {
		return err
	}
	if _, err := s.Update(r.ID, func(cur *Record) error { cur.Name = name; return nil }); err != nil {
		s.releaseName(name, r.ID)
		return err
	}
	s.releaseName(r.Name, r.ID)
	old := r.Name
	r.Name = name
	s.emit(r, "rename", "oldName", old)
	return nil
}

// RemoveExited removes a container whose exit the caller has just recorded
// (run --rm), without the stop dance of Remove.
func (s *Store) RemoveExited(id string) error {
	r, err := s.Load(id)
	if err != nil {
		return err
	}
	if r.State.Running || r.State.Restarting {
		return s.Remove(id, RemoveOpts{Force: true, Volumes: true})
	}
	return s.destroy(r, true)
}

// SurviveBrokenPipe keeps this process alive when its stdout or stderr is
// a pipe whose reader went away (`berth run ... | head -1`): Go kills a
// program that writes there, and a foreground berth killed so leaves its
// container's lifecycle unfinished (a --rm container stays). The writes
// fail instead. It catches SIGPIPE rather than ignoring it, because an
// ignored signal stays ignored across exec and the container's programs
// must get the default, which a caught one is reset to.
func SurviveBrokenPipe() {
	signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE)
}
