package container

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/state"
)

// fakeRuntime is a Runtime that runs nothing: a created container's
// process is pid (a live process of the test's), and it keeps what the
// engine asked of it.
type fakeRuntime struct {
	mu        sync.Mutex
	pid       int
	createErr error
	exists    map[string]bool
	creates   int
	deletes   map[string]int
	lastSpec  *specs.Spec
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{pid: os.Getpid(), exists: map[string]bool{}, deletes: map[string]int{}}
}

func (f *fakeRuntime) Create(id string, o runtime.CreateOpts) (*state.Container, *runtime.Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	if o.Complete != nil {
		// As the runtime does: the init is started first, from o.Spec.
		launch := o.Spec
		spec, err := o.Complete()
		if err != nil {
			return nil, nil, err
		}
		if !reflect.DeepEqual(spec.Linux.Namespaces, launch.Linux.Namespaces) {
			return nil, nil, errors.New("fake: the namespaces changed after the init started")
		}
		o.Spec = spec
	}
	f.lastSpec = o.Spec
	if o.Spec == nil || o.Spec.Root == nil || o.Spec.Root.Path == "" {
		return nil, nil, errors.New("fake: no root")
	}
	if f.createErr != nil {
		return nil, nil, f.createErr
	}
	f.exists[id] = true
	return &state.Container{}, &runtime.Proc{Pid: f.pid}, nil
}

func (f *fakeRuntime) StartCreated(*state.Container) error { return nil }
func (f *fakeRuntime) Exec(string, runtime.ExecOpts) (*runtime.Proc, error) {
	return nil, errors.New("fake: no exec")
}

func (f *fakeRuntime) Exists(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.exists[id]
}
func (f *fakeRuntime) HalfMade(string) bool { return false }
func (f *fakeRuntime) Paused(string) bool   { return false }
func (f *fakeRuntime) Pause(string) error   { return nil }
func (f *fakeRuntime) Resume(string) error  { return nil }
func (f *fakeRuntime) Delete(id string, _ bool) error {
	_, err := f.DeleteCounting(id)
	return err
}

func (f *fakeRuntime) DeleteCounting(id string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes[id]++
	delete(f.exists, id)
	return 0, nil
}
func (f *fakeRuntime) Pids(string) ([]int, error)                 { return nil, nil }
func (f *fakeRuntime) Stats(string) (*cgroupfs.Stats, error)      { return &cgroupfs.Stats{}, nil }
func (f *fakeRuntime) Update(string, *specs.LinuxResources) error { return nil }

// fakeImages gives every image no layers.
type fakeImages struct{}

func (fakeImages) Resolve(string) (*image.Image, error) { return nil, image.ErrNotFound }
func (fakeImages) LayerDirsOf(string) ([]string, error) { return nil, nil }
func (fakeImages) AddLayer(digest.Digest, io.Reader) (image.LayerDesc, error) {
	return image.LayerDesc{}, errors.New("fake")
}
func (fakeImages) Create(ocispec.Image, []image.LayerDesc, ...string) (*image.Image, error) {
	return nil, errors.New("fake")
}

// fakeMounter "mounts" a root by making its directory.
type fakeMounter struct {
	mu      sync.Mutex
	mounted map[string]bool
	// busy makes Unmount only detach, as for a root still in use.
	busy bool
}

func (m *fakeMounter) Mount(_ []string, upper, work, merged string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mounted[merged] = true
	for _, d := range []string{upper, work, merged} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
func (m *fakeMounter) Unmount(merged string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mounted, merged)
	return m.busy, nil
}
func (m *fakeMounter) Mounted(p string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mounted[p]
}

// countHook counts the teardowns of each container.
type countHook struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countHook) Teardown(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[id]++
	return nil
}
func (h *countHook) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[id]
}

type fixture struct {
	s     *Store
	rt    *fakeRuntime
	mnt   *fakeMounter
	hooks *countHook
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{rt: newFakeRuntime(), mnt: &fakeMounter{mounted: map[string]bool{}}, hooks: &countHook{n: map[string]int{}}}
	s, err := New(filepath.Join(dir, "data"), filepath.Join(dir, "run"),
		Deps{Images: fakeImages{}, Runtime: f.rt, Mounter: f.mnt, Hooks: []TeardownHook{f.hooks}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.releaseHeld() })
	f.s = s
	return f
}

