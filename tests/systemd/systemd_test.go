// Package systemd runs berth from real systemd units and asserts on what
// systemd reports about them (systemctl show, journalctl -u). It needs
// systemd as PID 1, which only the VM harness gives (make vmtest
// CGROUP=systemd); elsewhere every test skips and says so. Under the
// harness (BERTH_VM_SYSTEMD=1) a missing systemd is a failure.
package systemd

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

func TestMain(m *testing.M) {
	if !systemdIsInit() {
		if os.Getenv("BERTH_VM_SYSTEMD") == "1" {
			fmt.Fprintln(os.Stderr, "tests/systemd: BERTH_VM_SYSTEMD=1 but systemd is not PID 1")
			os.Exit(1)
		}
		// The tests report themselves skipped with the reason.
		os.Exit(m.Run())
	}
	rig.Main(m)
}

// systemdIsInit says whether PID 1 is systemd (its runtime directory is
// systemd's own test for that).
func systemdIsInit() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// sdEnv is a container env for tests that need systemd as PID 1.
func sdEnv(t *testing.T) *rig.ContainerEnv {
	t.Helper()
	if !systemdIsInit() {
		t.Skip("systemd is not PID 1 here: tests/systemd runs in the VM harness (make vmtest CGROUP=systemd)")
	}
	return rig.NewContainerEnv(t)
}

// unitSeq makes unit names unique within a run.
var unitSeq int

// unit writes a service unit under /run/systemd/system, reloads systemd and
// removes it at the test's end (stopped, failed state reset). body is the
// [Service] section (and any other sections after it).
func unit(t *testing.T, prefix, unitSection, body string) string {
	t.Helper()
	unitSeq++
	name := fmt.Sprintf("berth-t-%s-%d-%d.service", prefix, os.Getpid(), unitSeq)
	path := filepath.Join("/run/systemd/system", name)
	text := "[Unit]\nDescription=berth test " + prefix + "\n" + unitSection + "\n[Service]\n" + body + "\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("systemctl", "stop", name).Run()
		_ = exec.Command("systemctl", "reset-failed", name).Run()
		os.Remove(path)
		_ = exec.Command("systemctl", "daemon-reload").Run()
	})
	systemctl(t, "daemon-reload")
	return name
}

// berthCmd is the command line of berth with env c's roots, for ExecStart.
func berthCmd(c *rig.ContainerEnv, args ...string) string {
	return strings.Join(append([]string{rig.BerthBin, "--root", c.Root, "--data-root", c.Data}, args...), " ")
}

func systemctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("systemctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// stopClean stops the unit and fails the test unless it ends
// inactive/success; what names the moment in the failure ("stop 3 of 10").
func stopClean(t *testing.T, name, what string) {
	t.Helper()
	systemctl(t, "stop", name)
	if st := show(t, name, "ActiveState", "Result"); st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Fatalf("%s %s: %v, want inactive/success\n%s", name, what, st, journal(t, name))
	}
}

// splitPlaced checks the placement of --cgroups=split in the unit whose
// cgroup is cg: berth (mainPID) in its supervisor leaf, the container
// cname in berth-<id> beside it. It returns the container's id and pid.
func splitPlaced(t *testing.T, c *rig.ContainerEnv, cg, mainPID, cname string) (id, pid string) {
	t.Helper()
	if got := ownCgroup(t, mainPID); got != cg+"/supervisor" {
		t.Errorf("berth (MainPID %s) is in %s, want %s/supervisor", mainPID, got, cg)
	}
	id = strings.TrimSpace(c.Must("inspect", "-f", "{{.Id}}", cname))
	pid = strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))
	if got := ownCgroup(t, pid); got != cg+"/berth-"+id {
		t.Errorf("the container (pid %s) is in %s, want %s/berth-%s", pid, got, cg, id)
	}
	return id, pid
}

