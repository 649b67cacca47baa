package containers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/tests/rig"
)

// TestStartInUnit: berth start run from a systemd unit (as generate
// systemd's Type=forking units do) puts the container beside berth inside
// the unit's cgroup, not back in the /berth/<id> of its earlier start.
// The "unit" is a cgroup named like a service's, in the hierarchy berth
// reads its own cgroup from, with INVOCATION_ID set; tests/systemd checks
// the same under a real systemd.
func TestStartInUnit(t *testing.T) {
	c := rig.NewContainerEnv(t)
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		t.Skip("the host test needs a name=systemd hierarchy to play a unit in; on cgroup2 tests/systemd covers it")
	}
	unitCg := fmt.Sprintf("/berth-test-%d-start.service", os.Getpid())
	var sdMount string
	mounts, err := cgroupfs.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		for _, o := range strings.Split(m.SuperOpts, ",") {
			if o == "name=systemd" {
				sdMount = m.Mountpoint
			}
		}
	}
	if sdMount == "" {
		t.Skip("no name=systemd hierarchy")
	}
	unitDir := filepath.Join(sdMount, unitCg)
	if err := os.Mkdir(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range []string{unitCg + "/supervisor", unitCg} {
			for _, d := range rig.CgroupDirs(p) {
				_ = unix.Rmdir(d)
			}
		}
	})

	c.Must("create", "--name", "s", "--init", rig.TestImage, "sleep", "1000")
	id := c.Field("s", "{{.Id}}")
	c.Must("start", "s")
	if got := nameSystemdCgroup(t, c.Field("s", "{{.State.Pid}}")); got != "/berth/"+id {
		t.Errorf("started outside a unit: the container is in %s, want /berth/%s", got, id)
	}
	c.Must("stop", "-t", "0", "s")

	// berth start from a process in the "unit": a shell that moves itself
	// there, then execs berth.
	cmd := exec.Command("/bin/sh", "-c", `d=$1; shift; echo $$ > "$d/cgroup.procs" && exec "$0" "$@"`,
		rig.BerthBin, unitDir, "--root", c.Root, "--data-root", c.Data, "start", "s")
	cmd.Env = append(os.Environ(), "INVOCATION_ID=0123456789abcdef0123456789abcdef")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("berth start in the unit: %v\n%s", err, out)
	}
	pid := c.Field("s", "{{.State.Pid}}")
	mon := c.Field("s", "{{.State.MonitorPid}}")
	if got := nameSystemdCgroup(t, pid); got != unitCg+"/berth-"+id {
		t.Errorf("started in the unit: the container is in %s, want %s/berth-%s", got, unitCg, id)
	}
	if got := nameSystemdCgroup(t, mon); got != unitCg+"/supervisor" {
		t.Errorf("started in the unit: the monitor is in %s, want %s/supervisor", got, unitCg)
	}
	for _, d := range rig.CgroupDirs("/berth/" + id) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("the container's old cgroup %s is still there (%v)", d, err)
		}
	}
	c.Must("stop", "-t", "0", "s")
	rig.WaitFor(t, "the monitor gone", 10*time.Second, func() bool { return unix.Kill(atoi(t, mon), 0) != nil })
	// Started again from outside, it goes back to berth's own place.
	c.Must("start", "s")
	if got := nameSystemdCgroup(t, c.Field("s", "{{.State.Pid}}")); got != "/berth/"+id {
		t.Errorf("started outside a unit again: the container is in %s, want /berth/%s", got, id)
	}
	c.Must("rm", "-f", "s")
}

// nameSystemdCgroup is pid's cgroup in the name=systemd hierarchy.
func nameSystemdCgroup(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "name=systemd" {
			return f[2]
		}
	}
	t.Fatalf("pid %s has no name=systemd cgroup:\n%s", pid, b)
	return ""
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
