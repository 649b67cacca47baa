package engines

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// podman is Debian's podman with its own storage, state, configuration
// and cgroup parent, and berth-oci as its runtime.
type podman struct {
	t      *testing.T
	dir    string
	cgroup string // the --cgroup-parent of every container
	global []string
	env    []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	need(t, "podman", "conmon")
	busybox, _ := imageTars(t)
	dir := tempDir(t, "berth-eng-podman")
	p := &podman{t: t, dir: dir, cgroup: fmt.Sprintf("/berth-eng-%d-podman", os.Getpid())}
	// No CAP_SYS_RESOURCE here: podman's default ulimits (nofile and
	// nproc at 1048576) cannot be set, by runc either; ask for limits at
	// or below the ones this process has.
	var nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	np := min(nproc.Max, 32768)
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	nf := min(nofile.Max, 20000)
	writeFile(t, filepath.Join(dir, "containers.conf"), fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%s/events.log"
`, nf, nf, np, np, dir))
	writeFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf(`[storage]
driver = "overlay"
graphroot = "%s/root"
runroot = "%s/run"
`, dir, dir))
	p.env = []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
	}
	p.global = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--network-config-dir", filepath.Join(dir, "net"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		// berth's state stays in its default root (runc's --root): podman
		// 4.3 does not hand --runtime-flag to the clean-up process conmon
		// starts when a container exits, so that one would look elsewhere.
		"--runtime", berthOCI,
	}
	t.Cleanup(func() {
		p.t = t
		ids := strings.Fields(p.cmd("ps", "--all", "--quiet", "--no-trunc").stdout)
		if r := p.cmd("rm", "--all", "--force", "--time", "0"); r.code != 0 {
			t.Errorf("cleanup: %s", r)
		}
		killProcsMentioning(t, dir)
		unmountUnder(t, dir)
		removeCgroupTree(t, p.cgroup)
		// berth's records of this test's containers (in its shared
		// default root) must be gone with them.
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(p.stateDir(), id)); err == nil {
				t.Errorf("cleanup: berth's state of %s survived podman rm", id)
				if r := run(t, nil, berthBin, "--root", p.stateDir(), "oci", "delete", "--force", id); r.code != 0 {
					t.Errorf("cleanup: %s", r)
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	must(t, p.cmd("load", "--quiet", "--input", busybox))
	return p
}

// stateDir is berth's default state root, where podman's containers live.
func (p *podman) stateDir() string { return "/run/berth" }

func (p *podman) cmd(args ...string) result {
	p.t.Helper()
	return run(p.t, p.env, "podman", append(append([]string{}, p.global...), args...)...)
}

// runArgs are the arguments of `podman run` before the caller's: no
// network (podman's default network needs iptables, which these hosts do
// not have) and the test's cgroup parent.
func (p *podman) runArgs(args ...string) []string {
	return append([]string{"run", "--network", "none", "--cgroup-parent", p.cgroup}, args...)
}

func (p *podman) run(args ...string) result {
	p.t.Helper()
	return p.cmd(p.runArgs(args...)...)
}

// inspect reads one field of a container with a Go template.
func (p *podman) inspect(id, format string) string {
	p.t.Helper()
	return strings.TrimSpace(must(p.t, p.cmd("inspect", "--format", format, id)).stdout)
}

func TestPodman(t *testing.T) {
	p := newPodman(t)

	t.Run("run", func(t *testing.T) {
		p.t = t
		cidFile := filepath.Join(p.dir, "run.cid")
		r := must(t, p.run("--rm", "--cidfile", cidFile, testImage, "sh", "-c", "echo hello; echo pid=$$; cat /proc/1/comm; true"))
		if r.stdout != "hello\npid=1\nsh\n" {
			t.Fatalf("want hello, pid 1, sh as pid 1: %s", r)
		}
		id, err := os.ReadFile(cidFile)
		if err != nil || len(id) == 0 {
			t.Fatalf("container id: %v", err)
		}
		if _, err := os.Stat(filepath.Join(p.stateDir(), string(id))); err == nil {
			t.Errorf("berth's state of %s survived run --rm", id)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		p.t = t
		for _, code := range []int{0, 1, 3, 42} {
			r := p.run("--rm", testImage, "sh", "-c", "exit "+strconv.Itoa(code))
			if r.code != code {
				t.Errorf("exit %d: %s", code, r)
			}
		}
	})

	t.Run("missing executable", func(t *testing.T) {
		p.t = t
		r := p.run("--rm", testImage, "/nonexistent")
		checkMissingExecutable(t, r)
		// podman's code for a command that cannot be found
		if r.code != 127 {
			t.Errorf("want exit 127: %s", r)
		}
		if strings.Contains(r.stderr, "does not exist") {
			t.Errorf("podman's clean-up (delete --force) complained: %s", r)
		}
	})

	t.Run("detached exec logs stop", func(t *testing.T) {
		p.t = t
		id := strings.TrimSpace(must(t, p.run("-d", testImage, "sh", "-c",
			`trap "echo got TERM; exit 7" TERM; echo started; while true; do sleep 0.1; done`)).stdout)
		if got := p.inspect(id, "{{.State.Status}}"); got != "running" {
			t.Fatalf("after run -d: status %q", got)
		}
		if _, err := os.Stat(filepath.Join(p.stateDir(), id)); err != nil {
			t.Errorf("berth has no state for the running container: %v", err)
		}
		ps := must(t, p.cmd("ps", "--quiet", "--no-trunc")).stdout
		if !strings.Contains(ps, id) {
			t.Errorf("podman ps does not list %s: %q", id, ps)
		}
		r := p.cmd("exec", id, "sh", "-c", "echo exec-ok; cat /proc/1/comm; exit 4")
		if r.code != 4 || r.stdout != "exec-ok\nsh\n" {
			t.Errorf("exec: want exec-ok, sh, exit 4: %s", r)
		}
		rig.WaitFor(t, "started in the logs", cmdTimeout, func() bool {
			return strings.Contains(p.cmd("logs", id).stdout, "started")
		})
		must(t, p.cmd("stop", "--time", "30", id))
		if got := p.inspect(id, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 7" {
			t.Errorf("after stop: want exited 7 (SIGTERM reached the trap), have %q", got)
		}
		if !strings.Contains(p.cmd("logs", id).stdout, "got TERM") {
			t.Errorf("the container did not see SIGTERM")
		}
		must(t, p.cmd("rm", id))
		if _, err := os.Stat(filepath.Join(p.stateDir(), id)); err == nil {
			t.Errorf("berth's state of %s survived podman rm", id)
		}
	})

	t.Run("interactive tty", func(t *testing.T) {
		p.t = t
		pt := rig.OpenPty(t)
		cmd := exec.Command("podman", append(append([]string{}, p.global...), p.runArgs("--rm", "-it", testImage, "sh")...)...)
		cmd.Env = append(os.Environ(), p.env...)
		code := runInteractive(t, pt, cmd, [][2]string{
			{"# ", "tty; stty size; echo $((6*7))x\n"},
			{"42x", "exit 5\n"},
		})
		out := pt.Output()
		if code != 5 {
			t.Errorf("want exit 5 from the shell, have %d: %q", code, out)
		}
		if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "33 101") {
			t.Errorf("the shell did not have a terminal of the caller's size: %q", out)
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		p.t = t
		r := p.run("--rm", "--tmpfs", "/scratch:size=1m", testImage, "sh", "-c",
			"grep ' /scratch ' /proc/mounts; echo data > /scratch/f && cat /scratch/f")
		if r.code != 0 || !strings.Contains(r.stdout, "tmpfs /scratch tmpfs") ||
			!strings.Contains(r.stdout, "size=1024k") || !strings.HasSuffix(r.stdout, "data\n") {
			t.Fatalf("want a writable 1m tmpfs on /scratch: %s", r)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		p.t = t
		r := p.run("--rm", "--read-only", testImage, "touch", "/x")
		if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("want the root read-only: %s", r)
		}
		// podman's --read-only keeps /tmp, /var/tmp and /run writable tmpfs.
		r = p.run("--rm", "--read-only", testImage, "sh", "-c", "touch /tmp/x /run/x && echo ok")
		if r.code != 0 || r.stdout != "ok\n" {
			t.Errorf("want writable /tmp and /run: %s", r)
		}
	})

	t.Run("memory", func(t *testing.T) {
		p.t = t
		id := strings.TrimSpace(must(t, p.run("-d", "--memory", "64m", testImage, "sleep", "1000")).stdout)
		defer p.cmd("rm", "--force", "--time", "0", id)
		pid, err := strconv.Atoi(p.inspect(id, "{{.State.Pid}}"))
		if err != nil || pid <= 0 {
			t.Fatalf("pid of %s: %v", id, err)
		}
		if got := memoryLimit(t, pid); got != 64<<20 {
			t.Errorf("memory limit of the container's cgroup: %d, want %d", got, 64<<20)
		}
		if !strings.HasPrefix(cgroupOf(t, pid), p.cgroup+"/") {
			t.Errorf("container not under --cgroup-parent %s: %s", p.cgroup, cgroupOf(t, pid))
		}
	})
}

// cgroupOf is pid's memory cgroup path (v1) or its cgroup2 path.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	var v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if hasOpt(parts[1], "memory") {
			return parts[2]
		}
		if parts[0] == "0" {
			v2 = parts[2]
		}
	}
	return v2
}
