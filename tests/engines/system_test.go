package engines

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// daemon is an engine daemon this test started.
type daemon struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startDaemon starts name with its output in logPath. Stop it with stop.
func startDaemon(t *testing.T, logPath, name string, args ...string) *daemon {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a terminal's ^C reaches the test only.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(d.done)
	}()
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop ends the daemon by its pid: SIGTERM, then SIGKILL.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s (pid %d) ignored SIGTERM; killing it", d.cmd.Path, d.cmd.Process.Pid)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// logTail is the end of the daemon's log, for failure messages.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// killProcsMentioning kills the processes whose command line contains s,
// a path unique to this test (its temporary directory): the monitors an
// engine started for this test (conmon, containerd shims), which outlive
// their engine by design. It waits until they are gone.
func killProcsMentioning(t *testing.T, s string) {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Error(err)
		return
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		t.Logf("cleanup: killing leftover %d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		_ = unix.Kill(pid, unix.SIGKILL)
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		for i := 0; i < 100 && unix.Kill(pid, 0) == nil; i++ {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); bytes.Contains(st, []byte(") Z ")) {
				break // a zombie whose parent (an engine) will reap it or is gone
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first: the
// engines leave overlay, shm and netns mounts behind when a test fails.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !(m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/")), false
	})
	if err != nil {
		t.Error(err)
		return
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("cleanup: unmount %s: %v", m.Mountpoint, err)
		}
	}
}

// cgroupMounts lists the mount points of every cgroup hierarchy (v1
// controllers, named hierarchies and the cgroup2 tree).
func cgroupMounts(t *testing.T) []*mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.FSType != "cgroup" && m.FSType != "cgroup2", false
	})
	if err != nil {
		t.Fatal(err)
	}
	// One entry per hierarchy root; bind mounts of the same hierarchy
	// elsewhere would only repeat it.
	var out []*mountinfo.Info
	for _, m := range ms {
		if m.Root == "/" && strings.HasPrefix(m.Mountpoint, "/sys/fs/cgroup") {
			out = append(out, m)
		}
	}
	return out
}

// cgroupDirs are the directories of cgroup rel (a path from the
// hierarchy roots) that exist, in every hierarchy.
func cgroupDirs(t *testing.T, rel string) []string {
	t.Helper()
	var out []string
	for _, m := range cgroupMounts(t) {
		p := filepath.Join(m.Mountpoint, rel)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// removeCgroupTree removes cgroup rel and everything below it in every
// hierarchy. Processes still in it belong to this test's containers;
// they are killed first.
func removeCgroupTree(t *testing.T, rel string) {
	t.Helper()
	for _, top := range cgroupDirs(t, rel) {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			for i := 0; i < 50; i++ {
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				for _, f := range strings.Fields(string(b)) {
					if pid, _ := strconv.Atoi(f); pid > 0 && pid != os.Getpid() {
						_ = unix.Kill(pid, unix.SIGKILL)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("cleanup: rmdir %s: %v", d, err)
			}
		}
	}
}

// memoryLimit reads the memory limit of pid's cgroup from the host's
// cgroup files (v1 memory.limit_in_bytes or v2 memory.max).
func memoryLimit(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	var file string
	for _, m := range cgroupMounts(t) {
		switch {
		case v1 != "" && m.FSType == "cgroup" && hasOpt(m.VFSOptions, "memory"):
			file = filepath.Join(m.Mountpoint, v1, "memory.limit_in_bytes")
		case v1 == "" && v2 != "" && m.FSType == "cgroup2":
			file = filepath.Join(m.Mountpoint, v2, "memory.max")
		}
	}
	if file == "" {
		t.Fatalf("no memory cgroup for pid %d in %s", pid, b)
	}
	s, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(s)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", file, s)
	}
	return v
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// removeIfCreated removes dir at the end of the test if it does not exist
// now, as far as it is empty: containerd 1.6 puts its shims' sockets under
// /run/containerd/s whatever its configuration says.
func removeIfCreated(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	t.Cleanup(func() {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = os.Remove(d) // only empty ones go; anything else is not ours alone
		}
	})
}

// runInteractive runs cmd on the terminal, types each input once the
// output so far contains its prompt, and returns the command's exit code.
func runInteractive(t *testing.T, p *rig.Pty, cmd *exec.Cmd, steps [][2]string) int {
	t.Helper()
	p.Start(t, cmd)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	for _, s := range steps {
		prompt, input := s[0], s[1]
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(p.Output(), prompt) {
			select {
			case <-done:
				t.Fatalf("%s exited before %q appeared: %q", cmd.Path, prompt, p.Output())
			default:
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("no %q on the terminal: %q", prompt, p.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := p.Master.Write([]byte(input)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not exit: %q", cmd.Path, p.Output())
	}
	return cmd.ProcessState.ExitCode()
}