// stopsRm stops the unit of a --rm container whose process is pid (see
// stopClean), then checks that the process and the container are gone.
func stopsRm(t *testing.T, c *rig.ContainerEnv, name, pid string) {
	t.Helper()
	stopClean(t, name, "after stop")
	if alive(pid) {
		t.Errorf("the container's process %s survived the stop", pid)
	}
	if out := c.Must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after the stop: %s", out)
	}
}

// show returns the unit's properties as systemd reports them.
func show(t *testing.T, name string, props ...string) map[string]string {
	t.Helper()
	out := systemctl(t, "show", "-p", strings.Join(props, ","), name)
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitProp waits until the unit's property has one of the values, and
// fails the test with the unit's state and journal when it never does.
// The bound only keeps a broken run from hanging; the assertion is on the
// state systemd reports.
func waitProp(t *testing.T, name, prop string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		v := show(t, name, prop)[prop]
		for _, w := range want {
			if v == w {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s=%s, want one of %v\n%v\n%s", name, prop, v, want,
				show(t, name, "ActiveState", "SubState", "Result", "NRestarts", "MainPID", "ControlGroup"), journal(t, name))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// journal is journalctl -u: what the journal attributes to the unit.
func journal(t *testing.T, name string) string {
	t.Helper()
	// journald may still be writing the last lines of a unit that just
	// stopped; sync flushes them.
	_ = exec.Command("journalctl", "--sync").Run()
	out, err := exec.Command("journalctl", "--no-pager", "-o", "cat", "-u", name).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl -u %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestForegroundJournal: a foreground run in a Type=simple unit writes to
// the unit's own stdout, so journalctl -u shows the container's output,
// and the unit ends inactive/success with the container's exit 0.
func TestForegroundJournal(t *testing.T) {
	c := sdEnv(t)
	marker := fmt.Sprintf("journal-marker-%d", os.Getpid())
	name := unit(t, "journal", "", "Type=simple\nExecStart="+
		berthCmd(c, "run", "--rm", rig.TestImage, "sh", "-c", "'echo "+marker+"; echo "+marker+"-err >&2'"))
	systemctl(t, "start", name)
	waitProp(t, name, "ActiveState", "inactive", "failed")
	st := show(t, name, "ActiveState", "Result")
	if st["ActiveState"] != "inactive" || st["Result"] != "success" {
		t.Fatalf("%s: %v, want inactive/success\n%s", name, st, journal(t, name))
	}
	j := journal(t, name)
	if !strings.Contains(j, marker+"\n") || !strings.Contains(j, marker+"-err") {
		v, _ := exec.Command("journalctl", "--no-pager", "-o", "verbose", "-g", marker).CombinedOutput()
		t.Fatalf("journalctl -u %s does not show the container's output:\n%s\nthe lines in the journal:\n%s", name, j, v)
	}
}

// ownCgroup is pid's cgroup in the hierarchy systemd tracks units by
// (cgroup2, or name=systemd on v1).
func ownCgroup(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatalf("cgroup of pid %s: %v", pid, err)
	}
	v1 := os.Getenv("BERTH_VM_CGROUP") == "v1"
	want := "the 0::"
	if v1 {
		want = "the name=systemd"
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && (v1 && f[1] == "name=systemd" || !v1 && f[0] == "0" && f[1] == "") {
			return f[2]
		}
	}
	t.Fatalf("pid %s: no %s line in\n%s", pid, want, b)
	return ""
}

// alive says whether pid still runs (and is no zombie).
func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

// TestSplitCgroupAndStop: in a Type=notify unit (--sdnotify=conmon) the
// container's cgroup is a sibling of berth's leaf inside the unit's own
// cgroup, and systemctl stop ends the unit inactive/success (berth dies of
// the SIGTERM its container died of) with nothing of it left.
func TestSplitCgroupAndStop(t *testing.T) {
	c := sdEnv(t)
	cname := fmt.Sprintf("split%d", os.Getpid())
	name := unit(t, "split", "", "Type=notify\nNotifyAccess=main\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "--rm", "--name", cname, "--sdnotify=conmon", "--init", rig.TestImage, "sleep", "1000"))
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "MainPID", "ControlGroup")
	if st["ActiveState"] != "active" {
		t.Fatalf("%s after start: %v\n%s", name, st, journal(t, name))
	}
	cg := st["ControlGroup"]
	if !strings.HasSuffix(cg, "/"+name) {
		t.Fatalf("ControlGroup %q is not the unit's", cg)
	}
	_, pid := splitPlaced(t, c, cg, st["MainPID"], cname)
	stopsRm(t, c, name, pid)
}

// TestNotifyContainer: with --sdnotify=container the container's READY=1
// and STATUS= reach systemd through berth's relay, 10 starts out of 10,
// and each stop ends the unit inactive/success. The unit keeps systemd's
// default KillMode=control-group: the stop signal reaches berth, the
// container's init (--init) and its child at once, so the init may get a
// SIGTERM after its child died (it once exited 2 on that, failing the
// unit).
func TestNotifyContainer(t *testing.T) {
	c := sdEnv(t)
	name := unit(t, "notify", "", "Type=notify\nNotifyAccess=main\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "--rm", "--sdnotify=container", "--init", rig.TestImage, "sh", "-c",
			"'/probe notify EXTEND_TIMEOUT_USEC=200000000 && /probe notify STATUS=probe-ready READY=1 && exec sleep 1000'"))
	for i := 0; i < 10; i++ {
		if out, err := exec.Command("systemctl", "start", name).CombinedOutput(); err != nil {
			t.Fatalf("start %d of 10: %v %s\n%v\n%s", i+1, err, out,
				show(t, name, "ActiveState", "Result", "StatusText"), journal(t, name))
		}
		st := show(t, name, "ActiveState", "StatusText")
		if st["ActiveState"] != "active" || st["StatusText"] != "probe-ready" {
			t.Fatalf("start %d of 10: %v, want active with StatusText=probe-ready", i+1, st)
		}
		stopClean(t, name, fmt.Sprintf("stop %d of 10", i+1))
	}
}

// TestRestartOnFailure: Restart=on-failure starts berth again after the
// container fails; the third run stays up, and NRestarts says 2.
func TestRestartOnFailure(t *testing.T) {
	c := sdEnv(t)
	dir := t.TempDir()
	script := "'n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n >/d/n; [ $n -ge 3 ] || exit 3; exec sleep 1000'"
	name := unit(t, "restart", "StartLimitIntervalSec=0", "Type=notify\nNotifyAccess=main\nRestart=on-failure\nRestartSec=1\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "--rm", "--sdnotify=conmon", "--init", "-v", dir+":/d", rig.TestImage, "sh", "-c", script))
	// The start job fails or succeeds with the first run; the cycle goes on.
	_ = exec.Command("systemctl", "start", name).Run()
	waitProp(t, name, "NRestarts", "2")
	waitProp(t, name, "ActiveState", "active")
	// --sdnotify=conmon says READY=1 once the container runs, which may
	// be before its shell has counted the run: wait for the count.
	count := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "n"))
		return strings.TrimSpace(string(b))
	}
	rig.WaitFor(t, "the third run to count itself", 2*time.Minute, func() bool { return count() == "3" })
	if st := show(t, name, "ActiveState", "NRestarts"); st["ActiveState"] != "active" || st["NRestarts"] != "2" {
		t.Fatalf("after the third run started: %v, want active with NRestarts=2 (count %s)", st, count())
	}
	stopClean(t, name, "after stop")
}

