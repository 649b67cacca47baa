package systemd

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// waitActive waits, at most bound, until the unit is no longer activating,
// and says whether it became active.
func waitActive(t *testing.T, name string, bound time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(bound); ; time.Sleep(100 * time.Millisecond) {
		st := show(t, name, "ActiveState")["ActiveState"]
		if st != "activating" || time.Now().After(deadline) {
			return st == "active"
		}
	}
}

// healthDiag is what a failed run needs to be understood: the container's
// health, its monitor's log and where its monitor's processes are.
func healthDiag(c *rig.ContainerEnv, name string) string {
	var b strings.Builder
	b.WriteString("health: " + c.Berth("inspect", "-f", "{{json .State.Health}} monitor={{.State.MonitorPid}}", name).Stdout + "\n")
	id := strings.TrimSpace(c.Berth("inspect", "-f", "{{.Id}}", name).Stdout)
	logs, _ := filepath.Glob(filepath.Join(c.Data, "*", id, "monitor.log"))
	for _, l := range logs {
		out, _ := os.ReadFile(l)
		b.WriteString(l + ":\n" + string(out) + "\n")
	}
	if pid := strings.TrimSpace(c.Berth("inspect", "-f", "{{.State.MonitorPid}}", name).Stdout); pid != "" {
		out, _ := os.ReadFile("/proc/" + pid + "/cgroup")
		b.WriteString("monitor cgroup:\n" + string(out))
		out, _ = os.ReadFile("/proc/" + pid + "/environ")
		b.WriteString("monitor NOTIFY_SOCKET set: " + fmt.Sprint(strings.Contains(string(out), "NOTIFY_SOCKET=")) + "\n")
	}
	return b.String()
}

// TestNotifyHealthy: with --sdnotify=healthy the unit becomes active only
// once the container's healthcheck passed (it fails until the container
// made /tmp/ok): in the foreground berth sends READY=1; with run -d berth
// names the monitor the main process, and the monitor, not the check it
// ran, sends it: NotifyAccess=main takes it.
func TestNotifyHealthy(t *testing.T) {
	c := sdEnv(t)
	check := []string{"--sdnotify=healthy", "--health-cmd", "'test -e /tmp/ok'", "--health-interval", "300ms", "--init",
		rig.TestImage, "sh", "-c", "'sleep 3; touch /tmp/ok; exec sleep 1000'"}
	for _, mode := range []struct{ name, access, run, stop string }{
		{"hc-fg", "main", berthCmd(c, append([]string{"run", "--rm", "--name", "hc-fg"}, check...)...), ""},
		// The monitor ignores SIGTERM: berth stop ends the container, and
		// the monitor with it.
		{"hc-bg", "main", berthCmd(c, append([]string{"run", "-d", "--name", "hc-bg"}, check...)...), "\nExecStop=" + berthCmd(c, "stop", "hc-bg")},
	} {
		name := unit(t, mode.name, "", "Type=notify\nNotifyAccess="+mode.access+"\nTimeoutStartSec=300\nExecStart="+mode.run+mode.stop+
			"\nExecStopPost=-"+berthCmd(c, "rm", "-f", mode.name))
		if out, err := exec.Command("systemctl", "start", "--no-block", name).CombinedOutput(); err != nil {
			t.Fatalf("%s: start: %v %s", mode.name, err, out)
		}
		if !waitActive(t, name, 90*time.Second) {
			t.Fatalf("%s: never active\n%v\n%s\n%s", mode.name, show(t, name, "ActiveState", "Result", "MainPID"), journal(t, name), healthDiag(c, mode.name))
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
