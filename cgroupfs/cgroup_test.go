package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var testSeq atomic.Int64

func u64(v uint64) *uint64 { return &v }

// needRoot skips real-cgroup tests for unprivileged runs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
}

// testCgroup returns a manager for a fresh path under a per-test parent
// ("/berth-test-<pid>-<n>/c"), so that shared-parent handling is exercised.
// Cleanup destroys the leaf and the parent.
func testCgroup(t *testing.T) (Manager, string) {
	t.Helper()
	needRoot(t)
	parent := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), testSeq.Add(1))
	p := parent + "/c"
	m, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Thaw()
		_ = m.KillAll(int(syscall.SIGKILL))
		// Processes take a moment to leave after SIGKILL.
		_ = pollUntil(5*time.Second, func() (bool, error) {
			pids, err := m.Pids()
			return err != nil || len(pids) == 0, nil
		})
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: destroy: %v", err)
		}
		pm, err := New(parent)
		if err == nil {
			if err := pm.Destroy(); err != nil {
				t.Errorf("cleanup: destroy parent: %v", err)
			}
		}
	})
	return m, p
}

// child is a process started by a test.
type child struct {
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startChild starts argv; cleanup kills and reaps it.
func startChild(t *testing.T, argv ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	// Our own pipe: Wait must not close the read end under the reader.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c.out = bufio.NewReader(r)
	c.cmd.Stdout = w
	c.cmd.Stderr = os.Stderr
	err = c.cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("cleanup: child %d did not exit", c.cmd.Process.Pid)
		}
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// forkLoop keeps forking short-lived children: it uses memory and CPU in
// its cgroup, and its pid set changes unless frozen.
var forkLoop = []string{"/bin/sh", "-c", "while :; do /bin/sleep 0.02; done"}

func mustRead(t *testing.T, dir, file string) string {
	t.Helper()
	v, err := readFile(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func expectFile(t *testing.T, dir, file, want string) {
	t.Helper()
	if got := mustRead(t, dir, file); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, file, got, want)
	}
}

// procCgroups parses /proc/<pid>/cgroup into hierarchy key -> path; the key
// is the controller list ("memory", "cpu", "name=systemd") or "" for v2.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			for _, c := range strings.Split(parts[1], ",") {
				m[c] = parts[2]
			}
		}
	}
	return m
}

func TestDetectMode(t *testing.T) {
	mode := DetectMode()
	t.Logf("cgroup mode: %s", mode)
	switch {
	case isCgroup2("/sys/fs/cgroup"):
		if mode != Unified {
			t.Fatalf("/sys/fs/cgroup is cgroup2 but mode is %s", mode)
		}
	case isCgroup2("/sys/fs/cgroup/unified"):
		if mode != Hybrid {
			t.Fatalf("/sys/fs/cgroup/unified is cgroup2 but mode is %s", mode)
		}
	default:
		if mode != Legacy {
			t.Fatalf("mode is %s on a host without cgroup2", mode)
		}
	}
	if mode != Unified {
		mounts, err := v1Mounts()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"cpu", "cpuacct", "memory", "pids", "freezer", "devices", "cpuset"} {
			if mounts[c] == "" {
				t.Errorf("v1 controller %s not found in mountinfo", c)
			}
		}
		if _, ok := mounts["name=systemd"]; ok {
			t.Error("named hierarchy taken as a controller")
		}
	}
}