// TestKillModeMixedTimeout: a container that ignores SIGTERM (sleep as a
// pid namespace's init has no handler for it) outlives
// TimeoutStopSec; systemd then kills every process of the unit, the
// container's too, because the container is in the unit's cgroup.
func TestKillModeMixedTimeout(t *testing.T) {
	c := sdEnv(t)
	cname := fmt.Sprintf("mixed%d", os.Getpid())
	name := unit(t, "mixed", "", "Type=notify\nNotifyAccess=main\nKillMode=mixed\nTimeoutStopSec=3\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "--name", cname, "--sdnotify=conmon", rig.TestImage, "sleep", "1000"))
	systemctl(t, "start", name)
	cg := show(t, name, "ControlGroup")["ControlGroup"]
	pid := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))
	systemctl(t, "stop", name)
	st := show(t, name, "ActiveState", "Result")
	if st["ActiveState"] != "failed" && st["ActiveState"] != "inactive" {
		t.Fatalf("after stop: %v", st)
	}
	if st["Result"] != "timeout" {
		t.Errorf("Result=%s, want timeout (the container ignored SIGTERM)", st["Result"])
	}
	if alive(pid) {
		t.Errorf("the container's process %s survived the unit", pid)
	}
	mode := os.Getenv("BERTH_VM_CGROUP")
	root := "/sys/fs/cgroup"
	if mode == "v1" {
		root = "/sys/fs/cgroup/systemd"
	}
	if _, err := os.Stat(root + cg); err == nil {
		t.Errorf("the unit's cgroup %s is still there", cg)
	}
}

