package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestContainerRunForeground(t *testing.T) {
	c := newContainerEnv(t)
	if r := c.berth("run", "--rm", testImage, "echo", "hello"); r.code != 0 || r.stdout != "hello\n" {
		t.Fatalf("run echo: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"--init", "sh", "-c", "kill -9 $$"}, 137, ""},
		{[]string{"/no/such/program"}, 127, "no/such/program"},
		{[]string{"/etc/passwd"}, 126, "/etc/passwd"},
	} {
		args := append([]string{"run", "--rm"}, tc.args...)
		if args[2] != "--init" {
			args = append([]string{"run", "--rm", testImage}, tc.args...)
		} else {
			args = append([]string{"run", "--rm", "--init", testImage}, tc.args[1:]...)
		}
		r := c.berth(args...)
		if r.code != tc.code {
			t.Errorf("run %v: exit %d, want %d (stderr %q)", tc.args, r.code, tc.code, r.stderr)
		}
		if tc.err != "" && (!strings.Contains(r.stderr, tc.err) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0) {
			t.Errorf("run %v: stderr %q, want one line naming %q", tc.args, r.stderr, tc.err)
		}
	}
	// Stdin reaches the container with -i, and stdout/stderr stay apart.
	r := c.berthIn([]byte("from stdin\n"), "run", "--rm", "-i", testImage, "sh", "-c", "cat; echo err >&2")
	if r.stdout != "from stdin\n" || r.stderr != "err\n" {
		t.Errorf("run -i: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := strings.TrimSpace(c.must("ps", "-aq")); got != "" {
		t.Errorf("--rm left containers: %q", got)
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("--rm left mounts: %v", m)
	}
}

func TestContainerBadInput(t *testing.T) {
	c := newContainerEnv(t)
	for _, args := range [][]string{
		{"run", "--rm", "no-such-image-here.invalid/x"},
		{"run", "--rm", "-m", "lots", testImage, "true"},
		{"run", "--rm", "--cpus", "x", testImage, "true"},
		{"run", "--rm", "--restart", "sometimes", testImage, "true"},
		{"run", "--rm", "-v", "/no/such/host/dir:/x", testImage, "true"},
		{"run", "--rm", "--name", "bad/name", testImage, "true"},
		{"run", "--rm", "--network", "bridge", testImage, "true"},
		{"run", "--rm", "-u", "nosuchuser", testImage, "true"},
		{"stop", "nosuchcontainer"},
		{"logs", "nosuchcontainer"},
	} {
		r := c.berth(args...)
		// A missing image is looked for in a registry first, with a note
		// saying so; the error is the last line.
		errLines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if strings.HasPrefix(errLines[0], "Unable to find image") {
			errLines = errLines[1:]
		}
		if r.code == 0 || len(errLines) != 1 || errLines[0] == "" {
			t.Errorf("berth %v: exit %d stderr %q; want an error in one line", args, r.code, r.stderr)
		}
		if args[0] == "run" && r.code != 125 {
			t.Errorf("berth %v: exit %d, want 125", args, r.code)
		}
	}
	c.must("create", "--name", "taken", testImage, "true")
	if r := c.berth("create", "--name", "taken", testImage, "true"); r.code != 125 || !strings.Contains(r.stderr, "already in use") {
		t.Errorf("duplicate name: exit %d stderr %q", r.code, r.stderr)
	}
	if got := strings.Fields(c.must("ps", "-aq")); len(got) != 1 {
		t.Errorf("failed runs left containers: %v", got)
	}
	vols := strings.TrimSpace(c.must("volume", "ls", "-q"))
	if vols != "" {
		t.Errorf("failed runs left volumes: %q", vols)
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("failed runs left mounts: %v", m)
	}
}

func TestContainerConfigFromFlags(t *testing.T) {
	c := newContainerEnv(t)
	rep := c.probeRun("-h", "myhost", "-e", "FOO=bar", "-w", "/work/dir", "-u", "app", "--cap-drop", "ALL", "--cap-add", "NET_RAW")
	if rep.Pid != 1 || rep.Hostname != "myhost" || rep.UID != 1000 || rep.GID != 1000 || rep.Cwd != "/work/dir" {
		t.Errorf("pid %d hostname %q uid %d gid %d cwd %q", rep.Pid, rep.Hostname, rep.UID, rep.GID, rep.Cwd)
	}
	env := strings.Join(rep.Env, " ")
	for _, want := range []string{"FOO=bar", "HOME=/home/app", "HOSTNAME=myhost", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("env %q lacks %s", env, want)
		}
	}
	if len(rep.Groups) == 0 || !containsInt(rep.Groups, 2000) {
		t.Errorf("groups %v: want the image's supplementary group 2000", rep.Groups)
	}
	// NET_RAW is bit 13; with -u app the effective set is empty, the
	// bounding set has just it.
	if rep.CapBnd != "0000000000002000" {
		t.Errorf("bounding caps %s, want only NET_RAW", rep.CapBnd)
	}
	if rep.Seccomp != 2 || rep.NoNewPrivs != 1 {
		t.Errorf("seccomp %d no_new_privs %d", rep.Seccomp, rep.NoNewPrivs)
	}
	rep = c.probeRun("--read-only", "--tmpfs", "/scratch:size=1m", "--ulimit", "nofile=512:1024")
	root, scratch := false, false
	for _, m := range rep.Mounts {
		if m.Target == "/" && strings.Contains(","+m.Options+",", ",ro,") {
			root = true
		}
		if m.Target == "/scratch" && m.FSType == "tmpfs" {
			scratch = true
		}
	}
	if !root || !scratch {
		t.Errorf("read-only root %v, tmpfs /scratch %v: %+v", root, scratch, rep.Mounts)
	}
	if rl := rep.Rlimits["nofile"]; rl.Soft != 512 || rl.Hard != 1024 {
		t.Errorf("nofile %+v", rl)
	}
	rep = c.probeRun("--privileged")
	if rep.Seccomp != 0 || rep.CapEff == "0000000000000000" {
		t.Errorf("--privileged: seccomp %d caps %s", rep.Seccomp, rep.CapEff)
	}
}

func containsInt(l []int, n int) bool {
	for _, x := range l {
		if x == n {
			return true
		}
	}
	return false
}

func TestContainerLimits(t *testing.T) {
	c := newContainerEnv(t)
	id := strings.TrimSpace(c.must("run", "-d", "--name", "lim", "-m", "64m", "--cpus", "0.5", "--pids-limit", "100",
		"--memory-reservation", "32m", "--cpu-shares", "512", "--cpuset-cpus", "0", testImage, "sleep", "100"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an id", id)
	}
	cg := "/berth/" + id
	if got := hostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit %s", got)
	}
	if got := hostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "100" {
		t.Errorf("pids limit %s", got)
	}
	if got := hostCgroupFile(t, cg, "cpu.max", "cpu/cpu.cfs_quota_us"); got != "50000 100000" && got != "50000" {
		t.Errorf("cpu quota %s", got)
	}
	if got := hostCgroupFile(t, cg, "memory.low", "memory/memory.soft_limit_in_bytes"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory reservation %s", got)
	}
	if got := hostCgroupFile(t, cg, "cpuset.cpus", "cpuset/cpuset.cpus"); got != "0" {
		t.Errorf("cpuset %s", got)
	}
	// cgroup v2 has cpu.weight; runc's conversion makes 512 shares 20.
	if got := hostCgroupFile(t, cg, "cpu.weight", "cpu/cpu.shares"); got != "512" && got != "20" {
		t.Errorf("cpu shares %s", got)
	}
	// The container sees its own limit through its cgroup namespace.
	in := strings.TrimSpace(c.must("exec", "lim", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"))
	if in != strconv.Itoa(64<<20) {
		t.Errorf("limit seen inside: %q", in)
	}
	stats := c.must("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "lim")
	if !strings.HasPrefix(stats, "lim ") || !strings.Contains(stats, "/ 64MiB") {
		t.Errorf("stats: %q", stats)
	}
	top := c.must("top", "lim")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 100") {
		t.Errorf("top: %q", top)
	}
	c.must("rm", "-f", "lim")
	for _, d := range cgroupDirs(cg) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left after rm -f", d)
		}
	}
	// --cgroup-parent puts the container's cgroup under another one.
	parent := fmt.Sprintf("berth-it-parent-%d", os.Getpid())
	id = ""
	t.Cleanup(func() {
		// rm -f removed the container's own cgroup; berth made the
		// parent, in every hierarchy. Children go first.
		var dirs []string
		if id != "" {
			dirs = cgroupDirs("/" + parent + "/berth-" + id)
		}
		dirs = append(dirs, cgroupDirs("/"+parent)...)
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
		// Checked by looking at every mount, not through cgroupDirs.
		left, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent)
		if _, err := os.Stat("/sys/fs/cgroup/" + parent); err == nil {
			left = append(left, "/sys/fs/cgroup/"+parent)
		}
		for _, d := range left {
			t.Errorf("cgroup %s left behind", d)
			if id != "" {
				_ = unix.Rmdir(filepath.Join(d, "berth-"+id))
			}
			_ = unix.Rmdir(d)
		}
	})
	id = strings.TrimSpace(c.must("run", "-d", "--cgroup-parent", parent, "--pids-limit", "7", testImage, "sleep", "100"))
	if got := hostCgroupFile(t, "/"+parent+"/berth-"+id, "pids.max", "pids/pids.max"); got != "7" {
		t.Errorf("pids limit under --cgroup-parent: %s", got)
	}
	c.must("rm", "-f", id)
}