// TestNewCreatesNothing checks New is stateless and lazy.
func TestNewCreatesNothing(t *testing.T) {
	m, _ := testCgroup(t)
	if m.Exists() {
		t.Fatal("cgroup exists before Apply")
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("destroy of a never created cgroup: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	m, p := testCgroup(t)
	c := startChild(t, forkLoop...)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("cgroup missing after Apply")
	}
	mode := DetectMode()

	// The child is in the cgroup in every hierarchy.
	cg := procCgroups(t, c.pid())
	if mode == Unified || mode == Hybrid {
		if cg[""] != p {
			t.Errorf("unified cgroup of child = %q, want %q", cg[""], p)
		}
	}
	if mode != Unified {
		for _, ctrl := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
			if cg[ctrl] != p {
				t.Errorf("%s cgroup of child = %q, want %q", ctrl, cg[ctrl], p)
			}
		}
	}

	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20)},
		CPU: &specs.LinuxCPU{
			Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0",
		},
		Pids: &specs.LinuxPids{Limit: i64(64)},
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}
	if mode == Unified {
		d := m.Path("")
		expectFile(t, d, "memory.max", "67108864")
		expectFile(t, d, "memory.low", "33554432")
		if fileExists(d, "memory.swap.max") {
			expectFile(t, d, "memory.swap.max", "67108864")
		}
		expectFile(t, d, "cpu.max", "50000 100000")
		expectFile(t, d, "cpu.weight", "20")
		expectFile(t, d, "cpuset.cpus", "0")
		expectFile(t, d, "cpuset.mems", "0")
		expectFile(t, d, "pids.max", "64")
		parent := filepath.Dir(d)
		on := splitSet(mustRead(t, parent, "cgroup.subtree_control"))
		for _, c := range []string{"memory", "pids", "cpu", "cpuset"} {
			if !on[c] {
				t.Errorf("controller %s not enabled in %s", c, parent)
			}
		}
	} else {
		expectFile(t, m.Path("memory"), "memory.limit_in_bytes", "67108864")
		expectFile(t, m.Path("memory"), "memory.soft_limit_in_bytes", "33554432")
		if fileExists(m.Path("memory"), "memory.memsw.limit_in_bytes") {
			expectFile(t, m.Path("memory"), "memory.memsw.limit_in_bytes", "134217728")
		}
		expectFile(t, m.Path("cpu"), "cpu.cfs_quota_us", "50000")
		expectFile(t, m.Path("cpu"), "cpu.cfs_period_us", "100000")
		expectFile(t, m.Path("cpu"), "cpu.shares", "512")
		expectFile(t, m.Path("cpuset"), "cpuset.cpus", "0")
		expectFile(t, m.Path("cpuset"), "cpuset.mems", "0")
		expectFile(t, m.Path("pids"), "pids.max", "64")
	}

	// Update: raise the memory limit above the old memsw limit and lower
	// it again (write order matters on v1), lift the pids limit.
	for _, lim := range []int64{256 << 20, 16 << 20} {
		up := &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: i64(lim), Swap: i64(lim * 2)},
			Pids:   &specs.LinuxPids{Limit: i64(-1)},
		}
		if err := m.Set(up); err != nil {
			t.Fatalf("update to %d: %v", lim, err)
		}
		if mode == Unified {
			expectFile(t, m.Path(""), "memory.max", fmtInt(lim))
			expectFile(t, m.Path(""), "pids.max", "max")
		} else {
			expectFile(t, m.Path("memory"), "memory.limit_in_bytes", fmtInt(lim))
			if fileExists(m.Path("memory"), "memory.memsw.limit_in_bytes") {
				expectFile(t, m.Path("memory"), "memory.memsw.limit_in_bytes", fmtInt(2*lim))
			}
			expectFile(t, m.Path("pids"), "pids.max", "max")
		}
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(64)}}); err != nil {
		t.Fatal(err)
	}

	// A fresh manager from the path alone sees the same cgroup.
	m2, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := m2.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, c.pid()) {
		t.Errorf("Pids() = %v, missing child %d", pids, c.pid())
	}

	// Stats: the loop forks and runs, so usage grows.
	var st *Stats
	err = pollUntil(5*time.Second, func() (bool, error) {
		var err error
		st, err = m2.Stats()
		return err == nil && st.MemoryUsage > 0 && st.CPUUsageNanos > 0, err
	})
	if err != nil {
		t.Fatalf("stats: %v (last %+v)", err, st)
	}
	t.Logf("stats: %+v", *st)
	if st.MemoryLimit != 16<<20 {
		t.Errorf("stats memory limit = %d, want %d", st.MemoryLimit, 16<<20)
	}
	if st.PidsCurrent < 1 || st.PidsCurrent > 64 {
		t.Errorf("stats pids current = %d", st.PidsCurrent)
	}
	if st.PidsLimit != 64 {
		t.Errorf("stats pids limit = %d, want 64", st.PidsLimit)
	}
	if st.CPUUserNanos+st.CPUSystemNanos > 10*st.CPUUsageNanos+1e9 {
		t.Errorf("cpu user+system %d way above usage %d", st.CPUUserNanos+st.CPUSystemNanos, st.CPUUsageNanos)
	}

	// Freeze: the set of processes stops changing.
	if err := m2.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m2.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v after Freeze", f, err)
	}
	if mode == Unified {
		ev, _ := readKeyValues(m.Path(""), "cgroup.events")
		if ev["frozen"] != 1 {
			t.Errorf("cgroup.events frozen = %d", ev["frozen"])
		}
	} else {
		expectFile(t, m.Path("freezer"), "freezer.state", "FROZEN")
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid()))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "State:") {
			t.Logf("frozen child %s", l)
		}
	}
	before, _ := m2.Pids()
	time.Sleep(300 * time.Millisecond)
	after, _ := m2.Pids()
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Errorf("processes changed while frozen: %v -> %v", before, after)
	}
	if err := m2.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m2.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v after Thaw", f, err)
	}
	err = pollUntil(5*time.Second, func() (bool, error) {
		now, err := m2.Pids()
		slices.Sort(now)
		return !slices.Equal(now, after), err
	})
	if err != nil {
		t.Errorf("processes do not run after thaw: %v", err)
	}

	// KillAll from yet another manager, as "berth oci kill" would.
	m3, _ := New(p)
	if err := m3.KillAll(int(syscall.SIGKILL)); err != nil {
		t.Fatal(err)
	}
	if !c.exited(5 * time.Second) {
		t.Fatal("child still running after KillAll(SIGKILL)")
	}
	err = pollUntil(5*time.Second, func() (bool, error) {
		pids, err := m3.Pids()
		return len(pids) == 0, err
	})
	if err != nil {
		t.Fatalf("cgroup not empty after KillAll: %v", err)
	}
	if err := m3.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m3.Exists() {
		t.Fatal("cgroup exists after Destroy")
	}
	dirs := []string{m.Path("")}
	for _, ctrl := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
		dirs = append(dirs, m.Path(ctrl))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Destroy (%v)", d, err)
		}
		// The shared parent stays.
		if _, err := os.Stat(filepath.Dir(d)); err != nil {
			t.Errorf("parent of %s removed: %v", d, err)
		}
	}
	if err := m3.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// TestKillAllTerm covers the non-SIGKILL path (signalling every pid).
