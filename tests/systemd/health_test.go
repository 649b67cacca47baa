package systemd

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// healthLog is the exit codes of the container's checks so far.
func healthLog(t *testing.T, c *rig.ContainerEnv, name string) (string, []int) {
	t.Helper()
	var h struct {
		Status string
		Log    []struct{ ExitCode int }
	}
	if err := json.Unmarshal([]byte(c.Field(name, "{{json .State.Health}}")), &h); err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, r := range h.Log {
		codes = append(codes, r.ExitCode)
	}
	return h.Status, codes
}

// TestNotifyHealthy: with --sdnotify=healthy the unit becomes active only
// once the container's healthcheck passed (it fails until the container
// made /tmp/ok): in the foreground berth sends READY=1; with run -d berth
// names the monitor the main process and the monitor's check sends it
// (NotifyAccess=all).
func TestNotifyHealthy(t *testing.T) {
	c := sdEnv(t)
	check := []string{"--sdnotify=healthy", "--health-cmd", "'test -e /tmp/ok'", "--health-interval", "300ms", "--init",
		rig.TestImage, "sh", "-c", "'sleep 3; touch /tmp/ok; exec sleep 1000'"}
	for _, mode := range []struct{ name, access, run, stop string }{
		{"hc-fg", "main", berthCmd(c, append([]string{"run", "--rm", "--name", "hc-fg"}, check...)...), ""},
		// The monitor ignores SIGTERM: berth stop ends the container, and
		// the monitor with it.
		{"hc-bg", "all", berthCmd(c, append([]string{"run", "-d", "--name", "hc-bg"}, check...)...), "\nExecStop=" + berthCmd(c, "stop", "hc-bg")},
	} {
		name := unit(t, mode.name, "", "Type=notify\nNotifyAccess="+mode.access+"\nTimeoutStartSec=300\nExecStart="+mode.run+mode.stop+
			"\nExecStopPost=-"+berthCmd(c, "rm", "-f", mode.name))
		if out, err := exec.Command("systemctl", "start", name).CombinedOutput(); err != nil {
			t.Fatalf("%s: start: %v %s\n%v\n%s", mode.name, err, out, show(t, name, "ActiveState", "Result", "MainPID"), journal(t, name))
		}
		st := show(t, name, "ActiveState", "MainPID")
		status, codes := healthLog(t, c, mode.name)
		if st["ActiveState"] != "active" || status != "healthy" || len(codes) < 2 || codes[0] == 0 {
			t.Errorf("%s: unit %v, health %s %v: want active once healthy, after a failed check", mode.name, st, status, codes)
		}
		if mode.name == "hc-bg" {
			if mon := c.Field(mode.name, "{{.State.MonitorPid}}"); st["MainPID"] != mon {
				t.Errorf("run -d: MainPID %s, want the monitor %s", st["MainPID"], mon)
			}
		}
		systemctl(t, "stop", name)
		if st := show(t, name, "ActiveState"); strings.TrimSpace(st["ActiveState"]) != "inactive" {
			t.Errorf("%s: after stop %v", mode.name, st)
		}
	}
}
