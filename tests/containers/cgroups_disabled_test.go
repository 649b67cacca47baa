package containers

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// --cgroups=disabled: the container gets no cgroup and stays in the
// caller's, in every hierarchy.
func TestCgroupsDisabled(t *testing.T) {
	c := rig.NewContainerEnv(t)
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	// In the foreground (as in a unit) the container's processes are in
	// the cgroup of the berth that runs it, which is this test's. Seen
	// from the host: inside, the container's cgroup namespace is rooted
	// there and shows "/".
	fg := c.Cmd("run", "--rm", "--name", "fg", "--cgroups=disabled", rig.TestImage, "sleep", "100")
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = fg.Process.Kill()
		_ = fg.Wait()
	})
	rig.WaitFor(t, "fg running", 30*time.Second, func() bool {
		return c.Berth("inspect", "--format", "{{.State.Running}}", "fg").Stdout == "true\n"
	})
	pid := c.Field("fg", "{{.State.Pid}}")
	if got := rig.ReadFile(t, "/proc/"+pid+"/cgroup"); got != string(own) {
		t.Errorf("container's /proc/%s/cgroup:\n%s\nwant the caller's:\n%s", pid, got, own)
	}
	for _, l := range strings.Split(strings.TrimSpace(c.Must("exec", "fg", "cat", "/proc/self/cgroup")), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("/proc/self/cgroup inside: %q, want its cgroup namespace's root", l)
		}
	}
	c.Must("stop", "fg")
	if err := fg.Wait(); err != nil {
		t.Logf("berth run ended: %v", err)
	}
	// Detached, the container stays in the cgroup of the berth that
	// started it (its monitor's too), and berth makes none of its own.
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "nocg", "--cgroups=disabled", rig.TestImage, "sleep", "100"))
	pid = c.Field("nocg", "{{.State.Pid}}")
	if got := rig.ReadFile(t, "/proc/"+pid+"/cgroup"); got != string(own) {
		t.Errorf("detached container's cgroup:\n%s\nwant the caller's:\n%s", got, own)
	}
	for _, d := range rig.CgroupDirs("/berth/" + id) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s made for a container with --cgroups=disabled", d)
		}
	}
	// What needs the container's cgroup says so instead of touching the
	// caller's.
	if r := c.Berth("pause", "nocg"); r.Code == 0 || !strings.Contains(r.Stderr, "no cgroup") {
		t.Errorf("pause: exit %d, stderr %q", r.Code, r.Stderr)
	}
	c.Must("rm", "-f", "nocg")
	n, _ := strconv.Atoi(pid)
	if n <= 0 {
		t.Fatalf("inspect pid %q", pid)
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		if st := rig.ReadFile(t, "/proc/"+pid+"/stat"); !strings.Contains(st, ") Z ") {
			t.Errorf("container pid %s still runs after rm -f", pid)
		}
	}

	// Limits cannot be honoured without a cgroup: refused, nothing made.
	for _, args := range [][]string{
		{"run", "--rm", "--cgroups=disabled", "-m", "64m", rig.TestImage, "true"},
		{"run", "--rm", "--cgroups=disabled", "--pids-limit", "5", rig.TestImage, "true"},
		{"create", "--cgroups=disabled", "--cpus", "0.5", rig.TestImage, "true"},
		{"run", "--rm", "--cgroups=disabled", "--cgroup-parent", "x", rig.TestImage, "true"},
		{"run", "--rm", "--cgroups=bogus", rig.TestImage, "true"},
	} {
		r := c.Berth(args...)
		if r.Code != 125 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "--cgroups") {
			t.Errorf("berth %v: exit %d, stderr %q; want 125 and one line about --cgroups", args, r.Code, r.Stderr)
		}
	}
	if got := c.Must("ps", "-aq"); got != "" {
		t.Errorf("refused runs left containers: %q", got)
	}
}
