package containers

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

	"github.com/berth-project/berth/tests/rig"
)

func TestContainerCommitDiffCpExport(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "--name", "src", rig.TestImage, "sh", "-c", "echo new > /new.txt; echo changed > /data/from-image.txt; rm /probe; mkdir /dir; echo in > /dir/f")
	diff := c.Must("diff", "src")
	for _, want := range []string{"A /new.txt", "C /data", "C /data/from-image.txt", "D /probe", "A /dir/f"} {
		if !strings.Contains(diff, want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	// The mount points of berth's /etc files are no change of the
	// container's (the image has no /etc/hosts).
	if strings.Contains(diff, "/etc") {
		t.Errorf("diff lists berth's /etc files:\n%s", diff)
	}
	// cp out of a stopped container, and into it.
	dst := t.TempDir()
	c.Must("cp", "src:/new.txt", dst)
	if got := rig.ReadFile(t, filepath.Join(dst, "new.txt")); got != "new\n" {
		t.Errorf("cp out: %q", got)
	}
	c.Must("cp", "src:/dir", dst)
	if got := rig.ReadFile(t, filepath.Join(dst, "dir", "f")); got != "in\n" {
		t.Errorf("cp out of a directory: %q", got)
	}
	host := filepath.Join(dst, "host.txt")
	if err := os.WriteFile(host, []byte("from host\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", host, "src:/dir/")
	// export has every change.
	var out bytes.Buffer
	cmd := c.Cmd("export", "src")
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
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("cp/export left mounts: %v", m)
	}
	// commit: the changes become a layer, -c sets the config.
	id := strings.TrimSpace(c.Must("commit", "-c", `ENTRYPOINT ["/bin/sh", "-c"]`, "-c", `CMD ["echo $GREETING; cat /new.txt; pwd; id -u"]`,
		"-c", "ENV GREETING=hi", "-c", "WORKDIR /dir", "-c", "USER app", "src", "mine:2"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if got := c.Must("run", "--rm", "mine:2"); got != "hi\nnew\n/dir\n1000\n" {
		t.Errorf("committed image run: %q", got)
	}
	// The user's command replaces CMD, -e overrides the image's ENV, the
	// entrypoint stays; --entrypoint replaces it.
	if got := c.Must("run", "--rm", "-e", "GREETING=yo", "mine:2", "echo $GREETING; test -e /probe || echo no-probe"); got != "yo\nno-probe\n" {
		t.Errorf("cmd override: %q", got)
	}
	if got := c.Must("run", "--rm", "--entrypoint", "cat", "-u", "0", "mine:2", "/data/from-image.txt"); got != "changed\n" {
		t.Errorf("entrypoint override: %q", got)
	}
	// The image is in use: rmi refuses until the containers are gone.
	c.Must("create", "--name", "user", "mine:2")
	// ... and the committed layer has none of berth's /etc files: read
	// from a container not started, so nothing is mounted over them.
	if r := c.Berth("cp", "user:/etc/hosts", "-"); r.Code == 0 {
		t.Errorf("the committed image has an /etc/hosts (%d bytes of tar)", len(r.Stdout))
	}
	if r := c.Berth("rmi", "mine:2"); r.Code == 0 {
		t.Errorf("rmi of an image in use succeeded")
	}
	c.Must("rm", "user", "src")
	c.Must("rmi", "mine:2")
}

func TestContainerEnvLabelsAndFilters(t *testing.T) {
	c := rig.NewContainerEnv(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("# comment\nA=1\nB=two words\nFROM_HOST\n"), 0o644)
	cmd := c.Cmd("run", "--rm", "--env-file", envFile, "-e", "A=override", rig.TestImage, "sh", "-c", `echo "$A|$B|$FROM_HOST"`)
	cmd.Env = append(os.Environ(), "FROM_HOST=passed")
	out, err := cmd.Output()
	if err != nil || string(out) != "override|two words|passed\n" {
		t.Errorf("env: %q %v", out, err)
	}
	c.Must("create", "--name", "a", "-l", "tier=web", "-l", "team=x", rig.TestImage, "true")
	c.Must("create", "--name", "b", "-l", "tier=db", rig.TestImage, "true")
	c.Must("start", "a")
	c.Must("wait", "a")
	if got := strings.TrimSpace(c.Must("ps", "-a", "--filter", "label=tier=web", "--format", "{{.Names}}")); got != "a" {
		t.Errorf("label filter: %q", got)
	}
	if got := strings.TrimSpace(c.Must("ps", "-a", "--filter", "status=created", "--format", "{{.Names}} {{.Label \"tier\"}}")); got != "b db" {
		t.Errorf("status filter: %q", got)
	}
	if got := strings.TrimSpace(c.Must("ps", "-a", "--filter", "exited=0", "-q")); len(got) != 12 {
		t.Errorf("exited filter: %q", got)
	}
	if got := c.Field("a", "{{.Config.Labels.team}} {{.HostConfig.RestartPolicy.Name}} {{.Name}}"); got != "x no /a" {
		t.Errorf("inspect: %q", got)
	}
	if r := c.Berth("inspect", "nosuch"); r.Code == 0 {
		t.Errorf("inspect of a missing container succeeded")
	}
	// start -a attaches to the output and passes the exit status.
	c.Must("create", "--name", "att", rig.TestImage, "sh", "-c", "echo attached; echo e >&2; exit 6")
	r := c.Berth("start", "-a", "att")
	if r.Code != 6 || r.Stdout != "attached\n" || r.Stderr != "e\n" {
		t.Errorf("start -a: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	// logs --since skips what came before.
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now().UTC().Format(time.RFC3339Nano)
	c.Must("start", "-a", "a")
	if got := c.Must("logs", "--since", mark, "att"); got != "" {
		t.Errorf("logs --since: %q", got)
	}
	if got := c.Must("system", "df"); !strings.Contains(got, "Containers") || !strings.Contains(got, "Images") {
		t.Errorf("system df: %q", got)
	}
	if got := c.Must("info"); !strings.Contains(got, "Containers: 3") || !strings.Contains(got, "Cgroup Version") {
		t.Errorf("info: %q", got)
	}
	c.Must("version")
}

func TestContainerStopSignalAndTimeout(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// The image's shell ignores TERM as pid 1; --stop-signal KILL ends it at once.
	c.Must("run", "-d", "--name", "s", "--stop-signal", "KILL", rig.TestImage, "sleep", "100")
	start := time.Now()
	c.Must("stop", "s")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop with --stop-signal KILL took %s", d)
	}
	c.Must("run", "-d", "--name", "t", "--stop-timeout", "1", rig.TestImage, "sleep", "100")
	start = time.Now()
	c.Must("stop", "t")
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %s", d)
	}
	if got := c.Field("t", "{{.State.ExitCode}}"); got != "137" {
		t.Errorf("exit after the timeout: %s (%s)", got, c.Field("t", "{{.State.Error}}"))
	}
	// A probe handles TERM: stop gets a clean exit.
	c.Must("run", "-d", "--name", "p", rig.TestImage, "/probe", "signals")
	rig.WaitFor(t, "probe ready", 5*time.Second, func() bool { return strings.Contains(c.Must("logs", "p"), "ready") })
	c.Must("stop", "p")
	if got := c.Field("p", "{{.State.ExitCode}}"); got != "0" {
		t.Errorf("exit after TERM: %s", got)
	}
	if !strings.Contains(c.Must("logs", "p"), "got SIGTERM") {
		t.Errorf("probe did not see TERM")
	}
}

// TestContainerStopTimeoutForever: a stop timeout of -1, the container's
// (--stop-timeout) or stop's own (-t), waits as long as the container
// takes, as in Docker: stop never kills it.
func TestContainerStopTimeoutForever(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// sleep as pid 1 ignores TERM.
	c.Must("run", "-d", "--name", "f", "--stop-timeout", "-1", rig.TestImage, "sleep", "1000")
	for _, args := range [][]string{{"stop", "f"}, {"stop", "-t", "-1", "f"}} {
		if args[1] == "-t" {
			c.Must("start", "f")
		}
		cmd := c.Cmd(args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("berth %v returned (%v) with the container ignoring TERM: it did not wait", args, err)
		case <-time.After(3 * time.Second):
		}
		if st := c.Field("f", "{{.State.Status}}"); st != "running" {
			t.Fatalf("after berth %v had waited 3 s: %s, want running", args, st)
		}
		c.Must("kill", "f")
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("berth %v after the kill: %v", args, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("berth %v still waits after the container was killed", args)
		}
	}
}

func TestContainerListenFDs(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// A socket-activated unit: fd 3 is passed with LISTEN_FDS=1.
	f, err := os.CreateTemp("", "listen")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.WriteString("from fd 3\n")
	f.Seek(0, 0)
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`LISTEN_PID=$$ LISTEN_FDS=1 exec %s --root %s --data-root %s run --rm %s sh -c 'echo $LISTEN_FDS $LISTEN_PID; cat <&3'`, rig.BerthBin, c.Root, c.Data, rig.TestImage))
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "1 1\nfrom fd 3\n" {
		t.Errorf("LISTEN_FDS: %q %v", out, err)
	}
}

func TestContainerBlkioThrottle(t *testing.T) {
	c := rig.NewContainerEnv(t)
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
	id := strings.TrimSpace(c.Must("run", "-d", "--device-read-bps", dev+":1mb", "--device-write-iops", dev+":100", rig.TestImage, "sleep", "100"))
	want := fmt.Sprintf("%d:%d 1048576", unix.Major(st.Dev), unix.Minor(st.Dev))
	got := rig.HostCgroupFile(t, "/berth/"+id, "io.max", "blkio/blkio.throttle.read_bps_device")
	if !strings.Contains(got, want) && !strings.Contains(got, fmt.Sprintf("%d:%d rbps=1048576", unix.Major(st.Dev), unix.Minor(st.Dev))) {
		t.Errorf("read bps: %q", got)
	}
	if r := c.Berth("run", "--rm", "--device-read-bps", "/etc/passwd:1mb", rig.TestImage, "true"); r.Code != 125 || !strings.Contains(r.Stderr, "/etc/passwd") {
		t.Errorf("bad device: %d %q", r.Code, r.Stderr)
	}
}

func TestContainerExecDetachedAndSystemPrune(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "bg", rig.TestImage, "sleep", "100")
	c.Must("exec", "-d", "bg", "sh", "-c", "sleep 0.2; echo done > /tmp/marker")
	rig.WaitFor(t, "detached exec", 5*time.Second, func() bool {
		r := c.Berth("exec", "bg", "cat", "/tmp/marker")
		return r.Code == 0 && r.Stdout == "done\n"
	})
	c.Must("create", "--name", "idle", "-v", "/scratch", rig.TestImage, "true")
	c.Must("stop", "-t", "0", "bg")
	out := c.Must("system", "prune", "-f", "--volumes")
	if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Deleted Volumes:") || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("system prune: %q", out)
	}
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("containers left: %q", got)
	}
	if got := strings.TrimSpace(c.Must("volume", "ls", "-q")); got != "" {
		t.Errorf("anonymous volumes left: %q", got)
	}
}

