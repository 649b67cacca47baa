package rig

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Itoa is strconv.Itoa.
func Itoa(n int) string { return strconv.Itoa(n) }

// ReadFile returns the content of p or fails the test.
func ReadFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ExecBerth prepares a berth command whose stdout and stderr go to f, so
// that a detached container keeps writing there.
func ExecBerth(e *Env, f *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(BerthBin, append([]string{"--root", e.Root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	return cmd
}

// ExecShell runs a shell command line and returns its combined output.
func ExecShell(line string) (string, error) {
	out, err := exec.Command("/bin/sh", "-c", line).CombinedOutput()
	return string(out), err
}

// UsageError says r is how berth reports bad input: status 125, nothing
// on stdout, one line on stderr naming berth, and at most a second line
// pointing at --help.
func UsageError(r Result) bool {
	lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
	return r.Code == 125 && r.Stdout == "" && strings.HasSuffix(r.Stderr, "\n") && strings.HasPrefix(lines[0], "berth: ") &&
		(len(lines) == 1 || len(lines) == 2 && strings.HasPrefix(lines[1], "See 'berth ") && strings.HasSuffix(lines[1], " --help'."))
}

// ParentPid is the parent of process pid, from /proc/PID/status.
func ParentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("status of %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("PPid of %d: %q", pid, v)
			}
			return n
		}
	}
	t.Fatalf("status of %d has no PPid", pid)
	return 0
}
