package containers

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/tests/rig"
)

// swapFile is where the host keeps memory+swap (v1) or swap alone (v2),
// or "" where swap is not accounted.
func swapFile(cg string) (path string, v2 bool) {
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		p := filepath.Join("/sys/fs/cgroup", cg, "memory.swap.max")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		return "", true
	}
	p := filepath.Join("/sys/fs/cgroup/memory", cg, "memory.memsw.limit_in_bytes")
	if _, err := os.Stat(p); err == nil {
		return p, false
	}
	return "", false
}

// update changes a running container's cgroup and its record at once;
// inspect, the cgroup and a later start agree; a stopped container's
// update is what its next start gets.
func TestUpdateRunningAndStopped(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "up", "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
		"--cpu-shares", "256", rig.TestImage, "sleep", "300"))
	cg := "/berth/" + id
	cpuset := "0"
	if goruntime.NumCPU() > 1 {
		cpuset = "1"
	}
	if out := c.Must("update", "-m", "128m", "--memory-swap", "384m", "--memory-reservation", "32m", "--cpus", "1.5",
		"--cpu-shares", "512", "--cpuset-cpus", cpuset, "--pids-limit", "70", "--restart", "on-failure:3", "up"); out != "up\n" {
		t.Errorf("update printed %q", out)
	}
	check := func(when string) {
		t.Helper()
		for _, f := range []struct{ v2, v1, want, want2 string }{
			{"memory.max", "memory/memory.limit_in_bytes", strconv.Itoa(128 << 20), ""},
			{"memory.low", "memory/memory.soft_limit_in_bytes", strconv.Itoa(32 << 20), ""},
			{"cpu.max", "cpu/cpu.cfs_quota_us", "150000", "150000 100000"},
			{"cpu.weight", "cpu/cpu.shares", "512", "20"},
			{"cpuset.cpus", "cpuset/cpuset.cpus", cpuset, ""},
			{"pids.max", "pids/pids.max", "70", ""},
		} {
			if got := rig.HostCgroupFile(t, cg, f.v2, f.v1); got != f.want && (f.want2 == "" || got != f.want2) {
				t.Errorf("%s: %s is %s, want %s", when, f.v1, got, f.want)
			}
		}
		if p, v2 := swapFile(cg); p != "" {
			want := strconv.Itoa(384 << 20)
			if v2 {
				want = strconv.Itoa(256 << 20) // swap alone
			}
			if got := strings.TrimSpace(rig.ReadFile(t, p)); got != want {
				t.Errorf("%s: %s is %s, want %s", when, p, got, want)
			}
		}
		got := c.Field("up", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} "+
			"{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}")
		want := strings.Join([]string{strconv.Itoa(128 << 20), strconv.Itoa(384 << 20), strconv.Itoa(32 << 20), "1500000000", "512", cpuset, "70", "on-failure:3"}, " ")
		if got != want {
			t.Errorf("%s: inspect says %s, want %s", when, got, want)
		}
	}
	check("after update")
	c.Must("stop", "-t", "0", "up")
	c.Must("start", "up")
	check("after stop and start")

	// A refused update changes nothing: memory above the swap limit.
	if r := c.Berth("update", "-m", "512m", "up"); r.Code == 0 || !strings.Contains(r.Stderr, "--memory-swap") {
		t.Errorf("update -m above the swap limit: %+v", r)
	}
	check("after a refused update")
	// Bad values are usage errors, before any container is touched.
	for _, bad := range [][]string{{"--memory", "lots", "up"}, {"--cpus", "-1", "up"}, {"--restart", "sometimes", "up"},
		{"--blkio-weight", "5", "up"}, {"up"}, {"-m", "64m"}} {
		if r := c.Berth(append([]string{"update"}, bad...)...); !rig.UsageError(r) {
			t.Errorf("update %v: %+v", bad, r)
		}
	}
	check("after bad input")
	// --pids-limit -1 lifts the limit.
	c.Must("update", "--pids-limit", "-1", "up")
	if got := rig.HostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "max" {
		t.Errorf("pids.max after --pids-limit -1: %s", got)
	}
	c.Must("rm", "-f", "up")

	// A stopped container: the record changes, its next start has it.
	c.Must("create", "--name", "st", "--pids-limit", "20", rig.TestImage, "sleep", "300")
	c.Must("update", "--pids-limit", "33", "-m", "96m", "st")
	if got := c.Field("st", "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}"); got != "33 "+strconv.Itoa(96<<20) {
		t.Errorf("inspect of the stopped container: %s", got)
	}
	c.Must("start", "st")
	sid := c.Field("st", "{{.Id}}")
	if got := rig.HostCgroupFile(t, "/berth/"+sid, "pids.max", "pids/pids.max"); got != "33" {
		t.Errorf("pids.max after start: %s", got)
	}
	if got := rig.HostCgroupFile(t, "/berth/"+sid, "memory.max", "memory/memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory limit after start: %s", got)
	}
	c.Must("rm", "-f", "st")
}

// --blkio-weight reaches io.weight / blkio.weight where the host has the
// file; where it has none (no BFQ), the update is refused and the record
// keeps the old weight.
func TestUpdateBlkioWeight(t *testing.T) {
	c := rig.NewContainerEnv(t)
	id := strings.TrimSpace(c.Must("run", "-d", "--name", "bw", rig.TestImage, "sleep", "300"))
	var file string
	for _, p := range []string{"/sys/fs/cgroup/berth/" + id + "/io.bfq.weight", "/sys/fs/cgroup/berth/" + id + "/io.weight",
		"/sys/fs/cgroup/blkio/berth/" + id + "/blkio.weight", "/sys/fs/cgroup/blkio/berth/" + id + "/blkio.bfq.weight"} {
		if _, err := os.Stat(p); err == nil {
			file = p
			break
		}
	}
	r := c.Berth("update", "--blkio-weight", "300", "bw")
	if file == "" {
		if r.Code == 0 {
			t.Fatalf("update --blkio-weight succeeded with no weight file: %+v", r)
		}
		if got := c.Field("bw", "{{.HostConfig.BlkioWeight}}"); got != "0" {
			t.Errorf("refused update recorded weight %s", got)
		}
	} else {
		if r.Code != 0 {
			t.Fatalf("update --blkio-weight: %+v", r)
		}
		// io.weight is on a 1-10000 scale: 300 is 1+(300-10)*9999/990
		// there, as runc converts it.
		if got := rig.ReadFile(t, file); !strings.Contains(got, "300") && !strings.Contains(got, rig.Itoa(1+(300-10)*9999/990)) {
			t.Errorf("%s: %q", file, got)
		}
		if got := c.Field("bw", "{{.HostConfig.BlkioWeight}}"); got != "300" {
			t.Errorf("inspect weight %s", got)
		}
	}
	c.Must("rm", "-f", "bw")
}