// Each build of berth installs its own helper programs. system prune
// removes other builds' copies, unless a process still runs one, and
// keeps this build's.
func TestSystemPruneRemovesOtherBuildsHelpers(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "bg", rig.TestImage, "sleep", "100")
	// The monitor execs into the lean program once the container runs,
	// which may be just after run -d returned.
	var monExe string
	rig.WaitFor(t, "the lean monitor", 5*time.Second, func() bool {
		monExe, _ = os.Readlink("/proc/" + c.Field("bg", "{{.State.MonitorPid}}") + "/exe")
		return strings.HasPrefix(filepath.Base(monExe), "berth-monitor-")
	})
	// Every helper program goes in one directory under this berth's roots.
	initDir := filepath.Dir(monExe)
	if m, _ := filepath.Glob(filepath.Join(initDir, "berth-init-*")); len(m) == 0 {
		t.Fatalf("no container init program beside the monitor program in %s after a run", initDir)
	}
	if !strings.HasPrefix(initDir, c.Root+"/") && !strings.HasPrefix(initDir, c.Data+"/") {
		t.Errorf("helper programs in %s, not under the roots %s, %s", initDir, c.Root, c.Data)
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

	out := c.Must("system", "prune", "-f")
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
	c.Must("exec", "bg", "true")
	if got := c.Must("run", "--rm", rig.TestImage, "echo", "ok"); got != "ok\n" {
		t.Errorf("run after prune: %q", got)
	}
	c.Must("rm", "-f", "bg")
}

