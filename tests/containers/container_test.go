package containers

import (
	"errors"
	"fmt"
	"io/fs"
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

func TestContainerRunForeground(t *testing.T) {
	c := rig.NewContainerEnv(t)
	if r := c.Berth("run", "--rm", rig.TestImage, "echo", "hello"); r.Code != 0 || r.Stdout != "hello\n" {
		t.Fatalf("run echo: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
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
			args = append([]string{"run", "--rm", rig.TestImage}, tc.args...)
		} else {
			args = append([]string{"run", "--rm", "--init", rig.TestImage}, tc.args[1:]...)
		}
		r := c.Berth(args...)
		if r.Code != tc.code {
			t.Errorf("run %v: exit %d, want %d (stderr %q)", tc.args, r.Code, tc.code, r.Stderr)
		}
		if tc.err != "" && (!strings.Contains(r.Stderr, tc.err) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0) {
			t.Errorf("run %v: stderr %q, want one line naming %q", tc.args, r.Stderr, tc.err)
		}
	}
	// Stdin reaches the container with -i, and stdout/stderr stay apart.
	r := c.BerthIn([]byte("from stdin\n"), "run", "--rm", "-i", rig.TestImage, "sh", "-c", "cat; echo err >&2")
	if r.Stdout != "from stdin\n" || r.Stderr != "err\n" {
		t.Errorf("run -i: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("--rm left containers: %q", got)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("--rm left mounts: %v", m)
	}
}

func TestContainerBadInput(t *testing.T) {
	c := rig.NewContainerEnv(t)
	for _, args := range [][]string{
		{"run", "--rm", "no-such-image-here.invalid/x"},
		{"run", "--rm", "-m", "lots", rig.TestImage, "true"},
		{"run", "--rm", "--cpus", "x", rig.TestImage, "true"},
		{"run", "--rm", "--restart", "sometimes", rig.TestImage, "true"},
		{"run", "--rm", "--mount", "type=bind,src=/no/such/host/dir,dst=/x", rig.TestImage, "true"}, // -v would create it
		{"run", "--rm", "--name", "bad/name", rig.TestImage, "true"},
		{"run", "--rm", "-p", "1:2:3:4", rig.TestImage, "true"},
		{"run", "--rm", "-u", "nosuchuser", rig.TestImage, "true"},
		{"stop", "nosuchcontainer"},
		{"logs", "nosuchcontainer"},
	} {
		r := c.Berth(args...)
		// A missing image is looked for in a registry first, with a note
		// saying so; the error is the last line.
		errLines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if strings.HasPrefix(errLines[0], "Unable to find image") {
			errLines = errLines[1:]
		}
		if r.Code == 0 || len(errLines) != 1 || errLines[0] == "" {
			t.Errorf("berth %v: exit %d stderr %q; want an error in one line", args, r.Code, r.Stderr)
		}
		if args[0] == "run" && r.Code != 125 {
			t.Errorf("berth %v: exit %d, want 125", args, r.Code)
		}
	}
	c.Must("create", "--name", "taken", rig.TestImage, "true")
	if r := c.Berth("create", "--name", "taken", rig.TestImage, "true"); r.Code != 125 || !strings.Contains(r.Stderr, "already in use") {
		t.Errorf("duplicate name: exit %d stderr %q", r.Code, r.Stderr)
	}
	if got := strings.Fields(c.Must("ps", "-aq")); len(got) != 1 {
		t.Errorf("failed runs left containers: %v", got)
	}
	vols := strings.TrimSpace(c.Must("volume", "ls", "-q"))
	if vols != "" {
		t.Errorf("failed runs left volumes: %q", vols)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("failed runs left mounts: %v", m)
	}
}

func TestContainerConfigFromFlags(t *testing.T) {
	c := rig.NewContainerEnv(t)
	rep := c.ProbeRun("-h", "myhost", "-e", "FOO=bar", "-w", "/work/dir", "-u", "app", "--cap-drop", "ALL", "--cap-add", "NET_RAW")
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
	rep = c.ProbeRun("--read-only", "--tmpfs", "/scratch:size=1m", "--ulimit", "nofile=512:1024")
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
	rep = c.ProbeRun("--privileged")
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
	c := rig.NewContainerEnv(t)
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "lim", "-m", "64m", "--cpus", "0.5", "--pids-limit", "100",
		"--memory-reservation", "32m", "--cpu-shares", "512", "--cpuset-cpus", "0", rig.TestImage, "sleep", "100"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an id", id)
	}
	cg := "/berth/" + id
	if got := rig.HostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "100" {
		t.Errorf("pids limit %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "cpu.max", "cpu/cpu.cfs_quota_us"); got != "50000 100000" && got != "50000" {
		t.Errorf("cpu quota %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "memory.low", "memory/memory.soft_limit_in_bytes"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory reservation %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "cpuset.cpus", "cpuset/cpuset.cpus"); got != "0" {
		t.Errorf("cpuset %s", got)
	}
	// cgroup v2 has cpu.weight; runc's conversion makes 512 shares 20.
	if got := rig.HostCgroupFile(t, cg, "cpu.weight", "cpu/cpu.shares"); got != "512" && got != "20" {
		t.Errorf("cpu shares %s", got)
	}
	// The container sees its own limit through its cgroup namespace.
	in := strings.TrimSpace(c.Must("exec", "lim", "sh", "-c", "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"))
	if in != strconv.Itoa(64<<20) {
		t.Errorf("limit seen inside: %q", in)
	}
	stats := c.Must("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "lim")
	if !strings.HasPrefix(stats, "lim ") || !strings.Contains(stats, "/ 64MiB") {
		t.Errorf("stats: %q", stats)
	}
	top := c.Must("top", "lim")
	if !strings.Contains(top, "PID") || !strings.Contains(top, "sleep 100") {
		t.Errorf("top: %q", top)
	}
	c.Must("rm", "-f", "lim")
	for _, d := range rig.CgroupDirs(cg) {
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
			dirs = rig.CgroupDirs("/" + parent + "/berth-" + id)
		}
		dirs = append(dirs, rig.CgroupDirs("/"+parent)...)
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
		// Checked by looking at every mount, not through rig.CgroupDirs.
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
	id = strings.TrimSpace(c.Must("run", "-d", "--cgroup-parent", parent, "--pids-limit", "7", rig.TestImage, "sleep", "100"))
	if got := rig.HostCgroupFile(t, "/"+parent+"/berth-"+id, "pids.max", "pids/pids.max"); got != "7" {
		t.Errorf("pids limit under --cgroup-parent: %s", got)
	}
	c.Must("rm", "-f", id)
}

// TestContainerPidsLimitOne runs containers held to one process, fewer
// than the threads of berth's own init: the container's program starts,
// sees its limit and cannot fork. On cgroup v2 the init is born in the
// cgroup, and a limit written while its Go runtime still starts threads
// made it die (exit 2) now and then; it writes the limit last.
func TestContainerPidsLimitOne(t *testing.T) {
	c := rig.NewContainerEnv(t)
	script := `f=/sys/fs/cgroup/pids.max; [ -e $f ] || f=/sys/fs/cgroup/pids/pids.max; read l < $f; echo limit=$l; /bin/true && echo forked`
	for i := 0; i < 20; i++ {
		r := c.Berth("run", "--rm", "--pids-limit", "1", rig.TestImage, "sh", "-c", script)
		if !strings.Contains(r.Stdout, "limit=1\n") {
			t.Fatalf("run %d: exit %d, stdout %q, stderr %q", i, r.Code, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout, "forked") {
			t.Fatalf("run %d: the container forked past --pids-limit 1: %q", i, r.Stdout)
		}
	}
}

func TestContainerDetachedLifecycle(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "web", rig.TestImage, "sh", "-c", "echo out; echo err >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done")
	if st := c.PsStatus()["web"]; !strings.HasPrefix(st, "Up ") {
		t.Fatalf("ps status %q", st)
	}
	if got := c.Must("ps", "--format", "{{.Names}} {{.Image}} {{.State}}"); !strings.Contains(got, "web "+rig.TestImage+" running") {
		t.Errorf("ps: %q", got)
	}
	rig.WaitFor(t, "log lines", 5*time.Second, func() bool { return strings.Contains(c.Must("logs", "web"), "tick 3") })
	r := c.Berth("logs", "web")
	if !strings.HasPrefix(r.Stdout, "out\n") || r.Stderr != "err\n" {
		t.Errorf("logs: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if got := c.Must("logs", "--tail", "1", "web"); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "tick ") {
		t.Errorf("logs --tail 1: %q", got)
	}
	if got := c.Must("logs", "-t", "--tail", "1", "web"); !strings.Contains(got, "Z tick ") {
		t.Errorf("logs -t: %q", got)
	}
	// The log file is Docker's json-file.
	logPath := c.Field("web", "{{.LogPath}}")
	raw := rig.ReadFile(t, logPath)
	if !strings.Contains(raw, `{"log":"out\n","stream":"stdout","time":"`) || !strings.Contains(raw, `"stream":"stderr"`) {
		t.Errorf("json-file log: %.200q", raw)
	}
	// exec: output, exit code, env and user.
	if got := c.Must("exec", "-e", "X=1", "-u", "app", "web", "sh", "-c", "echo $X $(id -u)"); got != "1 1000\n" {
		t.Errorf("exec: %q", got)
	}
	// exec -e checks names as run -e does.
	for _, bad := range []string{"=x", "A B=1"} {
		if r := c.Berth("exec", "-e", bad, "web", "true"); r.Code != 125 || !strings.Contains(r.Stderr, "invalid environment variable") {
			t.Errorf("exec -e %q: code %d, stderr %q", bad, r.Code, r.Stderr)
		}
	}
	if r := c.Berth("exec", "web", "sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exec exit %d", r.Code)
	}
	if r := c.Berth("exec", "web", "nosuchcmd"); r.Code != 127 {
		t.Errorf("exec of a missing command: exit %d", r.Code)
	}
	c.Must("pause", "web")
	if st := c.Field("web", "{{.State.Status}}"); st != "paused" {
		t.Errorf("paused state %q", st)
	}
	c.Must("unpause", "web")
	// stop: SIGTERM is ignored by sh as pid 1, so the kill after -t.
	start := time.Now()
	c.Must("stop", "-t", "1", "web")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop took %s", d)
	}
	if st := c.PsStatus()["web"]; !strings.HasPrefix(st, "Exited (137)") {
		t.Errorf("status after stop %q", st)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("stopped container keeps mounts: %v", m)
	}
	// Logs survive the monitor.
	if got := c.Must("logs", "web"); !strings.Contains(got, "tick 3") {
		t.Errorf("logs after stop: %q", got)
	}
	c.Must("start", "web")
	rig.WaitFor(t, "restart", 5*time.Second, func() bool { return strings.HasPrefix(c.PsStatus()["web"], "Up ") })
	c.Must("restart", "-t", "0", "web")
	if st := c.Field("web", "{{.State.Status}}"); st != "running" {
		t.Errorf("after restart: %q", st)
	}
	c.Must("rename", "web", "web2")
	c.Must("kill", "web2")
	if got := strings.TrimSpace(c.Must("wait", "web2")); got != "137" {
		t.Errorf("wait after kill: %q", got)
	}
	if r := c.Berth("rm", "web"); r.Code == 0 {
		t.Errorf("rm of the old name succeeded")
	}
	c.Must("rm", "web2")
	if _, err := os.Stat(logPath); !os.IsNotExist(err) {
		t.Errorf("rm left the log: %v", err)
	}
}

func TestContainerLogsFollow(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "f", rig.TestImage, "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; exit 4")
	out := c.Must("logs", "-f", "f")
	if out != "line 1\nline 2\nline 3\n" {
		t.Errorf("logs -f: %q", out)
	}
	if got := c.Field("f", "{{.State.ExitCode}}"); got != "4" {
		t.Errorf("exit code %s", got)
	}
	if st := c.PsStatus()["f"]; !strings.HasPrefix(st, "Exited (4)") {
		t.Errorf("ps: %q", st)
	}
}

func TestContainerRestartPolicy(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "flaky", "--restart", "on-failure:2", rig.TestImage, "sh", "-c", "echo run; exit 1")
	rig.WaitFor(t, "two restarts", 15*time.Second, func() bool {
		return c.Field("flaky", "{{.State.Status}}") == "exited" && c.Field("flaky", "{{.RestartCount}}") == "2"
	})
	if got := strings.Count(c.Must("logs", "flaky"), "run\n"); got != 3 {
		t.Errorf("ran %d times, want 3", got)
	}
	c.Must("run", "-d", "--name", "always", "--restart", "always", rig.TestImage, "sh", "-c", "sleep 0.2; exit 0")
	rig.WaitFor(t, "a restart", 10*time.Second, func() bool {
		n, _ := strconv.Atoi(c.Field("always", "{{.RestartCount}}"))
		return n >= 1
	})
	c.Must("stop", "-t", "1", "always")
	n := c.Field("always", "{{.RestartCount}}")
	time.Sleep(time.Second)
	if st, n2 := c.Field("always", "{{.State.Status}}"), c.Field("always", "{{.RestartCount}}"); st != "exited" || n2 != n {
		t.Errorf("after stop: status %s restarts %s -> %s", st, n, n2)
	}
}

func TestContainerAutoRemoveDetached(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--rm", "--name", "gone", rig.TestImage, "sh", "-c", "sleep 0.3")
	rig.WaitFor(t, "removal", 10*time.Second, func() bool { return !strings.Contains(c.Must("ps", "-a"), "gone") })
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestContainerLeanMonitor follows a detached container's monitor: the
// lean monitor program, the parent of the container's init, serves its
// input and output, and hands back to berth, which records the exit.
func TestContainerLeanMonitor(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "-i", "--name", "lean", rig.TestImage, "sh", "-c", `while read l; do echo "echo:$l"; echo "err:$l" >&2; done; exit 5`)
	pid, err := strconv.Atoi(c.Field("lean", "{{.State.MonitorPid}}"))
	if err != nil {
		t.Fatal(err)
	}
	// The program serves berth first, then execs itself into its loop;
	// the kernel names the new program before it lays out the new
	// command line: wait for both.
	var cmdline string
	rig.WaitFor(t, "the lean monitor", 5*time.Second, func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		cmdline = string(b)
		return strings.HasPrefix(filepath.Base(exe), "berth-monitor-") && strings.Contains(cmdline, "\x00lean\x00")
	})
	if !strings.Contains(cmdline, c.Field("lean", "{{.Id}}")) || strings.Contains(cmdline, "=@") {
		t.Errorf("monitor command line %q", cmdline)
	}
	initPid, err := strconv.Atoi(c.Field("lean", "{{.State.Pid}}"))
	if err != nil {
		t.Fatal(err)
	}
	if ppid := rig.ParentPid(t, initPid); ppid != pid {
		t.Errorf("the container's parent is %d, want its monitor %d", ppid, pid)
	}
	// Input through attach reaches the container; its end closes stdin.
	r := c.BerthIn([]byte("hello\nworld\n"), "attach", "lean")
	if r.Code != 5 || r.Stdout != "echo:hello\necho:world\n" || r.Stderr != "err:hello\nerr:world\n" {
		t.Errorf("attach: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	rig.WaitFor(t, "the exit recorded", 10*time.Second, func() bool { return c.Field("lean", "{{.State.Status}}") == "exited" })
	if got := c.Field("lean", "{{.State.ExitCode}}"); got != "5" {
		t.Errorf("exit code %s", got)
	}
	started, err1 := time.Parse(time.RFC3339Nano, c.Field("lean", "{{.State.StartedAt}}"))
	finished, err2 := time.Parse(time.RFC3339Nano, c.Field("lean", "{{.State.FinishedAt}}"))
	if err1 != nil || err2 != nil || !finished.After(started) || time.Since(finished) > time.Minute {
		t.Errorf("started %v, finished %v (%v %v)", started, finished, err1, err2)
	}
	if got := c.Must("logs", "lean"); got != "echo:hello\necho:world\n" {
		t.Errorf("logs %q", got)
	}
	rig.WaitFor(t, "the monitor gone", 10*time.Second, func() bool { return unix.Kill(pid, 0) != nil })
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if _, err := os.Stat(filepath.Join(c.Root, "attach", c.Field("lean", "{{.Id}}"))); !os.IsNotExist(err) {
		t.Errorf("attach socket left behind: %v", err)
	}
}

func TestContainerVolumes(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in.txt"), []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A new named volume mounted over image content starts with it.
	out := c.Must("run", "--rm", "-v", "data:/data", "-v", host+":/host:ro", rig.TestImage, "sh", "-c",
		"cat /data/from-image.txt; cat /host/in.txt; echo kept > /data/kept.txt; touch /host/x 2>/dev/null || echo ro")
	if out != "from the image\nhost file\nro\n" {
		t.Errorf("volumes: %q", out)
	}
	// It survives the container.
	if got := c.Must("run", "--rm", "-v", "data:/data", rig.TestImage, "cat", "/data/kept.txt"); got != "kept\n" {
		t.Errorf("volume after rm: %q", got)
	}
	if got := c.Must("volume", "ls", "-q"); !strings.Contains(got, "data") {
		t.Errorf("volume ls: %q", got)
	}
	// --mount and anonymous volumes; rm -v removes the anonymous one.
	c.Must("create", "--name", "anon", "-v", "/anon", "--mount", "type=volume,src=data,dst=/d2", "--mount", "type=tmpfs,dst=/t", rig.TestImage, "true")
	mounts := c.Field("anon", "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}")
	for _, want := range []string{"volume:/anon", "volume:/d2", "tmpfs:/t"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("mounts %q lack %s", mounts, want)
		}
	}
	anon := c.Field("anon", `{{range .Mounts}}{{if eq .Destination "/anon"}}{{.Name}}{{end}}{{end}}`)
	if r := c.Berth("volume", "rm", "data"); r.Code == 0 {
		t.Errorf("volume rm of a volume in use succeeded")
	}
	c.Must("rm", "-v", "anon")
	if got := c.Must("volume", "ls", "-q"); strings.Contains(got, anon) || !strings.Contains(got, "data") {
		t.Errorf("after rm -v: %q (anonymous %s)", got, anon)
	}
	c.Must("volume", "rm", "data")
}

func TestContainerSignalsForeground(t *testing.T) {
	c := rig.NewContainerEnv(t)
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGQUIT} {
		cmd := c.Cmd("run", "--rm", rig.TestImage, "/probe", "signals")
		outF := startLogged(t, cmd)
		rig.WaitFor(t, "probe ready", 10*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, outF.Name()), "ready") })
		_ = cmd.Process.Signal(sig)
		if sig != unix.SIGTERM {
			rig.WaitFor(t, "signal seen", 5*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, outF.Name()), "got") })
			_ = cmd.Process.Signal(unix.SIGTERM)
		}
		err := cmd.Wait()
		out := rig.ReadFile(t, outF.Name())
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
	c := rig.NewContainerEnv(t)
	cmd := c.Cmd("run", "--restart", "always", "--name", "looper", rig.TestImage, "sh", "-c", "echo run; exit 3")
	outF := startLogged(t, cmd)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The back-off doubles from 100 ms: after the third run comes one of
	// 400 ms, much longer than a run of this container.
	rig.WaitFor(t, "three runs", 10*time.Second, func() bool { return strings.Count(rig.ReadFile(t, outF.Name()), "run") >= 3 })
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
		t.Fatalf("berth went on restarting after SIGTERM: %q", rig.ReadFile(t, outF.Name()))
	}
	if st := c.PsStatus()["looper"]; !strings.HasPrefix(st, "Exited (3)") {
		t.Errorf("status after the restarts ended: %q", st)
	}
}

