package integration

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

func itoa(n int) string { return strconv.Itoa(n) }

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// execBerth prepares a berth command whose stdout and stderr go to f, so
// that a detached container keeps writing there.
func execBerth(e *env, f *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd
}

// execShell runs a shell command line and returns its combined output.
func execShell(line string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", line).CombinedOutput()
	return string(out), err
}