func TestContainerDetachedLifecycle(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--name", "web", testImage, "sh", "-c", "echo out; echo err >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done")
	if st := c.psStatus()["web"]; !strings.HasPrefix(st, "Up ") {
		t.Fatalf("ps status %q", st)
	}
	if got := c.must("ps", "--format", "{{.Names}} {{.Image}} {{.State}}"); !strings.Contains(got, "web "+testImage+" running") {
		t.Errorf("ps: %q", got)
	}
	waitFor(t, "log lines", 5*time.Second, func() bool { return strings.Contains(c.must("logs", "web"), "tick 3") })
	r := c.berth("logs", "web")
	if !strings.HasPrefix(r.stdout, "out\n") || r.stderr != "err\n" {
		t.Errorf("logs: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := c.must("logs", "--tail", "1", "web"); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "tick ") {
		t.Errorf("logs --tail 1: %q", got)
	}
	if got := c.must("logs", "-t", "--tail", "1", "web"); !strings.Contains(got, "Z tick ") {
		t.Errorf("logs -t: %q", got)
	}
	// The log file is Docker's json-file.
	logPath := c.field("web", "{{.LogPath}}")
	raw := readFile(t, logPath)
	if !strings.Contains(raw, `{"log":"out\n","stream":"stdout","time":"`) || !strings.Contains(raw, `"stream":"stderr"`) {
		t.Errorf("json-file log: %.200q", raw)
	}
	// exec: output, exit code, env and user.
	if got := c.must("exec", "-e", "X=1", "-u", "app", "web", "sh", "-c", "echo $X $(id -u)"); got != "1 1000\n" {
		t.Errorf("exec: %q", got)
	}
	// exec -e checks names as run -e does.
	for _, bad := range []string{"=x", "A B=1"} {
		if r := c.berth("exec", "-e", bad, "web", "true"); r.code != 125 || !strings.Contains(r.stderr, "invalid environment variable") {
			t.Errorf("exec -e %q: code %d, stderr %q", bad, r.code, r.stderr)
		}
	}
	if r := c.berth("exec", "web", "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit %d", r.code)
	}
	if r := c.berth("exec", "web", "nosuchcmd"); r.code != 127 {
		t.Errorf("exec of a missing command: exit %d", r.code)
	}
	c.must("pause", "web")
	if st := c.field("web", "{{.State.Status}}"); st != "paused" {
		t.Errorf("paused state %q", st)
	}
	c.must("unpause", "web")
	// stop: SIGTERM is ignored by sh as pid 1, so the kill after -t.
	start := time.Now()
	c.must("stop", "-t", "1", "web")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop took %s", d)
	}
	if st := c.psStatus()["web"]; !strings.HasPrefix(st, "Exited (137)") {
		t.Errorf("status after stop %q", st)
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("stopped container keeps mounts: %v", m)
	}
	// Logs survive the monitor.
	if got := c.must("logs", "web"); !strings.Contains(got, "tick 3") {
		t.Errorf("logs after stop: %q", got)
	}
	c.must("start", "web")
	waitFor(t, "restart", 5*time.Second, func() bool { return strings.HasPrefix(c.psStatus()["web"], "Up ") })
	c.must("restart", "-t", "0", "web")
	if st := c.field("web", "{{.State.Status}}"); st != "running" {
		t.Errorf("after restart: %q", st)
	}
	c.must("rename", "web", "web2")
	c.must("kill", "web2")
	if got := strings.TrimSpace(c.must("wait", "web2")); got != "137" {
		t.Errorf("wait after kill: %q", got)
	}
	if r := c.berth("rm", "web"); r.code == 0 {
		t.Errorf("rm of the old name succeeded")
	}
	c.must("rm", "web2")
	if _, err := os.Stat(logPath); !os.IsNotExist(err) {
		t.Errorf("rm left the log: %v", err)
	}
}