func TestContainerSdNotify(t *testing.T) {
	c := rig.NewContainerEnv(t)
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
	cmd := c.Cmd("run", "--rm", "--sdnotify=container", rig.TestImage, "/probe", "notify", "READY=1", "STATUS=up")
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
	cmd = c.Cmd("run", "--rm", "--sdnotify=conmon", rig.TestImage, "true")
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
	c := rig.NewContainerEnv(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	c.Must("run", "-d", "--name", "p", "--init", "--pid-file", pidFile, rig.TestImage, "sh", "-c", "(sleep 0.1 &); sleep 100")
	pid, err := strconv.Atoi(strings.TrimSpace(rig.ReadFile(t, pidFile)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file: %q", rig.ReadFile(t, pidFile))
	}
	if got := c.Field("p", "{{.State.Pid}}"); got != strconv.Itoa(pid) {
		t.Errorf("pid file %d, inspect %s", pid, got)
	}
	// With --init, pid 1 is berth's init and the command is its child.
	ps := c.Must("exec", "p", "ps", "-o", "pid,comm")
	if !strings.Contains(ps, "1 init") {
		t.Errorf("ps with --init: %q", ps)
	}
	time.Sleep(300 * time.Millisecond)
	if zombies := c.Must("exec", "p", "sh", "-c", "ps -o stat | grep -c Z || true"); strings.TrimSpace(zombies) != "0" {
		t.Errorf("zombies not reaped: %q", zombies)
	}
	start := time.Now()
	c.Must("stop", "p")
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop with --init took %s: SIGTERM did not reach the command", time.Since(start))
	}
	if got := c.Field("p", "{{.State.ExitCode}}"); got != "143" {
		t.Errorf("exit after stop via init: %s", got)
	}
}

func TestContainerConcurrentRuns(t *testing.T) {
	c := rig.NewContainerEnv(t)
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			out, err := c.Cmd("run", "--rm", rig.TestImage, "echo", fmt.Sprint(i)).CombinedOutput()
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
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("containers left: %q", got)
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	// Nothing of the containers is left in the state root: only the
	// helper programs and the (empty) directories berth keeps there.
	var left []string
	_ = filepath.WalkDir(c.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == c.Root {
			return nil
		}
		if d.Name() == ".helpers" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			left = append(left, strings.TrimPrefix(p, c.Root+"/"))
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("state left: %v", left)
	}
	// Same names from many callers: exactly one wins.
	wins := make(chan bool, 10)
	for i := 0; i < 10; i++ {
		go func() { wins <- c.Cmd("create", "--name", "one", rig.TestImage, "true").Run() == nil }()
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
	c := rig.NewContainerEnv(t)
	// kill -9 of the monitor: the container goes on, ps says so, rm -f cleans.
	c.Must("run", "-d", "--name", "orphan", rig.TestImage, "sleep", "100")
	mon, _ := strconv.Atoi(c.Field("orphan", "{{.State.MonitorPid}}"))
	if mon <= 0 {
		t.Fatalf("no monitor pid")
	}
	_ = unix.Kill(mon, unix.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	if st := c.PsStatus()["orphan"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("after monitor kill: %q", st)
	}
	pid, _ := strconv.Atoi(c.Field("orphan", "{{.State.Pid}}"))
	_ = unix.Kill(pid, unix.SIGKILL)
	rig.WaitFor(t, "exited status", 5*time.Second, func() bool { return strings.HasPrefix(c.PsStatus()["orphan"], "Exited (255)") })
	c.Must("rm", "-f", "orphan")

	// kill -9 of a foreground berth.
	cmd := c.Cmd("run", "--name", "fg", rig.TestImage, "sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rig.WaitFor(t, "fg running", 10*time.Second, func() bool { return strings.HasPrefix(c.PsStatus()["fg"], "Up ") })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if st := c.PsStatus()["fg"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("after CLI kill: %q", st)
	}
	c.Must("rm", "-f", "fg")

	// Reboot: the state root is wiped with the processes gone.
	c.Must("run", "-d", "--name", "boot", rig.TestImage, "sleep", "100")
	pid, _ = strconv.Atoi(c.Field("boot", "{{.State.Pid}}"))
	mon, _ = strconv.Atoi(c.Field("boot", "{{.State.MonitorPid}}"))
	_ = unix.Kill(mon, unix.SIGKILL)
	_ = unix.Kill(pid, unix.SIGKILL)
	time.Sleep(200 * time.Millisecond)
	ents, _ := os.ReadDir(c.Root)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(c.Root, e.Name()))
	}
	if st := c.PsStatus()["boot"]; !strings.HasPrefix(st, "Exited") {
		t.Errorf("after reboot: %q", st)
	}
	c.Must("start", "boot")
	if st := c.PsStatus()["boot"]; !strings.HasPrefix(st, "Up ") {
		t.Errorf("start after reboot: %q", st)
	}
	c.Must("stop", "-t", "0", "boot")
	out := c.Must("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") || strings.TrimSpace(c.Must("ps", "-aq")) != "" {
		t.Errorf("prune: %q", out)
	}
}

func TestContainerNetworkModes(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// none: a private network namespace whose loopback is up.
	rep := c.ProbeRun()
	host, _ := os.Readlink("/proc/self/ns/net")
	if rep.Namespaces["net"] == host {
		t.Errorf("default network shares the host's namespace")
	}
	out := c.Must("run", "--rm", rig.TestImage, "sh", "-c", "httpd -p 127.0.0.1:8080 -h /data && wget -qO- http://127.0.0.1:8080/from-image.txt")
	if out != "from the image\n" {
		t.Errorf("loopback traffic: %q", out)
	}
	rep = c.ProbeRun("--network", "host")
	if rep.Namespaces["net"] != host {
		t.Errorf("--network host: %s, host %s", rep.Namespaces["net"], host)
	}
}

// TestContainerCLIKilledAnyMoment kills `run -d` at moments spread over its
// run; whatever it left, ps -a reports and rm -f cleans up.
func TestContainerCLIKilledAnyMoment(t *testing.T) {
	c := rig.NewContainerEnv(t)
	for i := 0; i < 12; i++ {
		cmd := c.Cmd("run", "-d", rig.TestImage, "sleep", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*6) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	time.Sleep(300 * time.Millisecond)
	for name, st := range c.PsStatus() {
		if !strings.HasPrefix(st, "Up ") && st != "Created" && !strings.HasPrefix(st, "Exited") {
			t.Errorf("%s: status %q", name, st)
		}
	}
	out := strings.Fields(c.Must("ps", "-aq"))
	if len(out) > 0 {
		c.Must(append([]string{"rm", "-f"}, out...)...)
	}
	if got := strings.TrimSpace(c.Must("ps", "-aq")); got != "" {
		t.Errorf("left after rm -f: %q", got)
	}
	// What ps cannot see, a berth killed between a directory and its
	// record left half-made: prune removes it, cgroups included.
	made := map[string]bool{}
	for _, dir := range []string{filepath.Join(c.Data, "containers"), c.Root} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if len(e.Name()) == 64 {
				made[e.Name()] = true
			}
		}
	}
	c.Must("container", "prune", "-f")
	for id := range made {
		for _, p := range []string{filepath.Join(c.Data, "containers", id), filepath.Join(c.Root, id)} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left after prune", p)
			}
		}
		for _, d := range rig.CgroupDirs("/berth/" + id) {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("cgroup %s left after prune", d)
				_ = unix.Rmdir(d)
			}
		}
	}
	if m := rig.MountsUnder(c.Data); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if p := rig.BerthProcs(c.Data); len(p) != 0 {
		t.Errorf("processes left: %v", p)
	}
}

