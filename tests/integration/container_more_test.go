package integration

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestContainerCommitDiffCpExport(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "--name", "src", testImage, "sh", "-c", "echo new > /new.txt; echo changed > /data/from-image.txt; rm /probe; mkdir /dir; echo in > /dir/f")
	diff := c.must("diff", "src")
	for _, want := range []string{"A /new.txt", "C /data", "C /data/from-image.txt", "D /probe", "A /dir/f"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	// cp out of a stopped container, and into it.
	dst := t.TempDir()
	c.must("cp", "src:/new.txt", dst)
	if got := readFile(t, filepath.Join(dst, "new.txt")); got != "new\n" {
		t.Errorf("cp out: %q", got)
	}
	c.must("cp", "src:/dir", dst)
	if got := readFile(t, filepath.Join(dst, "dir", "f")); got != "in\n" {
		t.Errorf("cp out of a directory: %q", got)
	}
	host := filepath.Join(dst, "host.txt")
	if err := os.WriteFile(host, []byte("from host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	c.must("cp", host, "src:/dir/")
	// export has every change.
	var out bytes.Buffer
	cmd := c.cmd("export", "src")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("export: %v", err)
	}
	files := map[string]string{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	if files["new.txt"] != "new\n" || files["dir/host.txt"] != "from host\n" || files["bin/busybox"] == "" {
		t.Errorf("export: new.txt %q dir/host.txt %q, %d entries", files["new.txt"], files["dir/host.txt"], len(files))
	}
	if _, ok := files["probe"]; ok {
		t.Errorf("export has the deleted /probe")
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("cp/export left mounts: %v", m)
	}
	// commit: the changes become a layer, -c sets the config.
	id := strings.TrimSpace(c.must("commit", "-c", `ENTRYPOINT ["/bin/sh", "-c"]`, "-c", `CMD ["echo $GREETING; cat /new.txt; pwd; id -u"]`,
		"-c", "ENV GREETING=hi", "-c", "WORKDIR /dir", "-c", "USER app", "src", "mine:2"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if got := c.must("run", "--rm", "mine:2"); got != "hi\nnew\n/dir\n1000\n" {
		t.Errorf("committed image run: %q", got)
	}
	// The user's command replaces CMD, -e overrides the image's ENV, the
	// entrypoint stays; --entrypoint replaces it.
	if got := c.must("run", "--rm", "-e", "GREETING=yo", "mine:2", "echo $GREETING; test -e /probe || echo no-probe"); got != "yo\nno-probe\n" {
		t.Errorf("cmd override: %q", got)
	}
	if got := c.must("run", "--rm", "--entrypoint", "cat", "-u", "0", "mine:2", "/data/from-image.txt"); got != "changed\n" {
		t.Errorf("entrypoint override: %q", got)
	}
	// The image is in use: rmi refuses until the containers are gone.
	c.must("create", "--name", "user", "mine:2")
	if r := c.berth("rmi", "mine:2"); r.code == 0 {
		t.Errorf("rmi of an image in use succeeded")
	}
	c.must("rm", "user", "src")
	c.must("rmi", "mine:2")
}

func TestContainerEnvLabelsAndFilters(t *testing.T) {
	c := newContainerEnv(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("# comment\nA=1\nB=two words\nFROM_HOST\n"), 0o644)
	cmd := c.cmd("run", "--rm", "--env-file", envFile, "-e", "A=override", testImage, "sh", "-c", `echo "$A|$B|$FROM_HOST"`)
	cmd.Env = append(os.Environ(), "FROM_HOST=passed")
	out, err := cmd.Output()
	if err != nil || string(out) != "override|two words|passed\n" {
		t.Errorf("env: %q %v", out, err)
	}
	c.must("create", "--name", "a", "-l", "tier=web", "-l", "team=x", testImage, "true")
	c.must("create", "--name", "b", "-l", "tier=db", testImage, "true")
	c.must("start", "a")
	c.must("wait", "a")
	if got := strings.TrimSpace(c.must("ps", "-a", "--filter", "label=tier=web", "--format", "{{.Names}}")); got != "a" {
		t.Errorf("label filter: %q", got)
	}
	if got := strings.TrimSpace(c.must("ps", "-a", "--filter", "status=created", "--format", "{{.Names}} {{.Label \"tier\"}}")); got != "b db" {
		t.Errorf("status filter: %q", got)
	}
	if got := strings.TrimSpace(c.must("ps", "-a", "--filter", "exited=0", "-q")); len(got) != 12 {
		t.Errorf("exited filter: %q", got)
	}
	if got := c.field("a", "{{.Config.Labels.team}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}"); got != "x no /a" {
		t.Errorf("inspect: %q", got)
	}
	if r := c.berth("inspect", "nosuch"); r.code == 0 {
		t.Errorf("inspect of a missing container succeeded")
	}
	// start -a attaches to the output and passes the exit status.
	c.must("create", "--name", "att", testImage, "sh", "-c", "echo attached; echo e >&2; exit 6")
	r := c.berth("start", "-a", "att")
	if r.code != 6 || r.stdout != "attached\n" || r.stderr != "e\n" {
		t.Errorf("start -a: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// logs --since skips what came before.
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now().UTC().Format(time.RFC3339Nano)
	c.must("start", "-a", "a")
	if got := c.must("logs", "--since", mark, "att"); got != "" {
		t.Errorf("logs --since: %q", got)
	}
	if got := c.must("system", "df"); !strings.Contains(got, "Containers") || !strings.Contains(got, "Images") {
		t.Errorf("system df: %q", got)
	}
	if got := c.must("info"); !strings.Contains(got, "Containers: 3") || !strings.Contains(got, "Cgroup Version") {
		t.Errorf("info: %q", got)
	}
	c.must("version")
}

func TestContainerStopSignalAndTimeout(t *testing.T) {
	c := newContainerEnv(t)
	// The image's shell ignores TERM as pid 1; --stop-signal KILL ends it at once.
	c.must("run", "-d", "--name", "s", "--stop-signal", "KILL", testImage, "sleep", "100")
	start := time.Now()
	c.must("stop", "s")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop with --stop-signal KILL took %s", d)
	}
	c.must("run", "-d", "--name", "t", "--stop-timeout", "1", testImage, "sleep", "100")
	start = time.Now()
	c.must("stop", "t")
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %s", d)
	}
	if got := c.field("t", "{{.State.ExitCode}}"); got != "137" {
		t.Errorf("exit after the timeout: %s (%s)", got, c.field("t", "{{.State.Error}}"))
	}
	// A probe handles TERM: stop gets a clean exit.
	c.must("run", "-d", "--name", "p", testImage, "/probe", "signals")
	waitFor(t, "probe ready", 5*time.Second, func() bool { return strings.Contains(c.must("logs", "p"), "ready") })
	c.must("stop", "p")
	if got := c.field("p", "{{.State.ExitCode}}"); got != "0" {
		t.Errorf("exit after TERM: %s", got)
	}
	if !strings.Contains(c.must("logs", "p"), "got SIGTERM") {
		t.Errorf("probe did not see TERM")
	}
}

func TestContainerListenFDs(t *testing.T) {
	c := newContainerEnv(t)
	// A socket-activated unit: fd 3 is passed with LISTEN_FDS=1.
	f, err := os.CreateTemp("", "listen")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.WriteString("from fd 3\n")
	f.Seek(0, 0)
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`LISTEN_PID=$$ LISTEN_FDS=1 exec %s --root %s --data-root %s run --rm %s sh -c 'echo $LISTEN_FDS $LISTEN_PID; cat <&3'`, berthBin, c.root, c.data, testImage))
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "1 1\nfrom fd 3\n" {
		t.Errorf("LISTEN_FDS: %q %v", out, err)
	}
}

func TestContainerBlkioThrottle(t *testing.T) {
	c := newContainerEnv(t)
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	// The block device under / (a partition's disk works too for the rule).
	dev := ""
	if b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev))); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(l, "DEVNAME="); ok {
				dev = "/dev/" + n
			}
		}
	}
	if dev == "" {
		t.Skip("the root filesystem is not on a block device here")
	}
	id := strings.TrimSpace(c.must("run", "-d", "--device-read-bps", dev+":1mb", "--device-write-iops", dev+":100", testImage, "sleep", "100"))
	want := fmt.Sprintf("%d:%d 1048576", unix.Major(st.Dev), unix.Minor(st.Dev))
	got := hostCgroupFile(t, "/berth/"+id, "io.max", "blkio/blkio.throttle.read_bps_device")
	if !strings.Contains(got, want) && !strings.Contains(got, fmt.Sprintf("%d:%d rbps=1048576", unix.Major(st.Dev), unix.Minor(st.Dev))) {
		t.Errorf("read bps: %q", got)
	}
	if r := c.berth("run", "--rm", "--device-read-bps", "/etc/passwd:1mb", testImage, "true"); r.code != 125 || !strings.Contains(r.stderr, "/etc/passwd") {
		t.Errorf("bad device: %d %q", r.code, r.stderr)
	}
}