func TestContainerLogsFollow(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--name", "f", testImage, "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 4")
	out := c.must("logs", "-f", "f")
	if out != "line 1\nline 2\nline 3\n" {
		t.Errorf("logs -f: %q", out)
	}
	if got := c.field("f", "{{.State.ExitCode}}"); got != "4" {
		t.Errorf("exit code %s", got)
	}
	if st := c.psStatus()["f"]; !strings.HasPrefix(st, "Exited (4)") {
		t.Errorf("ps: %q", st)
	}
}

func TestContainerRestartPolicy(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", testImage, "sh", "-c", "echo run; exit 1")
	waitFor(t, "two restarts", 15*time.Second, func() bool {
		return c.field("flaky", "{{.State.Status}}") == "exited" && c.field("flaky", "{{.RestartCount}}") == "2"
	})
	if got := strings.Count(c.must("logs", "flaky"), "run\n"); got != 3 {
		t.Errorf("ran %d times, want 3", got)
	}
	c.must("run", "-d", "--name", "always", "--restart", "always", testImage, "sh", "-c", "sleep 0.2; exit 0")
	waitFor(t, "a restart", 10*time.Second, func() bool {
		n, _ := strconv.Atoi(c.field("always", "{{.RestartCount}}"))
		return n >= 1
	})
	c.must("stop", "-t", "1", "always")
	n := c.field("always", "{{.RestartCount}}")
	time.Sleep(time.Second)
	if st, n2 := c.field("always", "{{.State.Status}}"), c.field("always", "{{.RestartCount}}"); st != "exited" || n2 != n {
		t.Errorf("after stop: status %s restarts %s -> %s", st, n, n2)
	}
}