func TestKillAllTerm(t *testing.T) {
	m, _ := testCgroup(t)
	c := startChild(t, "/bin/sleep", "60")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.KillAll(int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	if !c.exited(5 * time.Second) {
		t.Fatal("child survived SIGTERM")
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
		t.Errorf("child exit: %v", c.cmd.ProcessState)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Errorf("left frozen after KillAll: %v %v", f, err)
	}
}

// TestRefusedLimit checks a value the kernel rejects is an error naming
// the file and the value.
func TestRefusedLimit(t *testing.T) {
	m, _ := testCgroup(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "99"}})
	if err == nil || !strings.Contains(err.Error(), "cpuset.cpus") || !strings.Contains(err.Error(), `"99"`) {
		t.Errorf("cpuset 99: error %v", err)
	}
	err = m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(10), Period: u64(100000)}})
	if err == nil || !strings.Contains(err.Error(), `"10`) {
		t.Errorf("quota 10: error %v", err)
	}
	err = m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}})
	if err == nil {
		t.Error("swap below limit accepted")
	}
	err = m.Set(&specs.LinuxResources{Unified: map[string]string{"no.such.file": "1"}})
	if err == nil {
		t.Error("unified key for a missing file accepted")
	}
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../2MB", Limit: 1}}}); err == nil {
		t.Error("bad hugepage size accepted")
	}
}

