package containers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// TestGenerateSystemd: the units generate systemd prints pass
// systemd-analyze verify here too (no systemd as PID 1 needed; the VM's
// tests/systemd starts them), carry the container's own command line
// with --new, and bad input is a usage error that writes nothing.
// tests/systemd starts such units under a real systemd.
func TestGenerateSystemd(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "gen", "-e", "A=$x", rig.TestImage, "sh", "-c", "echo 'a b' 50%", "-d")
	if cc := c.Must("inspect", "-f", "{{json .CreateCommand}}", "gen"); !strings.Contains(cc, `"create","--name","gen"`) {
		t.Errorf("inspect shows CreateCommand %s", cc)
	}
	text := c.Must("generate", "systemd", "--new", "gen")
	want := "ExecStart=" + rig.BerthBin + " --root " + c.Root + " --data-root " + c.Data +
		` run --rm --sdnotify=conmon --name gen -e A=$$x ` + rig.TestImage + ` sh -c "echo 'a b' 50%%" -d` + "\n"
	if !strings.Contains(text, want) {
		t.Errorf("generate systemd --new: no line\n%s\nin\n%s", want, text)
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		path := filepath.Join(t.TempDir(), "container-gen.service")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on settings it ignores, but names them.
		if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || strings.Contains(string(out), "container-gen.service") {
			t.Errorf("systemd-analyze verify: %v\n%s\n%s", err, out, text)
		}
	}
	for _, args := range [][]string{
		{"generate", "systemd"},
		{"generate", "systemd", "gen", "other"},
		{"generate", "systemd", "--restart-policy", "sometimes", "gen"},
	} {
		if r := c.Berth(args...); !rig.UsageError(r) || r.Stdout != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q, want a usage error", args, r.Code, r.Stdout, r.Stderr)
		}
	}
	// Without --new a unit needs the container's pid file.
	if r := c.Berth("generate", "systemd", "gen"); r.Code != 125 || r.Stdout != "" || !strings.Contains(r.Stderr, "--pid-file") {
		t.Errorf("generate systemd without --new and a pid file: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	if r := c.Berth("generate", "systemd", "--new", "nosuch"); r.Code != 125 || r.Stdout != "" {
		t.Errorf("generate systemd of a missing container: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}