func TestContainerAutoRemoveDetached(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "--rm", "--name", "gone", testImage, "sh", "-c", "sleep 0.3")
	waitFor(t, "removal", 10*time.Second, func() bool { return !strings.Contains(c.must("ps", "-a"), "gone") })
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestContainerLeanMonitor follows a detached container's monitor through
// its hand-over to the lean monitor program and back: the same pid serves
// the container's input and output, and berth records the exit after it.
func TestContainerLeanMonitor(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "-d", "-i", "--name", "lean", testImage, "sh", "-c", `while read l; do echo "echo:$l"; echo "err:$l" >&2; done; exit 5`)
	pid, err := strconv.Atoi(c.field("lean", "{{.State.MonitorPid}}"))
	if err != nil {
		t.Fatal(err)
	}
	// The kernel names the new program before it lays out the new
	// command line: wait for both.
	var cmdline string
	waitFor(t, "the lean monitor", 5*time.Second, func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmdline = string(b)
		return strings.HasPrefix(filepath.Base(exe), "berth-monitor-") && cmdline != ""
	})
	if !strings.Contains(cmdline, "\x00lean\x00") || !strings.Contains(cmdline, c.field("lean", "{{.Id}}")) {
		t.Errorf("monitor command line %q", cmdline)
	}
	// Input through attach reaches the container; its end closes stdin.
	r := c.berthIn([]byte("hello\nworld\n"), "attach", "lean")
	if r.code != 5 || r.stdout != "echo:hello\necho:world\n" || r.stderr != "err:hello\nerr:world\n" {
		t.Errorf("attach: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the exit recorded", 10*time.Second, func() bool { return c.field("lean", "{{.State.Status}}") == "exited" })
	if got := c.field("lean", "{{.State.ExitCode}}"); got != "5" {
		t.Errorf("exit code %s", got)
	}
	started, err1 := time.Parse(time.RFC3339Nano, c.field("lean", "{{.State.StartedAt}}"))
	finished, err2 := time.Parse(time.RFC3339Nano, c.field("lean", "{{.State.FinishedAt}}"))
	if err1 != nil || err2 != nil || !finished.After(started) || time.Since(finished) > time.Minute {
		t.Errorf("started %v, finished %v (%v %v)", started, finished, err1, err2)
	}
	if got := c.must("logs", "lean"); got != "echo:hello\necho:world\n" {
		t.Errorf("logs %q", got)
	}
	waitFor(t, "the monitor gone", 10*time.Second, func() bool { return unix.Kill(pid, 0) != nil })
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(filepath.Join(c.root, "attach", c.field("lean", "{{.Id}}"))); !os.IsNotExist(err) {
		t.Errorf("attach socket left behind: %v", err)
	}
}