func TestContainerForegroundKeepsNoLog(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "--name", "fg", rig.TestImage, "echo", "passthrough")
	r := c.Berth("logs", "fg")
	if r.Code == 0 || !strings.Contains(r.Stderr, "foreground") {
		t.Errorf("logs of a foreground run: exit %d %q", r.Code, r.Stderr)
	}
	// Started again under a monitor, it has a log.
	c.Must("start", "-a", "fg")
	if got := c.Must("logs", "fg"); got != "passthrough\n" {
		t.Errorf("logs after start -a: %q", got)
	}
}

func TestContainerOOMKilled(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// The shell holds 64 MiB in a variable under a 16 MiB limit without swap.
	r := c.Berth("run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", rig.TestImage,
		"sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived")
	if r.Code != 137 || strings.Contains(r.Stdout, "survived") {
		t.Errorf("hog: exit %d stdout %q", r.Code, r.Stdout)
	}
	if got := c.Field("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"); got != "true 137" {
		t.Errorf("inspect: %q", got)
	}
	c.Must("run", "--name", "calm", "-m", "16m", rig.TestImage, "true")
	if got := c.Field("calm", "{{.State.OOMKilled}}"); got != "false" {
		t.Errorf("OOMKilled without an OOM kill: %q", got)
	}
}