// TestSocketActivation: the fds of a socket unit reach the container's
// pid 1 from 3 on, with LISTEN_FDS and LISTEN_PID=1. ($$$$ is the
// shell's $$ once systemd has unescaped it.)
func TestSocketActivation(t *testing.T) {
	c := sdEnv(t)
	svc := unit(t, "sockact", "", "Type=simple\nExecStart="+
		berthCmd(c, "run", "--rm", rig.TestImage, "sh", "-c",
			"'echo fds=$LISTEN_FDS pid=$LISTEN_PID self=$$$$ fd3=$(readlink /proc/self/fd/3)'"))
	sock := strings.TrimSuffix(svc, ".service") + ".socket"
	path := filepath.Join("/run/systemd/system", sock)
	listen := filepath.Join(t.TempDir(), "act.sock")
	if err := os.WriteFile(path, []byte("[Socket]\nListenStream="+listen+"\nService="+svc+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("systemctl", "stop", sock).Run()
		os.Remove(path)
		_ = exec.Command("systemctl", "daemon-reload").Run()
	})
	systemctl(t, "daemon-reload")
	systemctl(t, "start", sock)
	systemctl(t, "start", svc)
	waitProp(t, svc, "ActiveState", "inactive", "failed")
	if st := show(t, svc, "Result"); st["Result"] != "success" {
		t.Fatalf("%s: %v\n%s", svc, st, journal(t, svc))
	}
	j := journal(t, svc)
	if !strings.Contains(j, "fds=1 pid=1 self=1 fd3=socket:[") {
		t.Fatalf("the container did not get the socket as fd 3 with LISTEN_FDS=1 LISTEN_PID=1:\n%s", j)
	}
}

// TestForkingPidFile: Type=forking with run -d and --pid-file: systemd
// takes the container's pid for MainPID, finds it in the unit's cgroup,
// and a stop ends the unit inactive/success.
func TestForkingPidFile(t *testing.T) {
	c := sdEnv(t)
	pidFile := filepath.Join("/run", fmt.Sprintf("berth-t-fork-%d.pid", os.Getpid()))
	t.Cleanup(func() { os.Remove(pidFile) })
	cname := fmt.Sprintf("fork%d", os.Getpid())
	name := unit(t, "fork", "", "Type=forking\nPIDFile="+pidFile+"\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "-d", "--rm", "--name", cname, "--init", "--pid-file", pidFile, rig.TestImage, "sleep", "1000"))
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "MainPID", "ControlGroup")
	pid := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))
	if st["ActiveState"] != "active" || st["MainPID"] != pid {
		t.Fatalf("%s: %v, want active with MainPID %s (the container's)\n%s", name, st, pid, journal(t, name))
	}
	if got := ownCgroup(t, pid); !strings.HasPrefix(got, st["ControlGroup"]+"/") {
		t.Errorf("the container is in %s, outside the unit's %s", got, st["ControlGroup"])
	}
	stopClean(t, name, "after stop")
	if alive(pid) {
		t.Errorf("the container's process %s survived the stop", pid)
	}
}

