package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// readmeBlock is the first code block after the README heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rig.RepoDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatalf("README: no code block under %q", heading)
	}
	return block
}

// The README's OCI example, pasted into a shell, runs to its end: no
// step waits on the shell's own input or fails.
func TestREADMEOCIExample(t *testing.T) {
	e := rig.NewEnv(t)
	dir := t.TempDir()
	block := readmeBlock(t, "## The OCI runtime")
	script := "set -e\nberth() { " + rig.BerthBin + " --root " + e.Root + " \"$@\"; }\n" +
		strings.ReplaceAll(block, "testdata/mkrootfs.sh", filepath.Join(rig.RepoDir, "testdata/mkrootfs.sh"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	// A container left running keeps the output pipe open.
	cmd.WaitDelay = 10 * time.Second
	// A terminal's input would be taken by a container reading stdin;
	// a pipe that never ends shows the same mistake as a hang.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd.Stdin = r
	out, err := cmd.CombinedOutput()
	r.Close()
	if err != nil {
		t.Fatalf("README OCI example: %v\n%s", err, out)
	}
	for _, want := range []string{"hello\n", "hi\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("README OCI example did not print %q:\n%s", want, out)
		}
	}
}
