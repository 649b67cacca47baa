package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// trapper exits 7 on SIGUSR1 and ignores SIGTERM (it is pid 1 with no
// handler for it), so its exit status tells which signal stop sent.
// /ready says the trap is set: a signal that comes earlier finds berth's
// init, not the shell.
var trapper = []string{rig.TestImage, "sh", "-c", `rm -f /ready; trap "exit 7" USR1; touch /ready; while :; do sleep 0.1; done`}

func waitTrap(c *rig.ContainerEnv, name string) {
	rig.WaitFor(c.T, "the trap of "+name, 10*time.Second, func() bool {
		return c.Berth("exec", name, "test", "-f", "/ready").Code == 0
	})
}

func TestStopRestartSignalAndTimeout(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must(append([]string{"run", "-d", "--name", "sig"}, trapper...)...)
	waitTrap(c, "sig")
	c.Must("stop", "-s", "USR1", "--timeout", "20", "sig")
	if got := c.Field("sig", "{{.State.ExitCode}}"); got != "7" {
		t.Errorf("stop -s USR1: exit code %s, want 7", got)
	}
	c.Must("start", "sig")
	waitTrap(c, "sig")
	c.Must("restart", "--signal", "SIGUSR1", "-t", "20", "sig")
	if got := c.Field("sig", "{{.State.Running}} {{.RestartCount}}"); !strings.HasPrefix(got, "true") {
		t.Errorf("after restart -s: %s", got)
	}
	// --timeout 0: SIGTERM is ignored, the kill comes at once.
	start := time.Now()
	c.Must("stop", "--timeout", "0", "sig")
	if got := c.Field("sig", "{{.State.ExitCode}}"); got != "137" {
		t.Errorf("stop --timeout 0: exit code %s, want 137", got)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop --timeout 0 took %v, as if the default 10 s applied", d)
	}
	for _, bad := range [][]string{{"stop", "-s", "NOSUCH", "sig"}, {"restart", "--signal", "99x", "sig"}, {"stop", "--timeout", "soon", "sig"}} {
		if r := c.Berth(bad...); !rig.UsageError(r) {
			t.Errorf("%v: %+v", bad, r)
		}
	}
	c.Must("rm", "sig")
}

func TestExecEnvFileAndTerm(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", "-e", "FROMRUN=run", rig.TestImage, "sleep", "300")
	f := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(f, []byte("# comment\nA=from-file\nB=file\nFROMRUN=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.Must("exec", "--env-file", f, "-e", "B=flag", "box", "sh", "-c", `echo "$A $B $FROMRUN ${TERM:-none}"`)
	if out != "from-file flag file none\n" {
		t.Errorf("exec --env-file: %q", out)
	}
	// -t without -i needs no terminal on stdin; the exec gets TERM.
	out = c.Must("exec", "-t", "box", "sh", "-c", `echo "$TERM"`)
	if strings.TrimSpace(out) != "xterm" {
		t.Errorf("exec -t: TERM=%q", out)
	}
	out = c.Must("exec", "-t", "-e", "TERM=vt100", "box", "sh", "-c", `echo "$TERM"`)
	if strings.TrimSpace(out) != "vt100" {
		t.Errorf("exec -t -e TERM=vt100: TERM=%q", out)
	}
	if r := c.Berth("exec", "--env-file", "/nonexistent/env", "box", "true"); !rig.UsageError(r) {
		t.Errorf("exec with a missing --env-file: %+v", r)
	}
	// -it with stdin not a terminal is refused, as Docker does.
	// Docker's CLI exits 1 there.
	r := c.Berth("exec", "-it", "box", "true")
	if r.Code != 1 || r.Stderr != "berth: the input device is not a TTY\n" {
		t.Errorf("exec -it without a terminal: %+v", r)
	}
	c.Must("rm", "-f", "box")
}

func TestRunInteractiveTTYNeedsTerminal(t *testing.T) {
	c := rig.NewContainerEnv(t)
	// Docker's CLI exits 1 there (its other refusals are 125).
	r := c.Berth("run", "-it", "--name", "nott", rig.TestImage, "true")
	if r.Code != 1 || r.Stderr != "berth: the input device is not a TTY\n" {
		t.Errorf("run -it without a terminal: %+v", r)
	}
	if got := c.Must("ps", "-aq"); got != "" {
		t.Errorf("refused run left containers: %q", got)
	}
	// -t alone, and -dit, are fine.
	if out := c.Must("run", "--rm", "-t", rig.TestImage, "sh", "-c", "echo $TERM"); strings.TrimSpace(out) != "xterm" {
		t.Errorf("run -t: %q", out)
	}
	c.Must("run", "-dit", "--name", "bg", rig.TestImage, "sh")
	c.Must("rm", "-f", "bg")
}