// TestDestroyPartial: Destroy copes with a cgroup created in only some
// hierarchies, and with sub-cgroups made by the container.
func TestDestroyPartial(t *testing.T) {
	m, _ := testCgroup(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	// A nested cgroup, as a container with cgroupns may create.
	for _, ctrl := range []string{"", "memory", "pids"} {
		if d := m.Path(ctrl); d != "" {
			if err := os.Mkdir(filepath.Join(d, "nested"), 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
		}
	}
	// And remove it from one hierarchy as a half-done Destroy would.
	if d := m.Path("cpu"); d != "" && DetectMode() != Unified {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m.Exists() {
		t.Fatal("exists after Destroy")
	}
}

// deviceProbe starts a shell that waits for a line on stdin, then reports
// which device opens work. Its redirections need /dev/null.
func deviceProbe(t *testing.T) *child {
	return startChild(t, "/bin/sh", "-c", `read x
if head -c1 /dev/zero >/dev/null 2>&1; then echo zero-read=ok; else echo zero-read=denied; fi
if (echo x >/dev/zero) 2>/dev/null; then echo zero-write=ok; else echo zero-write=denied; fi
if head -c1 /dev/urandom >/dev/null 2>&1; then echo urandom-read=ok; else echo urandom-read=denied; fi
echo end`)
}

func probeResult(t *testing.T, c *child) string {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for {
		l, err := c.out.ReadString('\n')
		if err != nil {
			t.Fatalf("probe output: %v (so far %v)", err, lines)
		}
		l = strings.TrimSpace(l)
		if l == "end" {
			return strings.Join(lines, " ")
		}
		lines = append(lines, l)
	}
}

var probeRules = []specs.LinuxDeviceCgroup{
	dev(false, "a", wild, wild, "rwm"),
	dev(true, "c", 1, 3, "rwm"), // /dev/null
	dev(true, "c", 1, 5, "r"),   // /dev/zero, read only
	dev(true, "c", 136, wild, "rwm"),
}

const probeWant = "zero-read=ok zero-write=denied urandom-read=denied"

// TestDevices enforces a device list through the manager, whatever the
// mode (v1 devices.allow/deny or a BPF program on v2), and checks it from
// inside the cgroup.
func TestDevices(t *testing.T) {
	m, _ := testCgroup(t)
	c := deviceProbe(t)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Devices: probeRules}); err != nil {
		t.Fatal(err)
	}
	if DetectMode() != Unified {
		expectFile(t, m.Path("devices"), "devices.list", "c 1:3 rwm\nc 1:5 r\nc 136:* rwm")
	}
	// Setting it again (update) replaces, not stacks.
	if err := m.Set(&specs.LinuxResources{Devices: probeRules}); err != nil {
		t.Fatal(err)
	}
	if got := probeResult(t, c); got != probeWant {
		t.Errorf("probe: %s\nwant:  %s", got, probeWant)
	}
}

// attachedDevicePrograms counts the device programs on a cgroup2 dir.
func attachedDevicePrograms(t *testing.T, dir string) int {
	t.Helper()
	n, err := countDevicePrograms(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDevicesBPF attaches the device program to a cgroup2 directory. On a
// hybrid host the kernel enforces it too (the cgroup2 membership counts),
// so this runs on Unified and Hybrid hosts.
func TestDevicesBPF(t *testing.T) {
	needRoot(t)
	mode := DetectMode()
	if mode == Legacy {
		t.Skip("no cgroup2 hierarchy on this host (cgroup v1 only)")
	}
	m, _ := testCgroup(t)
	c := deviceProbe(t)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	dir := m.Path("")
	// First a permissive program, then the real one: it must replace.
	if err := setDevicesBPF(dir, []specs.LinuxDeviceCgroup{dev(true, "a", wild, wild, "rwm")}); err != nil {
		t.Fatal(err)
	}
	if err := setDevicesBPF(dir, probeRules); err != nil {
		t.Fatal(err)
	}
	if n := attachedDevicePrograms(t, dir); n != 1 {
		t.Errorf("%d device programs attached, want 1", n)
	}
	if got := probeResult(t, c); got != probeWant {
		t.Errorf("probe: %s\nwant:  %s", got, probeWant)
	}
}

// TestUnifiedResources writes the Unified map on the cgroup2 side
// (Unified and Hybrid hosts).
func TestUnifiedResources(t *testing.T) {
	needRoot(t)
	mode := DetectMode()
	if mode == Legacy {
		t.Skip("no cgroup2 hierarchy on this host (cgroup v1 only)")
	}
	m, _ := testCgroup(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	u := map[string]string{"cgroup.max.descendants": "5"}
	if mode == Unified {
		u["memory.high"] = "104857600"
	}
	if err := m.Set(&specs.LinuxResources{Unified: u}); err != nil {
		t.Fatal(err)
	}
	for k, v := range u {
		expectFile(t, m.Path(""), k, v)
	}
}

// TestV2Specific covers v2-only files: io.max, cpu.max with a period only,
// cgroup.kill. It fails (not skips) when the host is pure v2 and something
// is wrong.
func TestV2Specific(t *testing.T) {
	needRoot(t)
	if DetectMode() != Unified {
		t.Skipf("host cgroup mode is %s, not pure cgroup v2", DetectMode())
	}
	m, _ := testCgroup(t)
	c := startChild(t, forkLoop...)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	d := m.Path("")
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, d, "cpu.max", "20000 100000")
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, d, "cpu.max", "20000 50000")
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, d, "cpu.max", "max 50000")
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, d, "memory.max", "max")

	// io.max on the first block device the kernel lists, if any.
	if maj, min, ok := firstBlockDevice(); ok {
		bd := specs.LinuxBlockIODevice{Major: maj, Minor: min}
		err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: bd, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: bd, Rate: 100}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		got := mustRead(t, d, "io.max")
		want := fmt.Sprintf("%d:%d rbps=1048576 wbps=max riops=max wiops=100", maj, min)
		if !strings.Contains(got, want) {
			t.Errorf("io.max = %q, want a line %q", got, want)
		}
	} else {
		t.Log("no block device: io.max not checked")
	}

	if fileExists(d, "cgroup.kill") {
		if err := m.KillAll(int(syscall.SIGKILL)); err != nil {
			t.Fatal(err)
		}
		if !c.exited(5 * time.Second) {
			t.Fatal("child survived cgroup.kill")
		}
	}
}

