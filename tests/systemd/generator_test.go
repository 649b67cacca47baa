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

// TestGenerator: berth linked in as a systemd generator turns a .container
// file in /etc/containers/systemd into a unit on daemon-reload, linked into
// multi-user.target.wants; the unit passes systemd-analyze verify, runs the
// container inside itself (berth in <unit>/supervisor, the container
// beside it) and its stop leaves nothing.
func TestGenerator(t *testing.T) {
	c := sdEnv(t)
	base := fmt.Sprintf("berth-q-%d", os.Getpid())
	name, cname := base+".service", "q"+base
	genDir, srcDir := "/run/systemd/system-generators", "/etc/containers/systemd"
	made := []string{}
	for _, d := range []string{genDir, srcDir} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			made = append(made, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link, src := filepath.Join(genDir, "berth-generator"), filepath.Join(srcDir, base+".container")
	t.Cleanup(func() {
		_ = exec.Command("systemctl", "stop", name).Run()
		_ = exec.Command("systemctl", "reset-failed", name).Run()
		os.Remove(src)
		os.Remove(link)
		for i := len(made) - 1; i >= 0; i-- {
			os.Remove(made[i])
		}
		_ = exec.Command("systemctl", "daemon-reload").Run()
	})
	if err := os.Symlink(rig.BerthBin, link); err != nil {
		t.Fatal(err)
	}
	text := strings.Join([]string{
		"[Unit]", "Description=berth generator test",
		"[Container]", "Image=" + rig.TestImage, "ContainerName=" + cname,
		`Exec=sh -c "echo quadlet-$GREETING; exec sleep 1000"`, "Environment=GREETING=hi",
		"GlobalArgs=--root " + c.Root + " --data-root " + c.Data, "BerthArgs=--init",
		"[Service]", "TimeoutStartSec=300",
		"[Install]", "WantedBy=multi-user.target", ""}, "\n")
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	systemctl(t, "daemon-reload")
	gen := filepath.Join("/run/systemd/generator", name)
	unitText, err := os.ReadFile(gen)
	if err != nil {
		t.Fatalf("the generator wrote no %s: %v\n%s", gen, err, journalAll(t))
	}
	if l, err := os.Readlink(filepath.Join("/run/systemd/generator/multi-user.target.wants", name)); err != nil || l != "../"+name {
		t.Errorf("multi-user.target.wants/%s: %q %v", name, l, err)
	}
	// verify exits 0 on settings it ignores, but names them.
	if out, err := exec.Command("systemd-analyze", "verify", gen).CombinedOutput(); err != nil || strings.Contains(string(out), name) {
		t.Fatalf("systemd-analyze verify %s: %v\n%s\nthe unit:\n%s", gen, err, out, unitText)
	}
	if st := show(t, name, "FragmentPath", "SourcePath"); st["FragmentPath"] != gen || st["SourcePath"] != src {
		t.Errorf("systemd loaded %v, want FragmentPath %s SourcePath %s", st, gen, src)
	}
	systemctl(t, "start", name)
	st := show(t, name, "ActiveState", "Type", "KillMode", "MainPID", "ControlGroup")
	if st["ActiveState"] != "active" || st["Type"] != "notify" || st["KillMode"] != "mixed" {
		t.Fatalf("%s after start: %v\n%s\nthe unit:\n%s", name, st, journal(t, name), unitText)
	}
	cg := st["ControlGroup"]
	if !strings.HasSuffix(cg, "/"+name) {
		t.Fatalf("ControlGroup %q is not the unit's", cg)
	}
	id, pid := splitPlaced(t, c, cg, st["MainPID"], cname)
	rig.WaitFor(t, "the container's output in the unit's journal", time.Minute, func() bool {
		return strings.Contains(journal(t, name), "quadlet-hi")
	})
	stopsRm(t, c, name, pid)
	for _, d := range rig.CgroupDirs(cg + "/berth-" + id) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("the container's cgroup %s is left", d)
		}
	}
}

// journalAll is the recent journal (a generator's output has no unit).
func journalAll(t *testing.T) string {
	t.Helper()
	_ = exec.Command("journalctl", "--sync").Run()
	out, _ := exec.Command("journalctl", "--no-pager", "-o", "cat", "-n", "40").CombinedOutput()
	return string(out)
}