// installUnit writes a generated unit under /run/systemd/system, checks it
// with systemd-analyze verify, reloads systemd and removes the unit at the
// test's end.
func installUnit(t *testing.T, name, text string) {
	t.Helper()
	path := filepath.Join("/run/systemd/system", name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("systemctl", "stop", name).Run()
		_ = exec.Command("systemctl", "reset-failed", name).Run()
		os.Remove(path)
		_ = exec.Command("systemctl", "daemon-reload").Run()
	})
	// verify exits 0 on settings it ignores, but names them.
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || strings.Contains(string(out), name) {
		t.Fatalf("systemd-analyze verify %s: %v\n%s\nthe unit:\n%s", name, err, out, text)
	}
	systemctl(t, "daemon-reload")
}

// TestGenerateNew: the unit of generate systemd --new passes
// systemd-analyze verify; started, it replaces the container it was made
// from with a new one of the same name and configuration inside the
// unit, notifies, and stops inactive/success leaving nothing behind.
func TestGenerateNew(t *testing.T) {
	c := sdEnv(t)
	cname := fmt.Sprintf("gen%d", os.Getpid())
	orig := strings.TrimSpace(c.Must("create", "--name", cname, "--init", "-e", "GREETING=hi", rig.TestImage,
		"sh", "-c", "echo gen-$GREETING 100%; exec sleep 1000"))
	text := c.Must("generate", "systemd", "--new", cname)
	name := "container-" + cname + ".service"
	if !strings.HasPrefix(text, "# "+name+"\n") {
		t.Fatalf("generate systemd --new does not name the unit %s:\n%s", name, text)
	}
	installUnit(t, name, text)
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "Type", "KillMode", "NotifyAccess", "Restart", "SuccessExitStatus", "MainPID", "ControlGroup")
	want := map[string]string{"ActiveState": "active", "Type": "notify", "KillMode": "mixed", "NotifyAccess": "main", "Restart": "on-failure"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s: %s=%s, want %s", name, k, st[k], v)
		}
	}
	if !strings.Contains(st["SuccessExitStatus"], "143") {
		t.Errorf("%s: SuccessExitStatus=%s, want 143", name, st["SuccessExitStatus"])
	}
	id, pid := splitPlaced(t, c, st["ControlGroup"], st["MainPID"], cname)
	if id == orig {
		t.Errorf("the unit runs the original container %s, not a new one", orig)
	}
	rig.WaitFor(t, "the container's output in the unit's journal", time.Minute, func() bool {
		return strings.Contains(journal(t, name), "gen-hi 100%")
	})
	// The original container and the unit's --rm one both go.
	stopsRm(t, c, name, pid)
}

// TestGenerateExisting: without --new the unit starts and stops the
// existing container (Type=forking, PIDFile= its --pid-file): systemd
// takes the container's pid for MainPID; berth start puts the container
// inside the unit (it ran in berth's own cgroup before); a stop leaves the
// container exited, not removed, and no cgroup of the unit behind.
func TestGenerateExisting(t *testing.T) {
	c := sdEnv(t)
	cname := fmt.Sprintf("genx%d", os.Getpid())
	pidFile := filepath.Join("/run", fmt.Sprintf("berth-t-genx-%d.pid", os.Getpid()))
	t.Cleanup(func() { os.Remove(pidFile) })
	// berth run by this test is outside any unit of its own.
	c.Environ = []string{"INVOCATION_ID="}
	c.Must("create", "--name", cname, "--init", "--pid-file", pidFile, rig.TestImage, "sleep", "1000")
	id := strings.TrimSpace(c.Must("inspect", "-f", "{{.Id}}", cname))
	// Started once outside a unit, it is in berth's own cgroup.
	c.Must("start", cname)
	if got := ownCgroup(t, strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))); got != "/berth/"+id {
		t.Errorf("started outside a unit, the container is in %s, want /berth/%s", got, id)
	}
	c.Must("stop", "-t", "0", cname)
	text := c.Must("generate", "systemd", "--name", "--restart-policy", "no", cname)
	name := "container-" + cname + ".service"
	installUnit(t, name, text)
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "Type", "KillMode", "Restart", "MainPID")
	pid := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))
	if st["ActiveState"] != "active" || st["Type"] != "forking" || st["KillMode"] != "mixed" || st["Restart"] != "no" || st["MainPID"] != pid {
		t.Fatalf("%s: %v, want active, forking, mixed, Restart=no, MainPID %s (the container's)\n%s", name, st, pid, journal(t, name))
	}
	// berth start in the unit put the container inside it, beside the
	// monitor's leaf, not back in its old cgroup.
	cg := show(t, name, "ControlGroup")["ControlGroup"]
	if got := ownCgroup(t, pid); got != cg+"/berth-"+id {
		t.Errorf("the container (pid %s) is in %s, want %s/berth-%s", pid, got, cg, id)
	}
	mon := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.MonitorPid}}", cname))
	if got := ownCgroup(t, mon); got != cg+"/supervisor" {
		t.Errorf("the monitor (pid %s) is in %s, want %s/supervisor", mon, got, cg)
	}
	for _, dir := range rig.CgroupDirs("/berth/" + id) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the container's old cgroup %s is still there (%v)", dir, err)
		}
	}
	systemctl(t, "stop", name)
	if st := show(t, name, "ActiveState"); st["ActiveState"] != "inactive" {
		t.Fatalf("after stop: %v, want inactive\n%s", st, journal(t, name))
	}
	// Nothing of the unit's cgroup is left in any hierarchy (on v1 berth
	// made it in controllers' hierarchies systemd does not keep).
	for _, dir := range rig.CgroupDirs(cg) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the stopped unit's cgroup %s is left (%v)", dir, err)
		}
	}
	if alive(pid) {
		t.Errorf("the container's process %s survived the stop", pid)
	}
	if r := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Running}}", cname)); r != "false" {
		t.Errorf("the container's State.Running is %s after the stop", r)
	}
}

// TestNotifyContainerDetached: run -d --sdnotify=container in a
// Type=notify unit: berth names the monitor as the main process, which
// relays the container's READY=1 and STATUS=, 10 starts out of 10; the
// container is in the unit, and each stop ends the unit inactive/success
// with nothing left.
func TestNotifyContainerDetached(t *testing.T) {
	c := sdEnv(t)
	name := unit(t, "notifyd", "", "Type=notify\nNotifyAccess=main\nTimeoutStartSec=300\nExecStart="+
		berthCmd(c, "run", "-d", "--rm", "--sdnotify=container", "--init", rig.TestImage, "sh", "-c",
			"'/probe notify EXTEND_TIMEOUT_USEC=200000000 && /probe notify STATUS=probe-ready READY=1 && exec sleep 1000'"))
	for i := 0; i < 10; i++ {
		if out, err := exec.Command("systemctl", "start", name).CombinedOutput(); err != nil {
			t.Fatalf("start %d of 10: %v %s\n%v\n%s", i+1, err, out,
				show(t, name, "ActiveState", "Result", "StatusText"), journal(t, name))
		}
		st := show(t, name, "ActiveState", "StatusText", "MainPID", "ControlGroup")
		if st["ActiveState"] != "active" || st["StatusText"] != "probe-ready" {
			t.Fatalf("start %d of 10: %v, want active with StatusText=probe-ready\n%s", i+1, st, journal(t, name))
		}
		id := strings.TrimSpace(c.Must("ps", "-q", "--no-trunc"))
		mon := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.MonitorPid}}", id))
		pid := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", id))
		cg := st["ControlGroup"]
		if st["MainPID"] != mon {
			t.Errorf("start %d: MainPID %s, want the monitor %s", i+1, st["MainPID"], mon)
		}
		if got := ownCgroup(t, pid); got != cg+"/berth-"+id {
			t.Errorf("start %d: the container (pid %s) is in %s, want %s/berth-%s", i+1, pid, got, cg, id)
		}
		stopClean(t, name, fmt.Sprintf("stop %d of 10", i+1))
		if alive(pid) || alive(mon) {
			t.Errorf("stop %d: the container (%s) or its monitor (%s) survived", i+1, pid, mon)
		}
		if out := c.Must("ps", "-aq"); strings.TrimSpace(out) != "" {
			t.Fatalf("stop %d: --rm container left: %s", i+1, out)
		}
	}
}