// firstBlockDevice returns the numbers of a whole disk from /proc/partitions.
func firstBlockDevice() (int64, int64, bool) {
	b, err := os.ReadFile("/proc/partitions")
	if err != nil {
		return 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 {
			continue
		}
		maj, err1 := strconv.ParseInt(f[0], 10, 64)
		min, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil && !strings.HasPrefix(f[3], "loop") && !strings.HasPrefix(f[3], "ram") {
			if _, err := os.Stat("/sys/block/" + f[3]); err == nil {
				return maj, min, true
			}
		}
	}
	return 0, 0, false
}

// TestV1Specific covers v1-only behaviour: freezer states, memsw ordering,
// oom_control, swappiness, blkio throttles. It fails when the host has v1
// controllers and something is wrong.
func TestV1Specific(t *testing.T) {
	needRoot(t)
	if DetectMode() == Unified {
		t.Skip("host is pure cgroup v2")
	}
	m, _ := testCgroup(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	mem := m.Path("memory")
	err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: i64(32 << 20), Swappiness: u64(10), DisableOOMKiller: boolp(true),
	}})
	if err != nil {
		t.Fatal(err)
	}
	expectFile(t, mem, "memory.limit_in_bytes", "33554432")
	expectFile(t, mem, "memory.swappiness", "10")
	if oc := mustRead(t, mem, "memory.oom_control"); !strings.Contains(oc, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control = %q", oc)
	}
	// Unlimited again: memsw must be lifted first.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Stats(); err != nil || st.MemoryLimit != 0 {
		t.Errorf("stats after unlimited: %+v %v", st, err)
	}
	if maj, min, ok := firstBlockDevice(); ok {
		bd := specs.LinuxBlockIODevice{Major: maj, Minor: min}
		err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: bd, Rate: 1 << 20}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		expectFile(t, m.Path("blkio"), "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d 1048576", maj, min))
	}
	// A default-allow list with one deny.
	err = m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		dev(true, "a", wild, wild, "rwm"), dev(false, "c", 1, 5, "w"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.Path("devices"), "devices.list", "a *:* rwm")
	// The hierarchies are separate dirs, the parent got a cpuset.
	parent := filepath.Dir(m.Path("cpuset"))
	if mustRead(t, parent, "cpuset.cpus") == "" || mustRead(t, parent, "cpuset.mems") == "" {
		t.Error("parent cpuset left empty")
	}
	if DetectMode() == Hybrid {
		if _, err := os.Stat(m.Path("")); err != nil {
			t.Errorf("hybrid: unified dir missing: %v", err)
		}
	}
}