// run --sysctl and the runtime class sysctls the same way (namespaces.SysctlNamespace).
func TestRunSysctlClasses(t *testing.T) {
	c := rig.NewContainerEnv(t)
	if got := c.Must("run", "--rm", "--sysctl", "kernel.shm_next_id=7", rig.TestImage, "cat", "/proc/sys/kernel/shm_next_id"); got != "7\n" {
		t.Errorf("kernel.shm_next_id inside = %q", got)
	}
	for _, k := range []string{"vm.swappiness=1", "kernel.shmfoo=1"} {
		r := c.Berth("run", "--rm", "--sysctl", k, rig.TestImage, "true")
		if r.Code != 125 || !strings.Contains(r.Stderr, "not a namespaced sysctl") {
			t.Errorf("run --sysctl %s: code %d, stderr %q", k, r.Code, r.Stderr)
		}
	}
}

// A client that a start waited for (start -a, run -it) is served by the
// same lean monitor program as a detached container's: the monitor
// process execs into it while the client is attached, and the client
// still gets the output, the input goes through, and the exit status
// comes back.
func TestContainerAttachedStartIsLeanMonitor(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "-i", "--name", "att", rig.TestImage, "sh", "-c", `read l; echo "got:$l"; echo "err:$l" >&2; exit 3`)
	cmd := c.Cmd("start", "-a", "-i", "att")
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
	rig.WaitFor(t, "the monitor", 10*time.Second, func() bool {
		pid, _ = strconv.Atoi(c.Field("att", "{{.State.MonitorPid}}"))
		return pid > 0
	})
	rig.WaitFor(t, "the lean monitor serving the attached client", 5*time.Second, func() bool {
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
	rig.WaitFor(t, "the exit recorded", 10*time.Second, func() bool { return c.Field("att", "{{.State.Status}}") == "exited" })
	if got := c.Field("att", "{{.State.ExitCode}}"); got != "3" {
		t.Errorf("exit code %s", got)
	}
}