// create makes a container record with a restart policy.
func (f *fixture) create(t *testing.T, policy string, max int, autoRemove bool) *Record {
	t.Helper()
	r := &Record{ID: NewID(), Image: "sha256:fake",
		Spec:       &specs.Spec{Process: &specs.Process{Args: []string{"/bin/true"}, Cwd: "/"}, Root: &specs.Root{Path: "rootfs"}},
		HostConfig: HostConfig{RestartPolicy: RestartPolicy{Name: policy, MaximumRetryCount: max}, AutoRemove: autoRemove}}
	if err := f.s.Create(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) load(t *testing.T, id string) *Record {
	t.Helper()
	r, err := f.s.Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *Store) releaseHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.held {
		l.Unlock()
	}
	s.held = nil
}

// deadPid is the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run /bin/true: %v", err)
	}
	return cmd.Process.Pid
}

func TestStartFinishedRecordsExitAndTearsDownOnce(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "no", 0, false)
	proc, err := f.s.Start(r.ID, StartOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if proc.Pid != os.Getpid() {
		t.Fatalf("pid %d", proc.Pid)
	}
	cur := f.load(t, r.ID)
	if !cur.State.Running || cur.State.Status != StatusRunning || cur.State.MonitorPid != os.Getpid() {
		t.Fatalf("after start: %+v", cur.State)
	}
	if !f.mnt.Mounted(f.s.MergedDir(r.ID)) {
		t.Fatal("root not mounted")
	}
	restart, err := f.s.Finished(r.ID, 3)
	if err != nil || restart {
		t.Fatalf("finished: %v %v", restart, err)
	}
	cur = f.load(t, r.ID)
	if cur.State.Running || cur.State.Status != StatusExited || cur.State.ExitCode != 3 || cur.State.FinishedAt.IsZero() {
		t.Fatalf("after exit: %+v", cur.State)
	}
	if f.mnt.Mounted(f.s.MergedDir(r.ID)) || f.rt.Exists(r.ID) {
		t.Error("root or runtime state left after the exit")
	}
	if n := f.hooks.count(r.ID); n != 1 {
		t.Errorf("teardown ran %d times, want 1", n)
	}
}

