package containers

import (
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// TestSystemRestore: after a reboot, system restore starts the containers
// of --restart always (also one the user stopped) and unless-stopped (not
// one the user stopped), and no other: not on-failure, no policy, a
// created one never started, an --rm one. Those it starts run again with
// a monitor, stop as usual, and a second restore starts nothing.
func TestSystemRestore(t *testing.T) {
	c := rig.NewContainerEnv(t)
	run := func(name string, flags ...string) {
		c.Must(append(append([]string{"run", "-d", "--name", name}, flags...), rig.TestImage, "sleep", "1000")...)
	}
	run("always", "--restart", "always")
	run("unless", "--restart", "unless-stopped")
	run("always-stopped", "--restart", "always")
	run("unless-stopped", "--restart", "unless-stopped")
	run("onfailure", "--restart", "on-failure")
	run("plain")
	run("removed", "--rm")
	c.Must("create", "--name", "created", "--restart", "always", rig.TestImage, "sleep", "1000")
	c.Must("stop", "-t", "0", "always-stopped", "unless-stopped")

	var ids []string
	var pids []int
	for _, name := range []string{"always", "unless", "onfailure", "plain", "removed"} {
		ids = append(ids, c.Field(name, "{{.Id}}"))
		for _, f := range []string{"{{.State.Pid}}", "{{.State.MonitorPid}}"} {
			pid, err := strconv.Atoi(c.Field(name, f))
			if err != nil || pid <= 0 {
				t.Fatalf("%s: %s is %q", name, f, c.Field(name, f))
			}
			pids = append(pids, pid)
		}
	}
	rig.SimulateReboot(t, c, ids, pids)
	for name, st := range c.PsStatus() {
		if strings.HasPrefix(st, "Up") {
			t.Errorf("%s after the reboot: %q", name, st)
		}
	}

	out := c.Must("system", "restore")
	if got := strings.Fields(out); strings.Join(got, " ") != "always unless always-stopped" {
		t.Errorf("system restore printed %q, want always, unless, always-stopped (oldest first)", out)
	}
	st := c.PsStatus()
	for _, name := range []string{"always", "unless", "always-stopped"} {
		if !strings.HasPrefix(st[name], "Up") {
			t.Errorf("%s after restore: %q, want Up", name, st[name])
		}
		if mon, _ := strconv.Atoi(c.Field(name, "{{.State.MonitorPid}}")); mon <= 0 || unix.Kill(mon, 0) != nil {
			t.Errorf("%s: no live monitor (%d)", name, mon)
		}
	}
	for _, name := range []string{"unless-stopped", "onfailure", "plain", "removed"} {
		if !strings.HasPrefix(st[name], "Exited") {
			t.Errorf("%s after restore: %q, want Exited", name, st[name])
		}
	}
	if !strings.HasPrefix(st["created"], "Created") {
		t.Errorf("created after restore: %q", st["created"])
	}
	// What runs now is a container like any: exec reaches it.
	if got := strings.TrimSpace(c.Must("exec", "always", "echo", "back")); got != "back" {
		t.Errorf("exec after restore: %q", got)
	}
	if out := c.Must("system", "restore"); strings.TrimSpace(out) != "" {
		t.Errorf("a second restore started %q", out)
	}
	c.Must("stop", "-t", "0", "always", "unless", "always-stopped")
}
