package containers

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/tests/rig"
)

// crashAt runs berth with args and has it SIGKILL itself at point (see
// package crashpoint); it returns the id of the container it was making.
func crashAt(c *rig.ContainerEnv, point string, args ...string) string {
	c.T.Helper()
	before := containerDirs(c)
	cmd := c.Cmd(args...)
	cmd.Env = append(os.Environ(), crashpoint.Env+"="+point)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGKILL {
		c.T.Fatalf("berth %v with %s=%s: %v, want killed by SIGKILL", args, crashpoint.Env, point, err)
	}
	var made []string
	for d := range containerDirs(c) {
		if !before[d] {
			made = append(made, d)
		}
	}
	if len(made) != 1 {
		c.T.Fatalf("containers made by the killed berth: %v", made)
	}
	id := made[0]
	// Should berth fail to clean up, the test still does.
	c.T.Cleanup(func() {
		for _, pid := range cgroupProcs("/berth/" + id) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		for _, d := range rig.CgroupDirs("/berth/" + id) {
			for i := 0; i < 50; i++ {
				if err := unix.Rmdir(d); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	return id
}

func containerDirs(c *rig.ContainerEnv) map[string]bool {
	ents, _ := os.ReadDir(filepath.Join(c.Data, "containers"))
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

// cgroupProcs lists the processes in a cgroup in any hierarchy.
func cgroupProcs(path string) []int {
	var pids []int
	for _, d := range rig.CgroupDirs(path) {
		b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// procRunning is whether pid exists and is no zombie (the host's init
// reaps the orphans of a killed berth when it gets to it).
func procRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func existingCgroups(path string) []string {
	var left []string
	for _, d := range rig.CgroupDirs(path) {
		if _, err := os.Stat(d); err == nil {
			left = append(left, d)
		}
	}
	return left
}

// assertGone checks nothing of container id is left: record, state dir,
// cgroups in every hierarchy, processes, mounts.
func assertGone(c *rig.ContainerEnv, id string, pids []int) {
	c.T.Helper()
	for _, p := range []string{filepath.Join(c.Data, "containers", id), filepath.Join(c.Root, id)} {
		if _, err := os.Stat(p); err == nil {
			c.T.Errorf("%s left behind", p)
		}
	}
	if left := existingCgroups("/berth/" + id); len(left) > 0 {
		c.T.Errorf("cgroups left behind: %v", left)
		for _, d := range left {
			_ = unix.Rmdir(d)
		}
	}
	for _, pid := range pids {
		if procRunning(pid) {
			c.T.Errorf("process %d of the container left running", pid)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if m := append(rig.MountsUnder(c.Data), rig.MountsUnder(c.Root)...); len(m) != 0 {
		c.T.Errorf("mounts left: %v", m)
	}
}

// A foreground run --rm killed between the runtime's state dir and its
// state.json leaves a state dir, cgroups and an init; prune removes all
// of it, and says so.
func TestCrashHalfMadeRuntimeStatePrune(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := crashAt(c, "runtime-state", "run", "--rm", rig.TestImage, "sleep", "100")
	if _, err := os.Stat(filepath.Join(c.Root, id, "state.json")); err == nil {
		t.Fatalf("crash point passed the state record")
	}
	if _, err := os.Stat(filepath.Join(c.Root, id)); err != nil {
		t.Fatalf("no half-made state dir: %v", err)
	}
	if left := existingCgroups("/berth/" + id); len(left) == 0 {
		t.Fatalf("no cgroup made before the crash point")
	}
	pids := cgroupProcs("/berth/" + id)
	out := c.Must("container", "prune", "-f")
	if !strings.Contains(out, id) {
		t.Errorf("prune did not report %s: %q", id, out)
	}
	assertGone(c, id, pids)
}

// The same, when the container's record is gone too (as an older prune
// left it): rm -f of its id still finds and removes it.
func TestCrashHalfMadeRuntimeStateRm(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := crashAt(c, "runtime-state", "run", "--rm", rig.TestImage, "sleep", "100")
	pids := cgroupProcs("/berth/" + id)
	// What an older prune did: root unmounted, record removed.
	_ = unix.Unmount(filepath.Join(c.Data, "containers", id, "merged"), unix.MNT_DETACH)
	if err := os.RemoveAll(filepath.Join(c.Data, "containers", id)); err != nil {
		t.Fatal(err)
	}
	c.Must("rm", "-f", id[:16])
	assertGone(c, id, pids)
	if r := c.Berth("rm", "-f", id); r.Code == 0 || !strings.Contains(r.Stderr, "no such container") {
		t.Errorf("rm -f of a removed container: exit %d %q", r.Code, r.Stderr)
	}
}

// run -d killed right after making the container's directory leaves it
// empty; prune and rm -f find it.
func TestCrashHalfMadeContainerDir(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := crashAt(c, "container-dir", "run", "-d", rig.TestImage, "sleep", "100")
	if ents, err := os.ReadDir(filepath.Join(c.Data, "containers", id)); err != nil || len(ents) != 0 {
		t.Fatalf("half-made dir: %v %v", ents, err)
	}
	out := c.Must("container", "prune", "-f")
	if !strings.Contains(out, id) {
		t.Errorf("prune did not report %s: %q", id, out)
	}
	assertGone(c, id, nil)

	id = crashAt(c, "container-dir", "run", "-d", rig.TestImage, "sleep", "100")
	c.Must("rm", "-f", id)
	assertGone(c, id, nil)
}

// A directory its creator still holds locked is being made right now:
// prune leaves it alone, and removes it once the lock is gone. The test
// plays the creator, in the data root and in the state root.
func TestCrashPruneSparesLiveCreator(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := strings.Repeat("ab", 32)
	c.Must("ps", "-a") // makes the data root's directories
	var locks []*os.File
	var dirs []string
	for _, d := range []string{filepath.Join(c.Data, "containers", id), filepath.Join(c.Root, id)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		locks = append(locks, f)
		dirs = append(dirs, d)
	}
	// A prune that took no notice of the lock might also wait for it
	// forever: a deadline makes that a failure too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.Cmd("container", "prune", "-f")
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	b, err := cmd.Output()
	if err != nil {
		for _, f := range locks {
			f.Close()
		}
		t.Fatalf("prune: %v", err)
	}
	out := string(b)
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("prune removed %s, which a live creator holds: %v", d, err)
		}
	}
	if strings.Contains(out, id) {
		t.Errorf("prune reported %s: %q", id, out)
	}
	if r := c.Berth("rm", "-f", id); r.Code == 0 {
		t.Errorf("rm -f removed a container being created")
	}
	for _, f := range locks {
		f.Close()
	}
	out = c.Must("container", "prune", "-f")
	if !strings.Contains(out, id) {
		t.Errorf("prune did not report %s: %q", id, out)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left after prune", d)
		}
	}

	// A whole record in the Created state, which its maker still holds:
	// a foreground run about to start it.
	made := strings.TrimSpace(c.Must("create", rig.TestImage, "true"))
	f, err := os.Open(filepath.Join(c.Data, "containers", made))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out = c.Must("container", "prune", "-f")
	f.Close()
	if strings.Contains(out, made) || !strings.Contains(c.Must("ps", "-aq", "--no-trunc"), made) {
		t.Errorf("prune removed a container a live berth holds: %q", out)
	}
	if out = c.Must("container", "prune", "-f"); !strings.Contains(out, made) {
		t.Errorf("prune did not remove %s once free: %q", made, out)
	}
}

// A foreground berth whose stderr and stdout go to a pipe that closes
// survives it and finishes the container's lifecycle; the container gets
// SIGPIPE's default disposition all the same.
func TestCrashBrokenPipe(t *testing.T) {
	c := rig.NewContainerEnv(t)
	cmd := c.Cmd("--log-level", "debug", "run", "--rm", "--name", "piped", rig.TestImage,
		"sh", "-c", "echo one; sleep 1; echo two; echo three")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	r.Close() // head -1
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("berth died of %v", ee.Sys().(syscall.WaitStatus).Signal())
	}
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("the --rm container is left: %s", c.Must("ps", "-a"))
	}

	sigpipe := uint64(1) << (uint(unix.SIGPIPE) - 1)
	ignored := func(status string) uint64 {
		for _, l := range strings.Split(status, "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("SigIgn %q", v)
				}
				return n
			}
		}
		t.Fatalf("no SigIgn in %q", status)
		return 0
	}
	if ign := ignored(c.Must("run", "--rm", rig.TestImage, "cat", "/proc/self/status")); ign&sigpipe != 0 {
		t.Errorf("foreground container ignores SIGPIPE: SigIgn %x", ign)
	}
	// berth itself does not ignore SIGPIPE (it catches it): what it runs
	// without a Go runtime in between (hooks) would keep an ignored one.
	fg := c.Cmd("run", "--rm", rig.TestImage, "sleep", "3")
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	st := rig.ReadFile(t, "/proc/"+strconv.Itoa(fg.Process.Pid)+"/status")
	if ign := ignored(st); ign&sigpipe != 0 {
		t.Errorf("foreground berth ignores SIGPIPE: SigIgn %x", ign)
	}
	if err := fg.Wait(); err != nil {
		t.Errorf("run sleep 3: %v", err)
	}
	c.Must("run", "-d", "--name", "det", rig.TestImage, "cat", "/proc/self/status")
	c.Must("wait", "det")
	if ign := ignored(c.Must("logs", "det")); ign&sigpipe != 0 {
		t.Errorf("detached container ignores SIGPIPE: SigIgn %x", ign)
	}
}

// With its monitor and process gone, a container's exit is recorded once:
// FinishedAt does not move from one read to the next.
func TestCrashExitRecordedOnce(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "lost", rig.TestImage, "sleep", "100")
	mon, _ := strconv.Atoi(c.Field("lost", "{{.State.MonitorPid}}"))
	pid, _ := strconv.Atoi(c.Field("lost", "{{.State.Pid}}"))
	if mon <= 0 || pid <= 0 {
		t.Fatalf("monitor %d, pid %d", mon, pid)
	}
	_ = unix.Kill(mon, unix.SIGKILL)
	_ = unix.Kill(pid, unix.SIGKILL)
	rig.WaitFor(t, "exited status", 5*time.Second, func() bool { return strings.HasPrefix(c.PsStatus()["lost"], "Exited (255)") })
	first := c.Field("lost", "{{.State.FinishedAt}}")
	time.Sleep(1100 * time.Millisecond)
	if again := c.Field("lost", "{{.State.FinishedAt}}"); again != first {
		t.Errorf("FinishedAt moved: %s, then %s", first, again)
	}
	rec := rig.ReadFile(t, filepath.Join(c.Data, "containers", c.Field("lost", "{{.Id}}"), "container.json"))
	if !strings.Contains(rec, `"Status":"exited"`) || !strings.Contains(rec, `"ExitCode":255`) {
		t.Errorf("the lost exit is not recorded: %.300s", rec)
	}
}

// stop of a run -d --rm container stops and removes it, and says so.
func TestCrashStopAutoRemove(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := strings.TrimSpace(c.Must("run", "-d", "--rm", rig.TestImage, "sleep", "100"))
	r := c.Berth("stop", "-t", "1", id)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Errorf("stop: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	rig.WaitFor(t, "removal", 5*time.Second, func() bool { return strings.TrimSpace(c.Must("ps", "-aq")) == "" })
}

// With the data root full, stop, rm -f and rmi -f work, and the container
// is really gone.
func TestCrashFullDisk(t *testing.T) {
	dir, err := os.MkdirTemp("", "berth-it-full")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=32m"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	c := rig.NewContainerEnvIn(t, filepath.Join(dir, "data"))
	id := strings.TrimSpace(c.Must("run", "-d", rig.TestImage, "sleep", "1000"))
	pid, _ := strconv.Atoi(c.Field(id, "{{.State.Pid}}"))
	pids := cgroupProcs("/berth/" + id)
	if pid <= 0 || len(pids) == 0 {
		t.Fatalf("pid %d, cgroup procs %v", pid, pids)
	}
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err = fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("fill: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), buf[:4096], 0o600); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("the data root is not full: %v", err)
	}
	c.Must("stop", "-t", "1", id)
	if st := c.Field(id, "{{.State.Status}}"); st != "exited" {
		t.Errorf("status after stop: %s", st)
	}
	if procRunning(pid) {
		t.Errorf("container process %d runs after stop", pid)
	}
	c.Must("rm", "-f", id)
	c.Must("rmi", "-f", rig.TestImage)
	assertGone(c, id, pids)
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("ps -a after rm -f: %q", got)
	}
	if got := strings.TrimSpace(c.Must("images", "-q")); got != "" {
		t.Errorf("images after rmi -f: %q", got)
	}
}
