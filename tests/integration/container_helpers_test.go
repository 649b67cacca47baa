package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/probe"
)

const testImage = "berth-test/busybox"

var (
	imageOnce sync.Once
	imageTar  string
	imageErr  string
)

// testImageTar builds the busybox + probe image archive once per run.
func testImageTar(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-it-image")
		if err != nil {
			imageErr = err.Error()
			return
		}
		imageTar = filepath.Join(dir, "busybox.tar")
		cmd := exec.Command(filepath.Join(repoDir, "testdata/mkimage.sh"), imageTar)
		cmd.Env = append(os.Environ(), "PROBE="+probeBin)
		if b, err := cmd.CombinedOutput(); err != nil {
			imageErr = err.Error() + ": " + string(b)
		}
	})
	if imageErr != "" {
		t.Fatalf("mkimage: %s", imageErr)
	}
	return imageTar
}

// cenv is a berth with its own state root and data root holding the test
// image; everything its containers made is checked gone at the end.
type cenv struct {
	*env
	data string
}

func newContainerEnv(t *testing.T) *cenv {
	t.Helper()
	e := newEnv(t)
	data, err := os.MkdirTemp("/var/tmp", "berth-it-data")
	if err != nil {
		t.Fatal(err)
	}
	c := &cenv{env: e, data: data}
	t.Cleanup(func() { c.cleanup() })
	c.must("load", "-q", "-i", testImageTar(t))
	return c
}

func (c *cenv) berth(args ...string) result {
	c.t.Helper()
	return c.env.berthIn(nil, append([]string{"--data-root", c.data}, args...)...)
}

func (c *cenv) berthIn(stdin []byte, args ...string) result {
	c.t.Helper()
	return c.env.berthIn(stdin, append([]string{"--data-root", c.data}, args...)...)
}

func (c *cenv) must(args ...string) string {
	c.t.Helper()
	r := c.berth(args...)
	if r.code != 0 {
		c.t.Fatalf("berth %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cmd is a berth command line with this env's roots, for tests that need
// to run it themselves (signals, ptys, concurrency).
func (c *cenv) cmd(args ...string) *exec.Cmd {
	return exec.Command(berthBin, append([]string{"--root", c.root, "--data-root", c.data}, args...)...)
}

func (c *cenv) field(name, tmpl string) string {
	c.t.Helper()
	return strings.TrimSpace(c.must("inspect", "-f", tmpl, name))
}

// probeRun runs the probe in a new container and decodes its report.
func (c *cenv) probeRun(flags ...string) *probe.Report {
	c.t.Helper()
	args := append(append([]string{"run", "--rm"}, flags...), testImage, "/probe")
	out := c.must(args...)
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		c.t.Fatalf("decode probe report: %v\n%s", err, out)
	}
	return &rep
}

// mountsUnder lists mount points below dir.
func mountsUnder(dir string) []string {
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

// berthProcs lists processes whose command line mentions dir (monitors of
// this env).
func berthProcs(dir string) []int {
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
func (c *cenv) cleanup() {
	t := c.t
	out, _ := c.cmd("ps", "-aq", "--no-trunc").Output()
	ids := strings.Fields(string(out))
	for _, id := range ids {
		if b, err := c.cmd("rm", "-f", "-v", id).CombinedOutput(); err != nil {
			t.Errorf("cleanup rm -f %s: %v %s", id, err, b)
		}
	}
	for _, id := range ids {
		for _, dir := range cgroupDirs("/berth/" + id) {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("cgroup %s left behind", dir)
				_ = unix.Rmdir(dir)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(berthProcs(c.data)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range berthProcs(c.data) {
		t.Errorf("berth process %d left behind", pid)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_, _ = c.cmd("image", "unmount", testImage).CombinedOutput()
	for _, m := range mountsUnder(c.data) {
		t.Errorf("mount %s left behind", m)
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	os.RemoveAll(c.data)
}

// ps returns `ps -a` rows as name -> status.
func (c *cenv) psStatus() map[string]string {
	c.t.Helper()
	out := c.must("ps", "-a", "--format", "{{.Names}}|{{.Status}}")
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if n, s, ok := strings.Cut(l, "|"); ok {
			m[n] = s
		}
	}
	return m
}
