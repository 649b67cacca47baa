// Package engines drives real container engines with berth as their OCI
// runtime, the way people and Kubernetes nodes use it: Debian's podman
// (--runtime berth-oci), containerd through ctr (--runc-binary berth-oci)
// and containerd's CRI plugin through crictl (a runtime handler whose
// BinaryName is berth-oci). Every engine gets its own root, state
// directory and socket under the test's temporary directory; daemons are
// started here and stopped by pid.
//
// These tests run on the host only: the test VMs (testdata/vm) have no
// engines, and testdata/vm/run.sh leaves this package out. On the host a
// missing engine is a failure, not a skip: `make deps` installs them.
package engines

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

const (
	// testImage is testdata/mkimage's busybox + probe image.
	testImage = "berth-test/busybox:latest"
	// pauseImage is the same image whose command sleeps forever: the CRI
	// sandbox ("pause") image.
	pauseImage = "berth-test/pause:latest"
)

var (
	repoDir  string
	binDir   string
	berthBin string
	// berthOCI is a symlink named berth-oci to berthBin: called by that
	// name berth is a runc-compatible runtime.
	berthOCI string
	probeBin string
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "engine tests run real containers and need root")
		os.Exit(1)
	}
	repoDir = os.Getenv("BERTH_REPO")
	if repoDir == "" {
		repoDir, _ = filepath.Abs("../..")
	}
	var err error
	binDir, err = os.MkdirTemp("", "berth-eng-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := func(out, pkg string) string {
		if err := rig.Build(repoDir, out, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(binDir)
			os.Exit(1)
		}
		return out
	}
	berthBin = os.Getenv("BERTH_BIN")
	if berthBin == "" {
		berthBin = build(filepath.Join(binDir, "berth"), ".")
	}
	probeBin = os.Getenv("BERTH_PROBE")
	if probeBin == "" {
		probeBin = build(filepath.Join(binDir, "probe"), "./testdata/probe")
	}
	build(filepath.Join(binDir, "mkimage"), "./testdata/mkimage")
	berthOCI = filepath.Join(binDir, "berth-oci")
	if err := os.Symlink(berthBin, berthOCI); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(binDir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// need fails the test when a program an engine test uses is missing: on
// the host the engines are part of the test set-up (make deps), so their
// absence is an error, not a reason to skip.
func need(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed (run 'make deps'): %v", p, err)
		}
	}
}

var (
	imagesOnce sync.Once
	imagesErr  error
)

// imageTars writes the test image and the pause image as docker save
// archives (once per run) and returns their paths.
func imageTars(t *testing.T) (busybox, pause string) {
	t.Helper()
	busybox = filepath.Join(binDir, "busybox.tar")
	pause = filepath.Join(binDir, "pause.tar")
	imagesOnce.Do(func() {
		mk := filepath.Join(binDir, "mkimage")
		for _, args := range [][]string{
			{"-probe", probeBin, busybox, testImage},
			{"-probe", probeBin, "-cmd", "sleep 2147483647", pause, pauseImage},
		} {
			if b, err := exec.Command(mk, args...).CombinedOutput(); err != nil {
				imagesErr = fmt.Errorf("mkimage %s: %v: %s", args, err, b)
				return
			}
		}
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
	return busybox, pause
}

// result is a finished command.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cmdTimeout bounds one engine command, so a hung engine fails the test
// instead of the whole run.
const cmdTimeout = 3 * time.Minute

// run runs a command with extra environment, its output captured in files:
// a detached container or a monitor (conmon, a shim) may keep the stdio it
// inherited, and a pipe would keep this call waiting for it.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	outF, err := os.CreateTemp("", "berth-eng-out")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "berth-eng-err")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	err = cmd.Run()
	r := result{args: append([]string{name}, args...), code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	r.stdout, r.stderr = string(o), string(e)
	if ctx.Err() != nil {
		t.Fatalf("timed out: %s", r)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// must fails the test unless r succeeded.
func must(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("failed: %s", r)
	}
	return r
}

// tempDir makes a directory under /var/tmp (sockets need short paths, and
// overlay upper directories need a real file system) that the test
// removes at the end, after its engine has been cleaned up.
func tempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeFile writes a file of the test's set-up.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkMissingExecutable asserts that an engine told the user which
// program could not be run and why, as runc's users expect.
func checkMissingExecutable(t *testing.T, r result) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("a missing executable ran: %s", r)
	}
	msg := r.stdout + r.stderr
	if !strings.Contains(msg, "/nonexistent") || !strings.Contains(strings.ToLower(msg), "no such file") {
		t.Errorf("the message does not say that /nonexistent does not exist: %s", r)
	}
}
