package engines

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// containerd is a containerd daemon of this test: its own configuration,
// root, state directory and socket under dir.
type containerd struct {
	t   *testing.T
	dir string
	d   *daemon
}

func (c *containerd) sock() string { return filepath.Join(c.dir, "c.sock") }

// startContainerd starts containerd with extra configuration (TOML: top
// holds top-level keys, tables the rest) and stops it, and everything it left, at the end
// of the test. cleanupFirst runs before the daemon stops: the test's
// containers go through the engine while it still runs.
func startContainerd(t *testing.T, dir, top, tables string, cleanupFirst func()) *containerd {
	t.Helper()
	need(t, "containerd", "ctr", "containerd-shim-runc-v2")
	// The shims' sockets go under /run/containerd/s whatever the
	// configuration says.
	removeIfCreated(t, "/run/containerd")
	c := &containerd{t: t, dir: dir}
	config := fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
%[2]s
[grpc]
  address = "%[1]s/c.sock"

[ttrpc]
  address = "%[1]s/c.ttrpc.sock"

[debug]
  address = "%[1]s/debug.sock"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "%[1]s/opt"
`, dir, top) + tables
	writeFile(t, filepath.Join(dir, "config.toml"), config)
	c.d = startDaemon(t, filepath.Join(dir, "containerd.log"), "containerd", "--config", filepath.Join(dir, "config.toml"))
	t.Cleanup(func() {
		c.t = t
		if cleanupFirst != nil && !c.d.exited() {
			cleanupFirst()
		}
		c.d.stop(t)
		if t.Failed() {
			t.Logf("containerd log:\n%s", c.d.logTail())
		}
		killProcsMentioning(t, dir)
		unmountUnder(t, dir)
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if c.d.exited() {
			t.Fatalf("containerd exited:\n%s", c.d.logTail())
		}
		if _, err := os.Stat(c.sock()); err == nil {
			if r := run(t, nil, "ctr", "--address", c.sock(), "version"); r.code == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up:\n%s", c.d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// ctr runs ctr against this containerd in namespace ns.
func (c *containerd) ctr(ns string, args ...string) result {
	c.t.Helper()
	return run(c.t, nil, "ctr", append([]string{"--address", c.sock(), "--namespace", ns}, args...)...)
}

// ctrTest is containerd's own client, ctr, running containers with
// --runc-binary berth-oci.
type ctrTest struct {
	*containerd
	ns string
}

func (c *ctrTest) runtimeRoot() string { return filepath.Join(c.dir, "berth") }

// runArgs are the arguments of `ctr run` before the caller's: berth-oci
// as the runtime, its state and the I/O fifos under the test directory.
func (c *ctrTest) runArgs(args ...string) []string {
	return append([]string{"run", "--runc-binary", berthOCI, "--runc-root", c.runtimeRoot(),
		"--fifo-dir", filepath.Join(c.dir, "fifo")}, args...)
}

func (c *ctrTest) run(args ...string) result {
	c.t.Helper()
	return c.ctr(c.ns, c.runArgs(args...)...)
}

// taskStatus is the status column of `ctr task ls` for id ("" if absent).
func (c *ctrTest) task(id string) (pid int, status string) {
	c.t.Helper()
	for _, line := range strings.Split(must(c.t, c.ctr(c.ns, "task", "ls")).stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == id {
			pid, _ = strconv.Atoi(f[1])
			return pid, f[2]
		}
	}
	return 0, ""
}

// remove kills and deletes a task and its container.
func (c *ctrTest) remove(id string) {
	c.t.Helper()
	if _, st := c.task(id); st != "" {
		c.ctr(c.ns, "task", "kill", "--signal", "SIGKILL", id)
		rig.WaitFor(c.t, id+" to stop", time.Minute, func() bool { _, st := c.task(id); return st != "RUNNING" })
		if r := c.ctr(c.ns, "task", "delete", id); r.code != 0 {
			c.t.Errorf("task delete: %s", r)
		}
	}
	if r := c.ctr(c.ns, "container", "delete", id); r.code != 0 {
		c.t.Errorf("container delete: %s", r)
	}
}

func TestContainerd(t *testing.T) {
	busybox, _ := imageTars(t)
	dir := tempDir(t, "berth-eng-ctd")
	ns := fmt.Sprintf("berth-eng-%d", os.Getpid())
	var c *ctrTest
	// Containers' cgroups are /<namespace>/<id>.
	t.Cleanup(func() {
		removeCgroupTree(t, "/"+ns)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	cd := startContainerd(t, dir, `disabled_plugins = ["io.containerd.grpc.v1.cri"]`, "", func() {
		if c == nil {
			return
		}
		c.t = t
		for _, id := range strings.Fields(c.ctr(ns, "container", "list", "--quiet").stdout) {
			c.remove(id)
		}
	})
	c = &ctrTest{containerd: cd, ns: ns}
	must(t, c.ctr(ns, "images", "import", busybox))
	image := "docker.io/" + testImage

	t.Run("run", func(t *testing.T) {
		c.t = t
		r := must(t, c.run("--rm", image, "run1", "sh", "-c", "echo hello; echo pid=$$; cat /proc/1/comm; true"))
		if r.stdout != "hello\npid=1\nsh\n" {
			t.Fatalf("want hello, pid 1, sh as pid 1: %s", r)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		c.t = t
		for _, code := range []int{0, 1, 3, 42} {
			id := fmt.Sprintf("exit%d", code)
			r := c.run("--rm", image, id, "sh", "-c", "exit "+strconv.Itoa(code))
			if r.code != code {
				t.Errorf("exit %d: %s", code, r)
			}
		}
	})

	t.Run("missing executable", func(t *testing.T) {
		c.t = t
		r := c.run("--rm", image, "missing", "/nonexistent")
		checkMissingExecutable(t, r)
		if _, err := os.Stat(filepath.Join(c.runtimeRoot(), ns, "missing")); err == nil {
			t.Errorf("berth's state of the failed container survived")
		}
	})

	t.Run("detached exec stop", func(t *testing.T) {
		c.t = t
		const id = "detached"
		must(t, c.run("--detach", image, id, "sh", "-c",
			`trap "exit 7" TERM; while true; do sleep 0.1; done`))
		pid, st := c.task(id)
		if st != "RUNNING" || pid <= 0 {
			t.Fatalf("after run -d: task %s %d", st, pid)
		}
		// berth ran it: its state is under the --runc-root ctr passed.
		if _, err := os.Stat(filepath.Join(c.runtimeRoot(), ns, id)); err != nil {
			t.Errorf("berth has no state for the running container: %v", err)
		}
		r := c.ctr(ns, "task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-ok; cat /proc/1/comm; exit 4")
		if r.code != 4 || r.stdout != "exec-ok\nsh\n" {
			t.Errorf("exec: want exec-ok, sh, exit 4: %s", r)
		}
		must(t, c.ctr(ns, "task", "kill", "--signal", "SIGTERM", id))
		rig.WaitFor(t, "the task to stop", time.Minute, func() bool { _, st := c.task(id); return st == "STOPPED" })
		// ctr reports a non-zero exit status when it deletes the task.
		r = must(t, c.ctr(ns, "task", "delete", id))
		if !strings.Contains(r.stderr, "exit code 7") {
			t.Errorf("want exit code 7 (SIGTERM reached the trap): %s", r)
		}
		must(t, c.ctr(ns, "container", "delete", id))
		if _, err := os.Stat(filepath.Join(c.runtimeRoot(), ns, id)); err == nil {
			t.Errorf("berth's state of %s survived task delete", id)
		}
		if dirs := cgroupDirs(t, "/"+ns+"/"+id); len(dirs) != 0 {
			t.Errorf("the container's cgroups survived task delete: %v", dirs)
		}
	})

	t.Run("interactive tty", func(t *testing.T) {
		c.t = t
		pt := rig.OpenPty(t)
		cmd := exec.Command("ctr", append([]string{"--address", c.sock(), "--namespace", ns},
			c.runArgs("--rm", "--tty", image, "tty", "sh")...)...)
		code := runInteractive(t, pt, cmd, [][2]string{
			{"# ", "tty; echo $((6*7))x\n"},
			{"42x", "exit 5\n"},
		})
		out := pt.Output()
		if code != 5 {
			t.Errorf("want exit 5 from the shell, have %d: %q", code, out)
		}
		if !strings.Contains(out, "/dev/pts/0") {
			t.Errorf("the shell did not have a terminal: %q", out)
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		c.t = t
		r := c.run("--rm", "--mount", "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m", image, "tmpfs", "sh", "-c",
			"grep ' /scratch ' /proc/mounts; echo data > /scratch/f && cat /scratch/f")
		if r.code != 0 || !strings.Contains(r.stdout, "tmpfs /scratch tmpfs") ||
			!strings.Contains(r.stdout, "size=1024k") || !strings.HasSuffix(r.stdout, "data\n") {
			t.Fatalf("want a writable 1m tmpfs on /scratch: %s", r)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		c.t = t
		r := c.run("--rm", "--read-only", image, "ro", "touch", "/x")
		if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("want the root read-only: %s", r)
		}
	})

	t.Run("memory", func(t *testing.T) {
		c.t = t
		const id = "memory"
		must(t, c.run("--detach", "--memory-limit", strconv.Itoa(64<<20), image, id, "sleep", "1000"))
		defer c.remove(id)
		pid, _ := c.task(id)
		if pid <= 0 {
			t.Fatalf("no task %s", id)
		}
		if got := memoryLimit(t, pid); got != 64<<20 {
			t.Errorf("memory limit of the container's cgroup: %d, want %d", got, 64<<20)
		}
		if want := "/" + ns + "/" + id; cgroupOf(t, pid) != want {
			t.Errorf("container in cgroup %s, want %s", cgroupOf(t, pid), want)
		}
	})
}