func TestContainerExecDetachedAndSystemPrune(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--name", "bg", testImage, "sleep", "100")
	c.must("exec", "-d", "bg", "sh", "-c", "sleep 0.2; echo done > /tmp/marker")
	waitFor(t, "detached exec", 5*time.Second, func() bool {
		r := c.berth("exec", "bg", "cat", "/tmp/marker")
		return r.code == 0 && r.stdout == "done\n"
	})
	c.must("create", "--name", "idle", "-v", "/scratch", testImage, "true")
	c.must("stop", "-t", "0", "bg")
	out := c.must("system", "prune", "-f", "--volumes")
	if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Deleted Volumes:") || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("system prune: %q", out)
	}
	if got := strings.TrimSpace(c.must("ps", "-aq")); got != "" {
		t.Errorf("containers left: %q", got)
	}
	if got := strings.TrimSpace(c.must("volume", "ls", "-q")); got != "" {
		t.Errorf("anonymous volumes left: %q", got)
	}
}

// Each build of berth installs its own helper programs. system prune
// removes other builds' copies, unless a process still runs one, and
// keeps this build's.
func TestSystemPruneRemovesOtherBuildsHelpers(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--name", "bg", testImage, "sleep", "100")
	// The monitor execs into the lean program once the container runs,
	// which may be just after run -d returned.
	var monExe string
	waitFor(t, "the lean monitor", 5*time.Second, func() bool {
		monExe, _ = os.Readlink("/proc/" + c.field("bg", "{{.State.MonitorPid}}") + "/exe")
		return strings.HasPrefix(filepath.Base(monExe), "berth-monitor-")
	})
	// Every helper program goes in one directory under this berth's roots.
	initDir := filepath.Dir(monExe)
	if m, _ := filepath.Glob(filepath.Join(initDir, "berth-init-*")); len(m) == 0 {
		t.Fatalf("no container init program beside the monitor program in %s after a run", initDir)
	}
	if !strings.HasPrefix(initDir, c.root+"/") && !strings.HasPrefix(initDir, c.data+"/") {
		t.Errorf("helper programs in %s, not under the roots %s, %s", initDir, c.root, c.data)
	}
	stale := []string{
		filepath.Join(filepath.Dir(monExe), "berth-monitor-0123456789abcdef"),
		filepath.Join(initDir, "berth-init-0123456789abcdef"),
	}
	running := filepath.Join(initDir, "berth-init-fedcba9876543210")
	t.Cleanup(func() {
		for _, p := range append(stale, running) {
			_ = os.Remove(p)
		}
	})
	for _, p := range stale {
		if err := os.WriteFile(p, []byte("old build"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of sleep stands in for another build's init that still runs;
	// it keeps the name sleep, which busybox (the VM's sleep) goes by.
	prog, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(running, prog, 0o755); err != nil {
		t.Fatal(err)
	}
	sleeper := &exec.Cmd{Path: running, Args: []string{"sleep", "60"}}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})

	out := c.must("system", "prune", "-f")
	if !strings.Contains(out, "Deleted Helper programs:") {
		t.Errorf("system prune lists no helper programs: %q", out)
	}
	for _, p := range stale {
		if !strings.Contains(out, p+"\n") {
			t.Errorf("system prune does not list %s: %q", p, out)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want it removed", p, err)
		}
	}
	for _, p := range []string{running, monExe} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; a running program must stay", p, err)
		}
	}
	// This build's programs are still there to use.
	c.must("exec", "bg", "true")
	if got := c.must("run", "--rm", testImage, "echo", "ok"); got != "ok\n" {
		t.Errorf("run after prune: %q", got)
	}
	c.must("rm", "-f", "bg")
}

