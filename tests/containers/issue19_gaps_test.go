package containers

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// exec -it --detach-keys: the keys end berth's session and leave the
// command running on its terminal (a hang-up would end it).
func TestExecDetachKeys(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")
	if r := c.Berth("exec", "-it", "--detach-keys", "ctrl-", "box", "true"); !rig.UsageError(r) {
		t.Errorf("--detach-keys ctrl-: %+v", r)
	}
	for _, tc := range []struct{ flag, keys string }{{"ctrl-x,x", "\x18x"}, {"", "\x10\x11"}} {
		p := rig.OpenPty(t)
		args := []string{"exec", "-it"}
		if tc.flag != "" {
			args = append(args, "--detach-keys", tc.flag)
		}
		cmd := c.Cmd(append(args, "box", "sh")...)
		p.Start(t, cmd)
		mark := "/detached" + strings.ReplaceAll(tc.flag, ",", "")
		// The command in the foreground when the user detaches finishes
		// its work afterwards; then its shell writes a second mark.
		_, _ = p.Master.Write([]byte("echo started; sleep 2; touch " + mark + "; touch " + mark + ".sh\n"))
		waitOutput(t, p, "started\r\n")
		_, _ = p.Master.Write([]byte(tc.keys))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("detach %q: berth exited %v", tc.flag, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("detach keys %q did not detach", tc.flag)
		}
		rig.WaitFor(t, "the detached exec's mark "+mark, 15*time.Second, func() bool {
			return c.Berth("exec", "box", "test", "-f", mark+".sh").Code == 0
		})
		if out := c.Must("exec", "box", "ps", "-o", "args"); !strings.Contains(out, "sh\n") {
			t.Errorf("the detached shell is gone:\n%s", out)
		}
	}
	// Without -t there is nothing to detach from: the keys pass through.
	r := c.BerthIn([]byte("\x10\x11end\n"), "exec", "-i", "box", "cat")
	if r.Code != 0 || r.Stdout != "\x10\x11end\n" {
		t.Errorf("exec -i with the keys in its input: %+v", r)
	}
}

// A healthcheck's exec is journalled as Docker journals it: exec_create
// and exec_start with the check's command, exec_die with its status, all
// under one execID; `berth events` shows them.
func TestHealthExecEvents(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "hc", "--health-cmd", "exit 3", "--health-interval", "300ms", rig.TestImage, "sleep", "300")
	rig.WaitFor(t, "two checks", 20*time.Second, func() bool { return len(health(c, "hc").Log) >= 2 })
	ev := c.Must("events", "--since", "1", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "container=hc", "--format", "{{.Actor.Attributes.execID}}|{{.Action}}|{{.Actor.Attributes.exitCode}}")
	byExec := map[string][]string{}
	var order []string
	for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
		id, rest, ok := strings.Cut(l, "|")
		if !ok || id == "" || id == "<no value>" {
			continue
		}
		if byExec[id] == nil {
			order = append(order, id)
		}
		byExec[id] = append(byExec[id], rest)
	}
	want := "exec_create: /bin/sh -c exit 3|<no value>,exec_start: /bin/sh -c exit 3|<no value>,exec_die|3"
	complete := 0
	for _, id := range order {
		got := strings.Join(byExec[id], ",")
		if got == want {
			complete++
		} else if !strings.HasPrefix(want, got) || id != order[len(order)-1] {
			// Only the last check may still be under way.
			t.Errorf("events of exec %s: %q, want %q", id, got, want)
		}
	}
	if complete < 2 {
		t.Errorf("%d checks journalled in full, want 2 or more; events:\n%s", complete, ev)
	}
	c.Must("rm", "-f", "hc")
}

// -a with -t: the terminal is one stream, stdout (as Docker): -a stdout
// gets all of it, -a stderr nothing. -a stdin alone passes the input,
// prints the container's ID (as Docker) and returns its status.
func TestRunAttachWithTTYAndStdinOnly(t *testing.T) {
	c := rig.NewContainerEnv(t)
	sh := []string{rig.TestImage, "sh", "-c", "echo out; echo err >&2"}
	r := c.Berth(append([]string{"run", "--rm", "-t", "-a", "stdout"}, sh...)...)
	if r.Code != 0 || r.Stdout != "out\r\nerr\r\n" || r.Stderr != "" {
		t.Errorf("-t -a stdout: %+v", r)
	}
	r = c.Berth(append([]string{"run", "--rm", "-t", "-a", "stderr"}, sh...)...)
	if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("-t -a stderr: %+v", r)
	}
	r = c.BerthIn([]byte("3\n"), "run", "--name", "in", "-i", "-a", "stdin", rig.TestImage, "sh", "-c", "read x; echo got $x; echo e >&2; exit $x")
	id := c.Field("in", "{{.Id}}")
	if r.Code != 3 || r.Stdout != id+"\n" || r.Stderr != "" {
		t.Errorf("-i -a stdin: %+v, want exit 3 (the input) and the ID %s", r, id)
	}
	c.Must("rm", "in")
}

