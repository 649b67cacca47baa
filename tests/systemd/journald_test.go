package systemd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// --log-driver journald against the system's own journald (systemd as
// PID 1): the entries carry Docker's fields and berth logs reads them
// back through journalctl. (tests/containers TestLogDriverJournald runs
// the same against a namespaced journald of its own on the host.)
func TestJournaldLogDriver(t *testing.T) {
	c := sdEnv(t)
	c.Must("run", "-d", "--name", "jd", "--log-driver", "journald", "--log-opt", "tag=web-{{.Name}}",
		rig.TestImage, "sh", "-c", "echo to-journal; echo err-journal >&2")
	id := strings.TrimSpace(c.Must("inspect", "-f", "{{.Id}}", "jd"))
	if got := c.Must("logs", "-f", "jd"); got != "to-journal\n" {
		t.Errorf("logs -f: %q", got)
	}
	r := c.Berth("logs", "jd")
	if r.Code != 0 || r.Stdout != "to-journal\n" || r.Stderr != "err-journal\n" {
		t.Errorf("logs: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	out, err := exec.Command("journalctl", "--no-pager", "-o", "export", "CONTAINER_ID_FULL="+id).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"CONTAINER_ID=" + id[:12], "CONTAINER_NAME=jd", "CONTAINER_TAG=web-jd", "SYSLOG_IDENTIFIER=web-jd",
		"MESSAGE=to-journal", "PRIORITY=3"} {
		if !strings.Contains(string(out), "\n"+f+"\n") {
			t.Errorf("journal entries lack %s:\n%s", f, out)
		}
	}
}
