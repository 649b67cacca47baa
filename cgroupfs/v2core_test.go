package cgroupfs

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestV2CoreOnHybridUnified drives the v2 implementation against the real
// cgroup2 mount of a hybrid host (/sys/fs/cgroup/unified). Only core
// cgroup2 features are there (no controllers enabled), but those are what
// Apply, Freeze, KillAll, Pids, cpu.stat and Destroy use. On a pure v2 host
// TestLifecycle and TestV2Specific cover the same with controllers.
func TestV2CoreOnHybridUnified(t *testing.T) {
	needRoot(t)
	if DetectMode() != Hybrid {
		t.Skipf("host cgroup mode is %s: no separate cgroup2 mount to test on", DetectMode())
	}
	p := fmt.Sprintf("/berth-test-%d-%d/c", os.Getpid(), testSeq.Add(1))
	// enableAll=false: leave the host's root subtree_control alone.
	m := newV2(hybridUnified, p, false)
	parent := newV2(hybridUnified, p[:strings.LastIndex(p, "/")], false)
	t.Cleanup(func() {
		_ = m.Thaw()
		_ = m.KillAll(int(syscall.SIGKILL))
		_ = pollUntil(5*time.Second, func() (bool, error) {
			pids, err := m.Pids()
			return err != nil || len(pids) == 0, nil
		})
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := parent.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	c := startChild(t, forkLoop...)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if cg := procCgroups(t, c.pid()); cg[""] != p {
		t.Fatalf("child's cgroup2 path %q, want %q", cg[""], p)
	}
	// Limits for controllers that are not there: a clear error.
	err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(10)}})
	if err == nil || !strings.Contains(err.Error(), "pids") {
		t.Errorf("pids limit without the controller: %v", err)
	}
	var st *Stats
	err = pollUntil(5*time.Second, func() (bool, error) {
		st, err = m.Stats()
		return err == nil && st.CPUUsageNanos > 0, err
	})
	if err != nil {
		t.Fatalf("stats: %v %+v", err, st)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v", f, err)
	}
	before, _ := m.Pids()
	time.Sleep(300 * time.Millisecond)
	after, _ := m.Pids()
	slices.Sort(before)
	slices.Sort(after)
	if !slices.Equal(before, after) {
		t.Errorf("processes changed while frozen: %v -> %v", before, after)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v after thaw", f, err)
	}
	if err := m.KillAll(int(syscall.SIGKILL)); err != nil {
		t.Fatal(err)
	}
	if !c.exited(5 * time.Second) {
		t.Fatal("child survived KillAll")
	}
	err = pollUntil(5*time.Second, func() (bool, error) {
		pids, err := m.Pids()
		return len(pids) == 0, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m.Exists() || !parent.Exists() {
		t.Fatalf("after Destroy: leaf exists=%v parent exists=%v", m.Exists(), parent.Exists())
	}
}

// TestHugetlb sets a hugepage limit wherever hugetlb lives: the v2 tree,
// a v1 hierarchy, or (on the dev machines) the cgroup2 half of the hybrid
// layout. If the test had to enable hugetlb at the root of a hybrid cgroup2
// mount, it turns it off again when no one else uses it.
func TestHugetlb(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err != nil {
		t.Skip("no 2MB huge pages on this kernel")
	}
	mode := DetectMode()
	mounts, _ := v1Mounts()
	_, v1Huge := mounts["hugetlb"]
	if mode == Hybrid && !v1Huge {
		root := hybridUnified
		if !splitSet(mustRead(t, root, "cgroup.controllers"))["hugetlb"] {
			t.Skip("hybrid host without hugetlb anywhere")
		}
		if !splitSet(mustRead(t, root, "cgroup.subtree_control"))["hugetlb"] {
			t.Cleanup(func() {
				// Restore the host's root only if our test tree is gone.
				ents, _ := os.ReadDir(root)
				for _, e := range ents {
					if e.IsDir() {
						return
					}
				}
				_ = writeFile(root, "cgroup.subtree_control", "-hugetlb")
			})
		}
	}
	m, _ := testCgroup(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 21}}})
	if err != nil {
		t.Fatal(err)
	}
	if v1Huge && mode != Unified {
		expectFile(t, m.Path("hugetlb"), "hugetlb.2MB.limit_in_bytes", "8388608")
	} else {
		expectFile(t, m.Path(""), "hugetlb.2MB.max", "8388608")
	}
}
