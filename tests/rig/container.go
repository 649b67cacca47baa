package rig

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/probe"
)

// TestImage is the name of the busybox + probe image (testdata/mkimage.sh).
const TestImage = "berth-test/busybox"

var (
	imageOnce sync.Once
	imageTar  string
	imageErr  string
)

// TestImageTar builds the busybox + probe image archive once per run.
func TestImageTar(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-it-image")
		if err != nil {
			imageErr = err.Error()
			return
		}
		imageTar = filepath.Join(dir, "busybox.tar")
		cmd := exec.Command(filepath.Join(RepoDir, "testdata/mkimage.sh"), imageTar)
		cmd.Env = append(os.Environ(), "PROBE="+ProbeBin)
		if b, err := cmd.CombinedOutput(); err != nil {
			imageErr = err.Error() + ": " + string(b)
		}
	})
	if imageErr != "" {
		t.Fatalf("mkimage: %s", imageErr)
	}
	return imageTar
}

// ContainerEnv is a berth with its own state root and data root holding the
// test image; everything its containers made is checked gone at the end.
type ContainerEnv struct {
	*Env
	Data string
}

// NewContainerEnv makes a ContainerEnv with the test image loaded.
func NewContainerEnv(t *testing.T) *ContainerEnv {
	t.Helper()
	data, err := os.MkdirTemp("/var/tmp", "berth-it-data")
	if err != nil {
		t.Fatal(err)
	}
	return NewContainerEnvIn(t, data)
}

// NewContainerEnvIn is NewContainerEnv with the data root data, which the
// test's end removes with the rest.
func NewContainerEnvIn(t *testing.T, data string) *ContainerEnv {
	t.Helper()
	c := &ContainerEnv{Env: NewEnv(t), Data: data}
	t.Cleanup(func() { c.cleanup() })
	c.Must("load", "-q", "-i", TestImageTar(t))
	return c
}

// Berth runs berth with this env's state and data roots.
func (c *ContainerEnv) Berth(args ...string) Result {
	c.T.Helper()
	return c.Env.BerthIn(nil, append([]string{"--data-root", c.Data}, args...)...)
}

// BerthIn is Berth with stdin.
func (c *ContainerEnv) BerthIn(stdin []byte, args ...string) Result {
	c.T.Helper()
	return c.Env.BerthIn(stdin, append([]string{"--data-root", c.Data}, args...)...)
}

// Must runs berth and fails the test unless it exits 0.
func (c *ContainerEnv) Must(args ...string) string {
	c.T.Helper()
	r := c.Berth(args...)
	if r.Code != 0 {
		c.T.Fatalf("berth %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Cmd is a berth command line with this env's roots, for tests that need
// to run it themselves (signals, ptys, concurrency); with a Netns, run
// it inside rig.InNetns(Env.Netns, ...).
func (c *ContainerEnv) Cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(BerthBin, append([]string{"--root", c.Root, "--data-root", c.Data}, args...)...)
	if len(c.Environ) > 0 {
		cmd.Env = append(os.Environ(), c.Environ...)
	}
	return cmd
}

// Field returns `inspect -f tmpl name`, trimmed.
func (c *ContainerEnv) Field(name, tmpl string) string {
	c.T.Helper()
	return strings.TrimSpace(c.Must("inspect", "-f", tmpl, name))
}

// ProbeRun runs the probe in a new container and decodes its report.
func (c *ContainerEnv) ProbeRun(flags ...string) *probe.Report {
	c.T.Helper()
	args := append(append([]string{"run", "--rm"}, flags...), TestImage, "/probe")
	out := c.Must(args...)
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		c.T.Fatalf("decode probe report: %v\n%s", err, out)
	}
	return &rep
}

// MountsUnder lists mount points below dir.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// BerthProcs lists processes whose command line mentions dir (monitors of
// this env).
func BerthProcs(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid := 0
		for _, ch := range e.Name() {
			if ch < '0' || ch > '9' {
				pid = -1
				break
			}
			pid = pid*10 + int(ch-'0')
		}
		if pid <= 0 || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cleanup removes what the test left and fails it if rm -f could not.
func (c *ContainerEnv) cleanup() {
	t := c.T
	var out []byte
	_ = InNetns(c.Netns, func() (err error) { out, err = c.Cmd("ps", "-aq", "--no-trunc").Output(); return })
	ids := strings.Fields(string(out))
	for _, id := range ids {
		if b, err := c.output(c.Cmd("rm", "-f", "-v", id)); err != nil {
			t.Errorf("cleanup rm -f %s: %v %s", id, err, b)
		}
	}
	for _, id := range ids {
		for _, dir := range CgroupDirs("/berth/" + id) {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("cgroup %s left behind", dir)
				_ = unix.Rmdir(dir)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(BerthProcs(c.Data)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range BerthProcs(c.Data) {
		t.Errorf("berth process %d left behind", pid)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_, _ = c.output(c.Cmd("image", "unmount", TestImage))
	// Under the state root: the network namespace files.
	for _, m := range append(MountsUnder(c.Data), MountsUnder(c.Root)...) {
		t.Errorf("mount %s left behind", m)
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	os.RemoveAll(c.Data)
}

// PsStatus returns `ps -a` rows as name -> status.
func (c *ContainerEnv) PsStatus() map[string]string {
	c.T.Helper()
	out := c.Must("ps", "-a", "--format", "{{.Names}}|{{.Status}}")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, s, ok := strings.Cut(l, "|"); ok {
			m[n] = s
		}
	}
	return m
}

// SimulateReboot leaves env c as a reboot would: every process of its
// containers gone (pids: the containers' and their monitors'), their
// mounts and cgroups gone, and the state root (a tmpfs under /run) empty,
// while the records under the data root stay.
func SimulateReboot(t *testing.T, c *ContainerEnv, ids []string, pids []int) {
	t.Helper()
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	WaitFor(t, "the killed processes gone", 10*time.Second, func() bool {
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				return false
			}
		}
		return true
	})
	mounts := append(MountsUnder(c.Data), MountsUnder(c.Root)...)
	sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // the deepest first
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", m, err)
		}
	}
	for _, id := range ids {
		for _, dir := range CgroupDirs("/berth/" + id) {
			if err := unix.Rmdir(dir); err != nil && !os.IsNotExist(err) {
				t.Fatalf("rmdir %s: %v", dir, err)
			}
		}
	}
	ents, err := os.ReadDir(c.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(c.Root, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