// TestRestoreUnit: dist/berth-restart.service (berth system restore) after
// a reboot starts a --restart always container again, inside its own
// cgroup, and stays active (exited) with success.
func TestRestoreUnit(t *testing.T) {
	c := sdEnv(t)
	c.Environ = []string{"INVOCATION_ID="}
	cname := fmt.Sprintf("restore%d", os.Getpid())
	c.Must("run", "-d", "--name", cname, "--restart", "always", "--init", rig.TestImage, "sleep", "1000")
	id := strings.TrimSpace(c.Must("inspect", "-f", "{{.Id}}", cname))
	var pids []int
	for _, f := range []string{"{{.State.Pid}}", "{{.State.MonitorPid}}"} {
		n, err := strconv.Atoi(strings.TrimSpace(c.Must("inspect", "-f", f, cname)))
		if err != nil || n <= 0 {
			t.Fatalf("%s: %v", f, err)
		}
		pids = append(pids, n)
	}
	rig.SimulateReboot(t, c, []string{id}, pids)

	b, err := os.ReadFile(filepath.Join(rig.RepoDir, "dist/berth-restart.service"))
	if err != nil {
		t.Fatal(err)
	}
	const stock = "ExecStart=/usr/local/bin/berth system restore\n"
	if !strings.Contains(string(b), stock) {
		t.Fatalf("dist/berth-restart.service has no %q:\n%s", stock, b)
	}
	text := strings.Replace(string(b), stock, "ExecStart="+berthCmd(c, "system", "restore")+"\n", 1)
	name := fmt.Sprintf("berth-t-restore-%d.service", os.Getpid())
	installUnit(t, name, text)
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "SubState", "Result", "ControlGroup")
	if st["ActiveState"] != "active" || st["SubState"] != "exited" || st["Result"] != "success" {
		t.Fatalf("%s: %v, want active (exited), success\n%s", name, st, journal(t, name))
	}
	if !strings.Contains(journal(t, name), cname) {
		t.Errorf("the unit's journal does not name %s:\n%s", cname, journal(t, name))
	}
	if r := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Running}}", cname)); r != "true" {
		t.Fatalf("after the restore unit: Running=%s", r)
	}
	pid := strings.TrimSpace(c.Must("inspect", "-f", "{{.State.Pid}}", cname))
	if got := ownCgroup(t, pid); got != st["ControlGroup"]+"/berth-"+id {
		t.Errorf("the restored container (pid %s) is in %s, want %s/berth-%s", pid, got, st["ControlGroup"], id)
	}
	c.Must("stop", "-t", "0", cname)
	systemctl(t, "stop", name)
	if alive(pid) {
		t.Errorf("the restored container's process %s survived its stop", pid)
	}
}