// healthChecks are the running healthcheck processes of env c's
// containers, each with its parent (the container's monitor).
func healthChecks(c *rig.ContainerEnv) map[int]int {
	out := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(b), "\x00__health\x00--monitor\x00") || !strings.Contains(string(b), "\x00"+c.Root+"\x00") {
			continue
		}
		if ppid, _, ok := procParent(pid); ok {
			out[pid] = ppid
		}
	}
	return out
}

// procParent is pid's parent and state letter (Z: a zombie).
func procParent(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...: comm may hold spaces, not ")".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// A check under way when a detached container is restarted is ended and
// reaped by its monitor: none is left running or as a zombie without it.
func TestHealthCheckNotOrphanedByRestart(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// Each check takes longer than the interval: one is always under way.
	c.Must("run", "-d", "--name", "hz", "--health-cmd", "sleep 5", "--health-interval", "100ms", rig.TestImage, "sleep", "1000")
	for i := 0; i < 3; i++ {
		var seen map[int]int
		rig.WaitFor(t, "a check under way", 15*time.Second, func() bool {
			seen = healthChecks(c)
			return len(seen) > 0
		})
		c.Must("restart", "-t", "0", "hz")
		for pid, monitor := range seen {
			if ppid, state, ok := procParent(pid); ok && ppid != monitor {
				t.Errorf("restart %d: the check %d of monitor %d is left behind, state %s, parent %d", i, pid, monitor, state, ppid)
			}
		}
	}
	c.Must("rm", "-f", "hz")
}

// --uidmap/--gidmap (podman's) and --userns with a map: the container's
// root is root of a user namespace of its own, mapped as asked; the
// image's files are its own (id-mapped layers: not "nobody"), what it
// writes is owned by the mapped ids on the host, and exec and restart
// work. Malformed maps are refused.
func TestRunUserNamespaceIDMaps(t *testing.T) {
	// /tmp, not /var/tmp: the VMs keep /tmp on ext4 but /var/tmp on
	// tmpfs, which Linux 6.1 cannot id-map.
	data, err := os.MkdirTemp("/tmp", "berth-it-userns")
	if err != nil {
		t.Fatal(err)
	}
	c := rig.NewContainerEnvIn(t, data)
	if r := c.Berth("run", "--rm", "--uidmap", "0:100000:65536", rig.TestImage, "true"); r.Code != 0 && strings.Contains(r.Stderr, "cannot be id-mapped on this kernel") {
		t.Skipf("the data root's filesystem has no id-mapped mounts on this kernel, so id maps cannot work here: %s", r.Stderr)
	}
	look := "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c '%u:%g' /bin/busybox /etc; touch /etc/written && echo wrote"
	for _, tc := range []struct {
		flags []string
		maps  string
	}{
		{[]string{"--uidmap", "0:100000:65536"}, "0 100000 65536\n0 100000 65536\n"},
		{[]string{"--userns", "0:100000:65536"}, "0 100000 65536\n0 100000 65536\n"},
		{[]string{"--uidmap", "0:200000:65536", "--gidmap", "0:300000:65536"}, "0 200000 65536\n0 300000 65536\n"},
	} {
		out := c.Must(append(append([]string{"run", "--rm"}, tc.flags...), rig.TestImage, "sh", "-c", look)...)
		want := "0\n0\n" + tc.maps + "0:0\n0:0\nwrote\n"
		if strings.Join(strings.Fields(out), " ") != strings.Join(strings.Fields(want), " ") {
			t.Errorf("run %v:\n%s\nwant:\n%s", tc.flags, out, want)
		}
	}
	// A named volume (under the data root) is reachable too.
	c.Must("run", "-d", "--name", "um", "--uidmap", "0:200000:65536", "--gidmap", "0:300000:65536", "-v", "umvol:/vol", rig.TestImage, "sleep", "300")
	if out := c.Must("exec", "um", "sh", "-c", "id -u; touch /made-by-root; test -d /vol && echo vol"); out != "0\nvol\n" {
		t.Errorf("exec: %q", out)
	}
	id := c.Field("um", "{{.Id}}")
	var made []string
	_ = filepath.WalkDir(c.Data, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "made-by-root" && strings.Contains(p, id) {
			made = append(made, p)
		}
		return nil
	})
	for _, p := range made {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Uid != 200000 || st.Gid != 300000 {
			t.Errorf("%s on the host: owner %d:%d (%v), want 200000:300000", p, st.Uid, st.Gid, err)
		}
	}
	if len(made) == 0 {
		t.Errorf("the container's new file is nowhere under the data root")
	}
	c.Must("restart", "-t", "0", "um")
	if out := c.Must("exec", "um", "stat", "-c", "%u:%g", "/made-by-root"); out != "0:0\n" {
		t.Errorf("after restart, the container's file is %q", out)
	}
	c.Must("rm", "-f", "-v", "um")
	for _, bad := range [][]string{{"--uidmap", "0:100000"}, {"--gidmap", "a:b:c"}, {"--uidmap", "0:1:0"}, {"--userns", "keep-id"}} {
		if r := c.Berth(append(append([]string{"run", "--rm", "--name", "bad"}, bad...), rig.TestImage, "true")...); !rig.UsageError(r) {
			t.Errorf("run %v: %+v", bad, r)
		}
	}
	if out := c.Must("ps", "-aq"); out != "" {
		t.Errorf("left containers: %q", out)
	}
}