func boolp(b bool) *bool { return &b }

// TestDestroyPrunesUnitParents: on v1, a container's cgroup in a systemd
// unit's (--cgroups=split) takes with it the unit's and slice's cgroups
// that are left empty in the controllers' hierarchies, but not one still
// in use, nor a parent that is no unit's.
func TestDestroyPrunesUnitParents(t *testing.T) {
	needRoot(t)
	if DetectMode() == Unified {
		t.Skip("v1 only: on cgroup2 systemd removes a unit's cgroup itself")
	}
	base := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), testSeq.Add(1))
	slice := base + "/t.slice"
	unit := slice + "/u.service"
	busy := slice + "/busy.service"
	var made []Manager
	mk := func(p string) Manager {
		m, err := New(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(-1); err != nil {
			t.Fatal(err)
		}
		made = append(made, m)
		return m
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = made[i].Destroy()
		}
		// Every hierarchy, the named and unified ones too.
		mounts, _ := Mounts()
		for _, p := range []string{unit + "/berth-a", busy + "/berth-b", busy, unit, slice, base} {
			for _, mnt := range mounts {
				_ = os.Remove(filepath.Join(mnt.Mountpoint, p))
			}
		}
	})
	a := mk(unit + "/berth-a")
	b := mk(busy + "/berth-b")
	if err := a.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, mp := range mountPoints(t) {
		for _, p := range []string{unit} {
			if _, err := os.Stat(filepath.Join(mp, p)); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", filepath.Join(mp, p), err)
			}
		}
		// The slice holds another unit's cgroup, and base is no unit's.
		for _, p := range []string{slice, base} {
			if _, err := os.Stat(filepath.Join(mp, p)); err != nil {
				t.Errorf("%s removed: %v", filepath.Join(mp, p), err)
			}
		}
	}
	if err := b.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, mp := range mountPoints(t) {
		for _, p := range []string{busy, slice} {
			if _, err := os.Stat(filepath.Join(mp, p)); !os.IsNotExist(err) {
				t.Errorf("%s left behind (%v)", filepath.Join(mp, p), err)
			}
		}
		if _, err := os.Stat(filepath.Join(mp, base)); err != nil {
			t.Errorf("%s removed: %v", filepath.Join(mp, base), err)
		}
	}
}

// mountPoints are the v1 controllers' hierarchies (not the named ones).
func mountPoints(t *testing.T) []string {
	t.Helper()
	m, err := New("/berth-test-mounts")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m.(*v1)
	if !ok {
		t.Fatalf("manager %T on v1", m)
	}
	seen := map[string]bool{}
	var out []string
	for _, mp := range v.mounts {
		if !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	return out
}
