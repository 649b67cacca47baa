// Package integration runs real containers with the berth binary, as root,
// and asserts on what the probe (testdata/probe) sees inside them and on
// what the host's kernel files say.
package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/internal/probe"
)

var (
	berthBin string
	probeBin string
	repoDir  string
	idSeq    atomic.Int64
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests run real containers and need root")
		os.Exit(1)
	}
	repoDir = os.Getenv("BERTH_REPO")
	if repoDir == "" {
		repoDir, _ = filepath.Abs("../..")
	}
	tmp, err := os.MkdirTemp("", "berth-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	berthBin = os.Getenv("BERTH_BIN")
	probeBin = os.Getenv("BERTH_PROBE")
	build := func(out, pkg string) string {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = repoDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
		return out
	}
	if berthBin == "" {
		berthBin = build(filepath.Join(tmp, "berth"), ".")
	}
	if probeBin == "" {
		probeBin = build(filepath.Join(tmp, "probe"), "./testdata/probe")
	}
	code := m.Run()
	os.RemoveAll(tmp)
	if imageTar != "" {
		os.RemoveAll(filepath.Dir(imageTar))
	}
	os.Exit(code)
}

// env is one test's berth: its own state root, cleaned up at the end.
type env struct {
	t    *testing.T
	root string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := os.MkdirTemp("/run", "berth-it-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root}
	t.Cleanup(func() {
		// Remove every container the test left, then check nothing of
		// them survives.
		out, _ := exec.Command(berthBin, "--root", root, "oci", "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command(berthBin, "--root", root, "oci", "delete", "-f", id).CombinedOutput(); err != nil {
				t.Errorf("cleanup delete %s: %v %s", id, err, b)
			}
		}
		os.RemoveAll(root)
	})
	return e
}

func (e *env) id(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), idSeq.Add(1))
}

// result is a finished berth command.
type result struct {
	stdout, stderr string
	code           int
}

func (e *env) berth(args ...string) result {
	e.t.Helper()
	return e.berthIn(nil, args...)
}

func (e *env) berthIn(stdin []byte, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	// Files, not pipes: a created or detached container keeps the stdio it
	// was given, and a pipe would keep this call waiting for it.
	outF, err := os.CreateTemp("", "berth-out")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "berth-err")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("berth %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	out, _ := os.ReadFile(outF.Name())
	errb, _ := os.ReadFile(errF.Name())
	return result{string(out), string(errb), code}
}

// must runs berth and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// bundle is a busybox + probe bundle with berth's default spec.
type bundle struct {
	dir  string
	spec *specs.Spec
}

func (e *env) bundle(args ...string) *bundle {
	e.t.Helper()
	dir := e.t.TempDir()
	cmd := exec.Command(filepath.Join(repoDir, "testdata/mkrootfs.sh"), filepath.Join(dir, "rootfs"), "--probe", probeBin)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("mkrootfs: %v\n%s", err, b)
	}
	cmd = exec.Command(berthBin, "oci", "spec", "--bundle", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("oci spec: %v\n%s", err, b)
	}
	b := &bundle{dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	b.spec = &specs.Spec{}
	if err := json.Unmarshal(data, b.spec); err != nil {
		e.t.Fatal(err)
	}
	if len(args) == 0 {
		args = []string{"/probe"}
	}
	b.spec.Process.Args = args
	b.save(e.t)
	return b
}

func (b *bundle) save(t *testing.T) {
	t.Helper()
	data, err := json.MarshalIndent(b.spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runProbe runs the bundle in the foreground and decodes the probe report.
func (e *env) runProbe(b *bundle) *probe.Report {
	e.t.Helper()
	id := e.id("probe")
	out := e.must("oci", "run", "--bundle", b.dir, id)
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		e.t.Fatalf("decode probe report: %v\n%s", err, out)
	}
	e.assertGone(id, "/berth/"+id)
	return &rep
}

// assertGone checks that a container left no state dir and no cgroup.
func (e *env) assertGone(id, cgPath string) {
	e.t.Helper()
	if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
		e.t.Errorf("state dir of %s left behind (%v)", id, err)
	}
	for _, dir := range cgroupDirs(cgPath) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			e.t.Errorf("cgroup %s of %s left behind (%v)", dir, id, err)
		}
	}
}

// cgroupDirs lists where a cgroup path lives on this host's layout.
func cgroupDirs(path string) []string {
	// Every hierarchy: each v1 controller's, named ones such as
	// name=systemd, and the unified one, whatever the host mounts.
	mounts, err := cgroupfs.Mounts()
	if err != nil {
		panic(fmt.Sprintf("cgroup mounts: %v", err))
	}
	seen := map[string]bool{}
	var dirs []string
	for _, m := range mounts {
		d := filepath.Join(m.Mountpoint, path)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// hostCgroupFile is where a limit lives for the host's cgroup mode: v2 name
// first, v1 "controller/file" second.
func hostCgroupFile(t *testing.T, cgPath, v2, v1 string) string {
	t.Helper()
	var p string
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		p = filepath.Join("/sys/fs/cgroup", cgPath, v2)
	} else {
		p = filepath.Join("/sys/fs/cgroup", filepath.Dir(v1), cgPath, filepath.Base(v1))
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return strings.TrimSpace(string(data))
}

func (e *env) state(id string) specs.State {
	e.t.Helper()
	var st specs.State
	out := e.must("oci", "state", id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("decode state: %v\n%s", err, out)
	}
	return st
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