func TestContainerVolumes(t *testing.T) {
	c := newContainerEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new named volume mounted over image content starts with it.
	out := c.must("run", "--rm", "-v", "data:/data", "-v", host+":/host:ro", testImage, "sh", "-c",
		"cat /data/from-image.txt; cat /host/in.txt; echo kept > /data/kept.txt; touch /host/x 2>/dev/null || echo ro")
	if out != "from the image\nhost file\nro\n" {
		t.Errorf("volumes: %q", out)
	}
	// It survives the container.
	if got := c.must("run", "--rm", "-v", "data:/data", testImage, "cat", "/data/kept.txt"); got != "kept\n" {
		t.Errorf("volume after rm: %q", got)
	}
	if got := c.must("volume", "ls", "-q"); !strings.Contains(got, "data") {
		t.Errorf("volume ls: %q", got)
	}
	// --mount and anonymous volumes; rm -v removes the anonymous one.
	c.must("create", "--name", "anon", "-v", "/anon", "--mount", "type=volume,src=data,dst=/d2", "--mount", "type=tmpfs,dst=/t", testImage, "true")
	mounts := c.field("anon", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}")
	for _, want := range []string{"volume:/anon", "volume:/d2", "tmpfs:/t"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("mounts %q lack %s", mounts, want)
		}
	}
	anon := c.field("anon", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`)
	if r := c.berth("volume", "rm", "data"); r.code == 0 {
		t.Errorf("volume rm of a volume in use succeeded")
	}
	c.must("rm", "-v", "anon")
	if got := c.must("volume", "ls", "-q"); strings.Contains(got, anon) || !strings.Contains(got, "data") {
		t.Errorf("after rm -v: %q (anonymous %s)", got, anon)
	}
	c.must("volume", "rm", "data")
}

func TestContainerSignalsForeground(t *testing.T) {
	c := newContainerEnv(t)
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGQUIT} {
		cmd := c.cmd("run", "--rm", testImage, "/probe", "signals")
		outF := startLogged(t, cmd)
		waitFor(t, "probe ready", 10*time.Second, func() bool { return strings.Contains(readFile(t, outF.Name()), "ready") })
		_ = cmd.Process.Signal(sig)
		if sig != unix.SIGTERM {
			waitFor(t, "signal seen", 5*time.Second, func() bool { return strings.Contains(readFile(t, outF.Name()), "got") })
			_ = cmd.Process.Signal(unix.SIGTERM)
		}
		err := cmd.Wait()
		out := readFile(t, outF.Name())
		if !strings.Contains(out, "got "+unix.SignalName(sig)) {
			t.Errorf("%s: output %q", unix.SignalName(sig), out)
		}
		if err != nil {
			t.Errorf("%s: berth exited %v", unix.SignalName(sig), err)
		}
	}
}

// startLogged starts cmd with its stdout and stderr in a temporary file,
// which it returns.
func startLogged(t *testing.T, cmd *exec.Cmd) *os.File {
	t.Helper()
	outF, err := os.CreateTemp("", "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outF.Close(); os.Remove(outF.Name()) })
	cmd.Stdout, cmd.Stderr = outF, outF
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return outF
}

// TestContainerSignalEndsRestarts: a foreground berth that restarts its
// container (--restart always) forwards signals to it while it runs; a
// signal that comes during the back-off between two runs ends the restarts
// and berth exits with the last status, as a unit's stop expects.
func TestContainerSignalEndsRestarts(t *testing.T) {
	c := newContainerEnv(t)
	cmd := c.cmd("run", "--restart", "always", "--name", "looper", testImage, "sh", "-c", "echo run; exit 3")
	outF := startLogged(t, cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The back-off doubles from 100 ms: after the third run comes one of
	// 400 ms, much longer than a run of this container.
	waitFor(t, "three runs", 10*time.Second, func() bool { return strings.Count(readFile(t, outF.Name()), "run") >= 3 })
	time.Sleep(100 * time.Millisecond)
	_ = cmd.Process.Signal(unix.SIGTERM)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("berth after SIGTERM in the back-off: %v, want exit status 3", err)
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("berth went on restarting after SIGTERM: %q", readFile(t, outF.Name()))
	}
	if st := c.psStatus()["looper"]; !strings.HasPrefix(st, "Exited (3)") {
		t.Errorf("status after the restarts ended: %q", st)
	}
}

func TestContainerSdNotify(t *testing.T) {
	c := newContainerEnv(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 20})
	cmd := c.cmd("run", "--rm", "--sdnotify=container", testImage, "/probe", "notify", "READY=1", "STATUS=up")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run --sdnotify=container: %v %s", err, outb)
	}
	buf := make([]byte, 512)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	if msg := string(buf[:n]); !strings.Contains(msg, "READY=1") {
		t.Errorf("notification %q", msg)
	}
	// conmon mode: berth itself says READY=1.
	cmd = c.cmd("run", "--rm", "--sdnotify=conmon", testImage, "true")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run --sdnotify=conmon: %v %s", err, b)
	}
	n, _, err = unix.Recvfrom(fd, buf, 0)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Errorf("conmon notification %q %v", buf[:n], err)
	}
}

func TestContainerPidFileAndInit(t *testing.T) {
	c := newContainerEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	c.must("run", "-d", "--name", "p", "--init", "--pid-file", pidFile, testImage, "sh", "-c", "(sleep 0.1 &); sleep 100")
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file: %q", readFile(t, pidFile))
	}
	if got := c.field("p", "{{.State.Pid}}"); got != strconv.Itoa(pid) {
		t.Errorf("pid file %d, inspect %s", pid, got)
	}
	// With --init, pid 1 is berth's init and the command is its child.
	ps := c.must("exec", "p", "ps", "-o", "pid,comm")
	if !strings.Contains(ps, "1 init") {
		t.Errorf("ps with --init: %q", ps)
	}
	time.Sleep(300 * time.Millisecond)
	if zombies := c.must("exec", "p", "sh", "-c", "ps -o stat | grep -c Z || true"); strings.TrimSpace(zombies) != "0" {
		t.Errorf("zombies not reaped: %q", zombies)
	}
	start := time.Now()
	c.must("stop", "p")
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop with --init took %s: SIGTERM did not reach the command", time.Since(start))
	}
	if got := c.field("p", "{{.State.ExitCode}}"); got != "143" {
		t.Errorf("exit after stop via init: %s", got)
	}
}

func TestContainerConcurrentRuns(t *testing.T) {
	c := newContainerEnv(t)
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			out, err := c.cmd("run", "--rm", testImage, "echo", fmt.Sprint(i)).CombinedOutput()
			if err == nil && strings.TrimSpace(string(out)) != fmt.Sprint(i) {
				err = fmt.Errorf("output %q", out)
			}
			if err != nil {
				err = fmt.Errorf("run %d: %w: %s", i, err, out)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := strings.TrimSpace(c.must("ps", "-aq")); got != "" {
		t.Errorf("containers left: %q", got)
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if ents, _ := os.ReadDir(c.root); len(ents) > 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("state left: %v", names)
	}
	// Same names from many callers: exactly one wins.
	wins := make(chan bool, 10)
	for i := 0; i < 10; i++ {
		go func() { wins <- c.cmd("create", "--name", "one", testImage, "true").Run() == nil }()
	}
	won := 0
	for i := 0; i < 10; i++ {
		if <-wins {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d creates of the same name succeeded", won)
	}
}

func TestContainerCrashes(t *testing.T) {
	c := newContainerEnv(t)
	// kill -9 of the monitor: the container goes on, ps says so, rm -f cleans.
	c.must("run", "-d", "--name", "orphan", testImage, "sleep", "100")
	mon, _ := strconv.Atoi(c.field("orphan", "{{.State.MonitorPid}}"))
	if mon <= 0 {
		t.Fatalf("no monitor pid")
	}
	_ = unix.Kill(mon, unix.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if st := c.psStatus()["orphan"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("after monitor kill: %q", st)
	}
	pid, _ := strconv.Atoi(c.field("orphan", "{{.State.Pid}}"))
	_ = unix.Kill(pid, unix.SIGKILL)
	waitFor(t, "exited status", 5*time.Second, func() bool { return strings.HasPrefix(c.psStatus()["orphan"], "Exited (255)") })
	c.must("rm", "-f", "orphan")

	// kill -9 of a foreground berth.
	cmd := c.cmd("run", "--name", "fg", testImage, "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fg running", 10*time.Second, func() bool { return strings.HasPrefix(c.psStatus()["fg"], "Up ") })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if st := c.psStatus()["fg"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("after CLI kill: %q", st)
	}
	c.must("rm", "-f", "fg")

	// Reboot: the state root is wiped with the processes gone.
	c.must("run", "-d", "--name", "boot", testImage, "sleep", "100")
	pid, _ = strconv.Atoi(c.field("boot", "{{.State.Pid}}"))
	mon, _ = strconv.Atoi(c.field("boot", "{{.State.MonitorPid}}"))
	_ = unix.Kill(mon, unix.SIGKILL)
	_ = unix.Kill(pid, unix.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	ents, _ := os.ReadDir(c.root)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(c.root, e.Name()))
	}
	if st := c.psStatus()["boot"]; !strings.HasPrefix(st, "Exited") {
		t.Errorf("after reboot: %q", st)
	}
	c.must("start", "boot")
	if st := c.psStatus()["boot"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("start after reboot: %q", st)
	}
	c.must("stop", "-t", "0", "boot")
	out := c.must("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") || strings.TrimSpace(c.must("ps", "-aq")) != "" {
		t.Errorf("prune: %q", out)
	}
}

func TestContainerNetworkModes(t *testing.T) {
	c := newContainerEnv(t)
	// none: a private network namespace whose loopback is up.
	rep := c.probeRun()
	host, _ := os.Readlink("/proc/self/ns/net")
	if rep.Namespaces["net"] == host {
		t.Errorf("default network shares the host's namespace")
	}
	out := c.must("run", "--rm", testImage, "sh", "-c", "httpd -p 127.0.0.1:8080 -h /data && wget -qO- http://127.0.0.1:8080/from-image.txt")
	if out != "from the image\n" {
		t.Errorf("loopback traffic: %q", out)
	}
	rep = c.probeRun("--network", "host")
	if rep.Namespaces["net"] != host {
		t.Errorf("--network host: %s, host %s", rep.Namespaces["net"], host)
	}
}

// TestContainerCLIKilledAnyMoment kills `run -d` at moments spread over its
// run; whatever it left, ps -a reports and rm -f cleans up.
func TestContainerCLIKilledAnyMoment(t *testing.T) {
	c := newContainerEnv(t)
	for i := 0; i < 12; i++ {
		cmd := c.cmd("run", "-d", testImage, "sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*6) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	time.Sleep(300 * time.Millisecond)
	for name, st := range c.psStatus() {
		if !strings.HasPrefix(st, "Up ") && st != "Created" && !strings.HasPrefix(st, "Exited") {
			t.Errorf("%s: status %q", name, st)
		}
	}
	out := strings.Fields(c.must("ps", "-aq"))
	if len(out) > 0 {
		c.must(append([]string{"rm", "-f"}, out...)...)
	}
	if got := strings.TrimSpace(c.must("ps", "-aq")); got != "" {
		t.Errorf("left after rm -f: %q", got)
	}
	// What ps cannot see, a berth killed between a directory and its
	// record left half-made: prune removes it, cgroups included.
	made := map[string]bool{}
	for _, dir := range []string{filepath.Join(c.data, "containers"), c.root} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if len(e.Name()) == 64 {
				made[e.Name()] = true
			}
		}
	}
	c.must("container", "prune", "-f")
	for id := range made {
		for _, p := range []string{filepath.Join(c.data, "containers", id), filepath.Join(c.root, id)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left after prune", p)
			}
		}
		for _, d := range cgroupDirs("/berth/" + id) {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("cgroup %s left after prune", d)
				_ = unix.Rmdir(d)
			}
		}
	}
	if m := mountsUnder(c.data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if p := berthProcs(c.data); len(p) != 0 {
		t.Errorf("processes left: %v", p)
	}
}

func TestContainerForegroundKeepsNoLog(t *testing.T) {
	c := newContainerEnv(t)
	c.must("run", "--name", "fg", testImage, "echo", "passthrough")
	r := c.berth("logs", "fg")
	if r.code == 0 || !strings.Contains(r.stderr, "foreground") {
		t.Errorf("logs of a foreground run: exit %d %q", r.code, r.stderr)
	}
	// Started again under a monitor, it has a log.
	c.must("start", "-a", "fg")
	if got := c.must("logs", "fg"); got != "passthrough\n" {
		t.Errorf("logs after start -a: %q", got)
	}
}

func TestContainerOOMKilled(t *testing.T) {
	c := newContainerEnv(t)
	// The shell holds 64 MiB in a variable under a 16 MiB limit without swap.
	r := c.berth("run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", testImage,
		"sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
	if r.code != 137 || strings.Contains(r.stdout, "survived") {
		t.Errorf("hog: exit %d stdout %q", r.code, r.stdout)
	}
	if got := c.field("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"); got != "true 137" {
		t.Errorf("inspect: %q", got)
	}
	c.must("run", "--name", "calm", "-m", "16m", testImage, "true")
	if got := c.field("calm", "{{.State.OOMKilled}}"); got != "false" {
		t.Errorf("OOMKilled without an OOM kill: %q", got)
	}
}
