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
		t.Fatalf("journalctl -u %s does not show the container's output:\n%s", name, j)
	}
}