// run --sysctl and the runtime class sysctls the same way (namespaces.SysctlNamespace).
func TestRunSysctlClasses(t *testing.T) {
	c := newContainerEnv(t)
	if got := c.must("run", "--rm", "--sysctl", "kernel.shm_next_id=7", testImage, "cat", "/proc/sys/kernel/shm_next_id"); got != "7\n" {
		t.Errorf("kernel.shm_next_id inside = %q", got)
	}
	for _, k := range []string{"vm.swappiness=1", "kernel.shmfoo=1"} {
		r := c.berth("run", "--rm", "--sysctl", k, testImage, "true")
		if r.code != 125 || !strings.Contains(r.stderr, "not a namespaced sysctl") {
			t.Errorf("run --sysctl %s: code %d, stderr %q", k, r.code, r.stderr)
		}
	}
}

// A client that a start waited for (start -a, run -it) is served by the
// same lean monitor program as a detached container's: the monitor
// process execs into it while the client is attached, and the client
// still gets the output, the input goes through, and the exit status
// comes back.
func TestContainerAttachedStartIsLeanMonitor(t *testing.T) {
	c := newContainerEnv(t)
	c.must("create", "-i", "--name", "att", testImage, "sh", "-c", `read l; echo "got:$l"; echo "err:$l" >&2; exit 3`)
	cmd := c.cmd("start", "-a", "-i", "att")
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer inW.Close()
	var stdout, stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	defer func() {
		if !done {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	var pid int
	waitFor(t, "the monitor", 10*time.Second, func() bool {
		pid, _ = strconv.Atoi(c.field("att", "{{.State.MonitorPid}}"))
		return pid > 0
	})
	waitFor(t, "the lean monitor serving the attached client", 5*time.Second, func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return strings.HasPrefix(filepath.Base(exe), "berth-monitor-")
	})
	if _, err := inW.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	err = cmd.Wait()
	done = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("start -a: %v, want exit status 3", err)
	}
	if stdout.String() != "got:hello\n" || stderr.String() != "err:hello\n" {
		t.Errorf("start -a: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	waitFor(t, "the exit recorded", 10*time.Second, func() bool { return c.field("att", "{{.State.Status}}") == "exited" })
	if got := c.field("att", "{{.State.ExitCode}}"); got != "3" {
		t.Errorf("exit code %s", got)
	}
}