// A container whose process and owner are gone (berth was killed, the
// machine rebooted) shows as exited: the first to look records it once,
// and later looks see the same FinishedAt.
func TestRefreshRecordsLostExitOnce(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "always", 0, false)
	dead := deadPid(t)
	if _, err := f.s.Update(r.ID, func(x *Record) error {
		x.State = State{Status: StatusRunning, Running: true, Pid: dead, MonitorPid: dead,
			StartedAt: time.Now().UTC().Add(-time.Minute)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	first, err := f.s.Find(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := first.State
	if st.Running || st.Status != StatusExited || st.ExitCode != unknownExit || st.Error != errLost || st.FinishedAt.IsZero() {
		t.Fatalf("after the crash: %+v", st)
	}
	time.Sleep(10 * time.Millisecond)
	again, err := f.s.Find(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.State.FinishedAt.Equal(st.FinishedAt) {
		t.Errorf("FinishedAt moved: %v then %v", st.FinishedAt, again.State.FinishedAt)
	}
	if saved := f.load(t, r.ID); !saved.State.FinishedAt.Equal(st.FinishedAt) || saved.State.Status != StatusExited {
		t.Errorf("record: %+v", saved.State)
	}
	// Nobody is there to restart it, whatever its policy.
	if again.RestartCount != 0 {
		t.Errorf("restart count %d", again.RestartCount)
	}
	if n := f.hooks.count(r.ID); n != 1 {
		t.Errorf("teardown ran %d times, want 1", n)
	}
}

// A live owner is left to record the exit itself.
func TestRefreshLeavesLiveOwnerAlone(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "no", 0, false)
	if _, err := f.s.Update(r.ID, func(x *Record) error {
		x.State = State{Status: StatusRunning, Running: true, Pid: deadPid(t), MonitorPid: os.Getpid()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cur, err := f.s.Find(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.State.Status == StatusExited {
		t.Errorf("recorded an exit its live owner was about to record: %+v", cur.State)
	}
	if n := f.hooks.count(r.ID); n != 0 {
		t.Errorf("teardown ran %d times, want 0", n)
	}
}

func TestFinishedAppliesRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		max     int
		codes   []int
		manual  bool
		restart []bool
	}{
		{"no", 0, []int{1}, false, []bool{false}},
		{"on-failure", 2, []int{1, 1, 1}, false, []bool{true, true, false}},
		{"on-failure", 0, []int{0}, false, []bool{false}},
		{"always", 0, []int{0, 0, 1}, false, []bool{true, true, true}},
		{"always", 0, []int{0}, true, []bool{false}},
		{"unless-stopped", 0, []int{137}, false, []bool{true}},
		{"unless-stopped", 0, []int{137}, true, []bool{false}},
	} {
		f := newFixture(t)
		r := f.create(t, tc.policy, tc.max, false)
		for i, code := range tc.codes {
			if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
				t.Fatal(err)
			}
			if tc.manual {
				// What stop and kill do before they signal.
				if _, err := f.s.Update(r.ID, func(x *Record) error { x.ManuallyStopped = true; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			restart, err := f.s.Finished(r.ID, code)
			if err != nil {
				t.Fatal(err)
			}
			cur := f.load(t, r.ID)
			if restart != tc.restart[i] {
				t.Errorf("%s:%d run %d exit %d: restart %v", tc.policy, tc.max, i, code, restart)
			}
			wantStatus := StatusExited
			if restart {
				wantStatus = StatusRestarting
			}
			if cur.State.Status != wantStatus || cur.State.Restarting != restart || cur.State.ExitCode != code {
				t.Errorf("%s run %d: state %+v", tc.policy, i, cur.State)
			}
			if !restart {
				break
			}
		}
		if n, runs := f.hooks.count(r.ID), f.rt.creates; n != runs {
			t.Errorf("%s: %d teardowns for %d runs", tc.policy, n, runs)
		}
	}
}

func TestStopRestartingEndsRestarts(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "always", 0, false)
	if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	if restart, err := f.s.Finished(r.ID, 0); err != nil || !restart {
		t.Fatalf("finished: %v %v", restart, err)
	}
	if err := f.s.StopRestarting(r.ID); err != nil {
		t.Fatal(err)
	}
	if cur := f.load(t, r.ID); cur.State.Restarting || cur.State.Status != StatusExited {
		t.Errorf("state %+v", cur.State)
	}
}

func TestBackoffDoublesAndResets(t *testing.T) {
	var b Backoff
	want := []time.Duration{100, 200, 400, 800, 1600}
	for i, w := range want {
		if got := b.Next(time.Second); got != w*time.Millisecond {
			t.Errorf("wait %d: %v, want %v", i, got, w*time.Millisecond)
		}
	}
	// A container that ran long enough starts the sequence over.
	if got := b.Next(BackoffReset + time.Second); got != BackoffStart {
		t.Errorf("after a long run: %v", got)
	}
	if got := b.Next(time.Second); got != 2*BackoffStart {
		t.Errorf("after the reset: %v", got)
	}
	// It stops growing once past BackoffMax.
	for i := 0; i < 20; i++ {
		b.Next(0)
	}
	top := b.Next(0)
	if top < BackoffMax || top >= 2*BackoffMax || b.Next(0) != top {
		t.Errorf("capped at %v", top)
	}
	if r := ResumeBackoff(b.Current()); r.Next(0) != top {
		t.Error("a resumed sequence does not go on where it was")
	}
}

// RunForeground restarts per the policy, with the back-off, and returns
// the last exit status; each run is torn down once.
func TestRunForegroundRestarts(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "on-failure", 2, false)
	runs := 0
	t0 := time.Now()
	code, err := f.s.RunForeground(r.ID, ForegroundOpts{Wait: func(p *runtime.Proc) (int, error) {
		runs++
		return 7, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 || runs != 3 {
		t.Errorf("code %d after %d runs, want 7 after 3", code, runs)
	}
	// Two restarts: 100 ms, then 200 ms.
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("restarted without the back-off: %v", d)
	}
	cur := f.load(t, r.ID)
	if cur.RestartCount != 2 || cur.State.Status != StatusExited || cur.State.ExitCode != 7 {
		t.Errorf("record: count %d state %+v", cur.RestartCount, cur.State)
	}
	if n := f.hooks.count(r.ID); n != 3 {
		t.Errorf("teardown ran %d times for 3 runs", n)
	}
}

// A signal between two runs ends the restarts.
func TestRunForegroundInterrupt(t *testing.T) {
	f := newFixture(t)
	r := f.create(t, "always", 0, false)
	sigs := make(chan os.Signal, 1)
	code, err := f.s.RunForeground(r.ID, ForegroundOpts{Interrupt: sigs, Wait: func(*runtime.Proc) (int, error) {
		sigs <- os.Interrupt
		return 2, nil
	}})
	if err != nil || code != 2 {
		t.Fatalf("code %d err %v", code, err)
	}
	if cur := f.load(t, r.ID); cur.State.Status != StatusExited || cur.State.Restarting {
		t.Errorf("state %+v", cur.State)
	}
}

func gone(t *testing.T, f *fixture, id string) {
	t.Helper()
	if _, err := os.Stat(f.s.Dir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("container dir left: %v", err)
	}
	if _, err := f.s.Find(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("still found: %v", err)
	}
	if f.mnt.Mounted(f.s.MergedDir(id)) || f.rt.Exists(id) {
		t.Error("root or runtime state left")
	}
	if n := f.hooks.count(id); n != 1 {
		t.Errorf("teardown ran %d times, want 1", n)
	}
}

// --rm removes the container on each path it ends on, tearing it down once.
func TestAutoRemoveEveryPath(t *testing.T) {
	t.Run("exit", func(t *testing.T) { // the monitor's path
		f := newFixture(t)
		r := f.create(t, "no", 0, true)
		if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
			t.Fatal(err)
		}
		if restart, err := f.s.Finished(r.ID, 0); err != nil || restart {
			t.Fatalf("finished: %v %v", restart, err)
		}
		gone(t, f, r.ID)
	})
	t.Run("foreground", func(t *testing.T) {
		f := newFixture(t)
		r := f.create(t, "no", 0, true)
		code, err := f.s.RunForeground(r.ID, ForegroundOpts{Wait: func(*runtime.Proc) (int, error) { return 5, nil }})
		if err != nil || code != 5 {
			t.Fatalf("code %d err %v", code, err)
		}
		gone(t, f, r.ID)
	})
	t.Run("failed start", func(t *testing.T) {
		f := newFixture(t)
		f.rt.createErr = &runtime.InitError{Code: 127, Msg: "exec: no such file"}
		r := f.create(t, "no", 0, true)
		_, err := f.s.RunForeground(r.ID, ForegroundOpts{Wait: func(*runtime.Proc) (int, error) { return 0, nil }})
		var se *StartError
		if !errors.As(err, &se) || se.Code != 127 {
			t.Fatalf("want a start error with code 127, got %v", err)
		}
		gone(t, f, r.ID)
	})
	t.Run("rm -f while running", func(t *testing.T) {
		f := newFixture(t)
		r := f.create(t, "no", 0, true)
		if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
			t.Fatal(err)
		}
		// The process is gone; its owner is this test, which rm does not kill.
		if _, err := f.s.Update(r.ID, func(x *Record) error { x.State.Pid = deadPid(t); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := f.s.Remove(r.ID, RemoveOpts{Force: true}); err != nil {
			t.Fatal(err)
		}
		gone(t, f, r.ID)
	})
}

// A start that fails without --rm leaves the container, torn down once.
func TestFailedStartTearsDownOnce(t *testing.T) {
	f := newFixture(t)
	f.rt.createErr = errors.New("boom")
	r := f.create(t, "always", 0, false)
	if _, err := f.s.Start(r.ID, StartOpts{}); err == nil {
		t.Fatal("start did not fail")
	}
	cur := f.load(t, r.ID)
	if cur.State.Running || cur.State.ExitCode != 125 || cur.State.Error == "" {
		t.Errorf("state %+v", cur.State)
	}
	if f.mnt.Mounted(f.s.MergedDir(r.ID)) {
		t.Error("root left mounted")
	}
	if n := f.hooks.count(r.ID); n != 1 {
		t.Errorf("teardown ran %d times, want 1", n)
	}
}

// Prune removes stopped containers and what a crashed berth left
// half-made, and spares running ones and those a live berth holds.
func TestPrune(t *testing.T) {
	f := newFixture(t)
	stopped := f.create(t, "no", 0, false)
	running := f.create(t, "no", 0, false)
	labelled := f.create(t, "no", 0, false)
	if _, err := f.s.Update(labelled.ID, func(x *Record) error { x.Config.Labels = map[string]string{"keep": "1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Start(running.ID, StartOpts{}); err != nil {
		t.Fatal(err)
	}
	// Half-made: a container directory a killed berth left without a record.
	half := NewID()
	l, err := state.CreateDir(f.s.Dir(half), 0o710)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.mnt.Mount(nil, "", "", f.s.MergedDir(half)); err != nil {
		t.Fatal(err)
	}
	// Still held, as by a live berth creating it: spared.
	if ids, _, err := f.s.Prune(PruneOpts{}); err != nil || len(ids) != 0 {
		t.Fatalf("prune while everything is held: %v %v", ids, err)
	}
	l.Unlock()
	f.s.releaseHeld() // this berth "exits"
	ids, _, err := f.s.Prune(PruneOpts{Labels: []string{"nokeep"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != half {
		t.Errorf("prune with a label no one has removed %v, want only the half-made %.12s", ids, half)
	}
	if _, err := os.Stat(f.s.Dir(half)); !errors.Is(err, os.ErrNotExist) || f.mnt.Mounted(f.s.MergedDir(half)) {
		t.Errorf("half-made container left: %v", err)
	}
	if n := f.hooks.count(half); n != 1 {
		t.Errorf("half-made: teardown ran %d times, want 1", n)
	}
	ids, _, err = f.s.Prune(PruneOpts{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{stopped.ID: true, labelled.ID: true}
	if len(ids) != 2 || !want[ids[0]] || !want[ids[1]] {
		t.Errorf("pruned %v", ids)
	}
	if _, err := f.s.Find(running.ID); err != nil {
		t.Errorf("running container pruned: %v", err)
	}
}

// watchHook is a teardown hook that, once the root is unmounted, watches
// the container's upper dir for a while: whether it went (and when, the
// record was still there) during the teardown.
type watchHook struct {
	s                    *Store
	mnt                  *fakeMounter
	wait                 time.Duration
	upperGone, recordSet bool
}

func (h *watchHook) Teardown(id string) error {
	deadline := time.Now().Add(5 * time.Second)
	for h.mnt.Mounted(h.s.MergedDir(id)) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(h.wait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := os.Stat(h.s.UpperDir(id)); errors.Is(err, os.ErrNotExist) {
			h.upperGone = true
			_, err := os.Stat(recordPath(h.s.DataRoot, id))
			h.recordSet = err == nil
			return nil
		}
	}
	return nil
}

// --rm removes the root's files as soon as it is unmounted, while the
// rest of the teardown runs, and the record only after it: a crash
// half-way leaves a container rm finishes. A root that was busy (only
// detached) is left alone until the teardown has killed what used it.
func TestDestroyRemovesRootDuringTeardown(t *testing.T) {
	for _, busy := range []bool{false, true} {
		f := newFixture(t)
		f.mnt.busy = busy
		h := &watchHook{s: f.s, mnt: f.mnt, wait: 5 * time.Second}
		if busy {
			// Long enough for a removal that should not happen to show.
			h.wait = 200 * time.Millisecond
		}
		f.s.hooks = append(f.s.hooks, h)
		r := f.create(t, "no", 0, true)
		if _, err := f.s.Start(r.ID, StartOpts{}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f.s.UpperDir(r.ID)); err != nil {
			t.Fatalf("upper dir after start: %v", err)
		}
		if restart, err := f.s.Finished(r.ID, 0); err != nil || restart {
			t.Fatalf("finished: %v %v", restart, err)
		}
		gone(t, f, r.ID)
		if busy {
			if h.upperGone {
				t.Error("busy root: upper dir removed while the teardown still ran")
			}
			continue
		}
		if !h.upperGone {
			t.Error("upper dir not removed during the teardown")
		} else if !h.recordSet {
			t.Error("record removed before the teardown ended")
		}
	}
}
