// Package rig is the test rig of berth's integration test packages
// (tests/core, tests/containers): it builds berth and the probe once per
// test binary, gives each test its own berth state root (and data root with
// the busybox test image), runs berth commands and checks that nothing a
// test created is left behind. The tests run real containers as root and
// assert on what the probe (testdata/probe) sees inside them and on what
// the host's kernel files say.
package rig

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
	// BerthBin is the berth binary under test: $BERTH_BIN or built by Main.
	BerthBin string
	// ProbeBin is the probe the test rootfs and image carry: $BERTH_PROBE
	// or built by Main.
	ProbeBin string
	// RepoDir is the repository: $BERTH_REPO or two levels up from the
	// test package.
	RepoDir string
	idSeq   atomic.Int64
)

// Main is the TestMain of a package using the rig: it needs root, builds
// what is not given in the environment, runs the tests and removes what it
// built.
func Main(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests run real containers and need root")
		os.Exit(1)
	}
	// Containers that name no network get none: only the network tests,
	// whose berth runs in a network namespace of its own (NetEnv), make
	// bridges and firewall tables, which must not land on the machine.
	if _, ok := os.LookupEnv("BERTH_DEFAULT_NETWORK"); !ok {
		os.Setenv("BERTH_DEFAULT_NETWORK", "none")
	}
	RepoDir = os.Getenv("BERTH_REPO")
	if RepoDir == "" {
		RepoDir, _ = filepath.Abs("../..")
	}
	tmp, err := os.MkdirTemp("", "berth-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	BerthBin = os.Getenv("BERTH_BIN")
	ProbeBin = os.Getenv("BERTH_PROBE")
	build := func(out, pkg string) string {
		if err := Build(RepoDir, out, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return out
	}
	if BerthBin == "" {
		BerthBin = build(filepath.Join(tmp, "berth"), ".")
	}
	if ProbeBin == "" {
		ProbeBin = build(filepath.Join(tmp, "probe"), "./testdata/probe")
	}
	code := m.Run()
	os.RemoveAll(tmp)
	if imageTar != "" {
		os.RemoveAll(filepath.Dir(imageTar))
	}
	os.Exit(code)
}

// Build builds package pkg of the repository repo (".", "./testdata/probe")
// into out, statically (CGO_ENABLED=0) as the containers and VMs need.
func Build(repo, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Env is one test's berth: its own state root, cleaned up at the end.
type Env struct {
	T    *testing.T
	Root string
	// Netns, when set, is the network namespace file every berth command
	// of this env runs in (see NetHost); Environ is added to their
	// environment.
	Netns   string
	Environ []string
}

func NewEnv(t *testing.T) *Env {
	t.Helper()
	root, err := os.MkdirTemp("/run", "berth-it-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{T: t, Root: root}
	t.Cleanup(func() {
		// Remove every container the test left, then check nothing of
		// them survives.
		out, _ := exec.Command(BerthBin, "--root", root, "oci", "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command(BerthBin, "--root", root, "oci", "delete", "-f", id).CombinedOutput(); err != nil {
				t.Errorf("cleanup delete %s: %v %s", id, err, b)
			}
		}
		os.RemoveAll(root)
	})
	return e
}

// ID returns a container id unique in this run, starting with prefix.
func (e *Env) ID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), idSeq.Add(1))
}

// Result is a finished berth command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Berth runs berth with this env's state root and returns what it did.
func (e *Env) Berth(args ...string) Result {
	e.T.Helper()
	return e.BerthIn(nil, args...)
}

// BerthIn is Berth with stdin.
func (e *Env) BerthIn(stdin []byte, args ...string) Result {
	e.T.Helper()
	cmd := exec.Command(BerthBin, append([]string{"--root", e.Root}, args...)...)
	if len(e.Environ) > 0 {
		cmd.Env = append(os.Environ(), e.Environ...)
	}
	// Files, not pipes: a created or detached container keeps the stdio it
	// was given, and a pipe would keep this call waiting for it.
	outF, err := os.CreateTemp("", "berth-out")
	if err != nil {
		e.T.Fatal(err)
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp("", "berth-err")
	if err != nil {
		e.T.Fatal(err)
	}
	defer os.Remove(errF.Name())
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = InNetns(e.Netns, cmd.Run)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.T.Fatalf("berth %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	out, _ := os.ReadFile(outF.Name())
	errb, _ := os.ReadFile(errF.Name())
	return Result{string(out), string(errb), code}
}

// Must runs berth and fails the test unless it exits 0.
func (e *Env) Must(args ...string) string {
	e.T.Helper()
	r := e.Berth(args...)
	if r.Code != 0 {
		e.T.Fatalf("berth %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Bundle is a busybox + probe bundle with berth's default spec.
type Bundle struct {
	Dir  string
	Spec *specs.Spec
}

// Bundle makes a bundle whose process runs args (default: /probe).
func (e *Env) Bundle(args ...string) *Bundle {
	e.T.Helper()
	dir := e.T.TempDir()
	cmd := exec.Command(filepath.Join(RepoDir, "testdata/mkrootfs.sh"), filepath.Join(dir, "rootfs"), "--probe", ProbeBin)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.T.Fatalf("mkrootfs: %v\n%s", err, b)
	}
	cmd = exec.Command(BerthBin, "oci", "spec", "--bundle", dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		e.T.Fatalf("oci spec: %v\n%s", err, b)
	}
	b := &Bundle{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		e.T.Fatal(err)
	}
	b.Spec = &specs.Spec{}
	if err := json.Unmarshal(data, b.Spec); err != nil {
		e.T.Fatal(err)
	}
	if len(args) == 0 {
		args = []string{"/probe"}
	}
	b.Spec.Process.Args = args
	b.Save(e.T)
	return b
}

// Save writes the bundle's spec to its config.json.
func (b *Bundle) Save(t *testing.T) {
	t.Helper()
	data, err := json.MarshalIndent(b.Spec, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// RunProbe runs the bundle in the foreground and decodes the probe report.
func (e *Env) RunProbe(b *Bundle) *probe.Report {
	e.T.Helper()
	id := e.ID("probe")
	out := e.Must("oci", "run", "--bundle", b.Dir, id)
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		e.T.Fatalf("decode probe report: %v\n%s", err, out)
	}
	e.AssertGone(id, "/berth/"+id)
	return &rep
}

// AssertGone checks that a container left no state dir and no cgroup.
func (e *Env) AssertGone(id, cgPath string) {
	e.T.Helper()
	if _, err := os.Stat(filepath.Join(e.Root, id)); !os.IsNotExist(err) {
		e.T.Errorf("state dir of %s left behind (%v)", id, err)
	}
	for _, dir := range CgroupDirs(cgPath) {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			e.T.Errorf("cgroup %s of %s left behind (%v)", dir, id, err)
		}
	}
}

// CgroupDirs lists where a cgroup path lives on this host's layout.
func CgroupDirs(path string) []string {
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

// HostCgroupFile is where a limit lives for the host's cgroup mode: v2 name
// first, v1 "controller/file" second.
func HostCgroupFile(t *testing.T, cgPath, v2, v1 string) string {
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

// State returns `oci state` of container id.
func (e *Env) State(id string) specs.State {
	e.T.Helper()
	var st specs.State
	out := e.Must("oci", "state", id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.T.Fatalf("decode state: %v\n%s", err, out)
	}
	return st
}

// WaitFor polls cond until it holds or the time is up.
func WaitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }
