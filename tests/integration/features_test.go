package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProcessAndLinuxFields(t *testing.T) {
	e := newEnv(t)
	b := e.bundle()
	b.spec.Domainname = "example.test"
	b.spec.Hostname = "box1"
	b.spec.Process.OOMScoreAdj = ptr(500)
	b.spec.Process.User.Umask = ptr(uint32(0o027))
	b.spec.Process.Env = append(b.spec.Process.Env, "HELLO=world")
	b.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
	b.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o640))}}
	b.save(t)
	rep := e.runProbe(b)
	if rep.Hostname != "box1" || rep.Domain != "example.test" {
		t.Errorf("hostname %q domainname %q", rep.Hostname, rep.Domain)
	}
	if rep.OOMScoreAdj != 500 {
		t.Errorf("oom_score_adj %d", rep.OOMScoreAdj)
	}
	if rep.Umask != 0o027 {
		t.Errorf("umask %o", rep.Umask)
	}
	if rep.Sysctls["net.ipv4.ip_forward"] != "1" || rep.Sysctls["kernel.shm_rmid_forced"] != "1" {
		t.Errorf("sysctls %v", rep.Sysctls)
	}
	found := false
	for _, d := range rep.Devices {
		found = found || d == "mynull"
	}
	if !found {
		t.Errorf("/dev/mynull missing: %v", rep.Devices)
	}
	envOK := false
	for _, v := range rep.Env {
		envOK = envOK || v == "HELLO=world"
	}
	if !envOK {
		t.Errorf("env %v", rep.Env)
	}
	// The host's sysctl is untouched by the container's.
	if host, _ := os.ReadFile("/proc/sys/kernel/shm_rmid_forced"); strings.TrimSpace(string(host)) == "1" && rep.Sysctls["kernel.shm_rmid_forced"] == "1" {
		t.Log("host already has kernel.shm_rmid_forced=1")
	}

	// A sysctl that is not namespaced is refused up front; an IPC sysctl
	// is known by its name, not by a prefix (as for run --sysctl).
	for _, k := range []string{"vm.swappiness", "kernel.shmfoo"} {
		b.spec.Linux.Sysctl = map[string]string{k: "10"}
		b.save(t)
		id := e.id("sysctl")
		r := e.berth("oci", "run", "--bundle", b.dir, id)
		if r.code != 125 {
			t.Fatalf("non-namespaced sysctl %s: exit %d", k, r.code)
		}
		checkOneLine(t, r.stderr, "not namespaced")
		e.assertGone(id, "/berth/"+id)
	}
}

func TestDeviceUsable(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("/bin/sh", "-c", "echo x > /dev/mynull && echo WROTE; ls -l /dev/mynull")
	b.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o640)), UID: ptr(uint32(0)), GID: ptr(uint32(5))}}
	b.save(t)
	out := e.must("oci", "run", "--bundle", b.dir, e.id("dev"))
	if !strings.Contains(out, "WROTE") || !strings.Contains(out, "crw-r-----") {
		t.Errorf("device: %q", out)
	}
	// Without a rule, a host device is not usable even if its node is made.
	b = e.bundle("/bin/sh", "-c", "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem >/dev/null 2>&1 && echo READ-MEM; true")
	out = e.must("oci", "run", "--bundle", b.dir, e.id("nodev"))
	if strings.Contains(out, "READ-MEM") {
		t.Error("/dev/mem readable: the device cgroup does not deny it")
	}
}

func TestTimeNamespace(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel without time namespaces")
	}
	e := newEnv(t)
	b := e.bundle("/bin/cat", "/proc/uptime")
	b.spec.Linux.Namespaces = append(b.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10 * 86400}}
	b.save(t)
	// The init is forked without sharing berth's memory, so this works
	// on kernels (6.1 among them) that refuse a CLONE_VM clone into a new
	// time namespace.
	id := e.id("time")
	out := e.must("oci", "run", "--bundle", b.dir, id)
	up, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if err != nil {
		t.Fatalf("uptime %q", out)
	}
	host, _ := os.ReadFile("/proc/uptime")
	hostUp, _ := strconv.ParseFloat(strings.Fields(string(host))[0], 64)
	if up < hostUp+10*86400-60 {
		t.Errorf("uptime inside %.0f, host %.0f: boottime offset not applied", up, hostUp)
	}
}

func TestNoPivot(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("/bin/sh", "-c", "ls /; hostname")
	out := e.must("oci", "run", "--no-pivot", "--bundle", b.dir, e.id("nopivot"))
	if !strings.Contains(out, "probe") || strings.Contains(out, "lost+found") {
		t.Errorf("root with --no-pivot: %q", out)
	}
}

func TestJoinNamespacePath(t *testing.T) {
	e := newEnv(t)
	a := e.bundle("/probe", "sleep", "60")
	ida := e.id("nsowner")
	e.must("oci", "run", "-d", "--bundle", a.dir, ida)
	pid := e.state(ida).Pid
	b := e.bundle()
	for i, ns := range b.spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.IPCNamespace {
			b.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc"}[ns.Type])
		}
	}
	b.save(t)
	rep := e.runProbe(b)
	for _, ns := range []string{"net", "ipc"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if rep.Namespaces[ns] != want {
			t.Errorf("%s namespace %s, want the joined %s", ns, rep.Namespaces[ns], want)
		}
	}
	host, _ := os.Readlink("/proc/self/ns/pid")
	if rep.Namespaces["pid"] == host {
		t.Error("pid namespace not new")
	}
}

func TestKillAllAndForceDelete(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("/bin/sh", "-c", "sleep 100 & sleep 100 & wait")
	id := e.id("killall")
	e.must("oci", "run", "-d", "--bundle", b.dir, id)
	waitFor(t, "three processes", 5*time.Second, func() bool {
		var pids []int
		json.Unmarshal([]byte(e.must("oci", "ps", "--format", "json", id)), &pids)
		return len(pids) == 3
	})
	if r := e.berth("oci", "delete", id); r.code != 125 {
		t.Errorf("delete of a running container without -f: exit %d", r.code)
	}
	e.must("oci", "kill", "--all", id, "KILL")
	waitFor(t, "stopped", 5*time.Second, func() bool { return e.state(id).Status == "stopped" })
	e.must("oci", "delete", id)
	e.assertGone(id, "/berth/"+id)

	id = e.id("force")
	e.must("oci", "run", "-d", "--bundle", b.dir, id)
	e.must("oci", "delete", "-f", id)
	e.assertGone(id, "/berth/"+id)
}

func TestExecProcessFile(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("/probe", "sleep", "60")
	id := e.id("pjson")
	e.must("oci", "run", "-d", "--bundle", b.dir, id)
	p := specs.Process{Args: []string{"/bin/sh", "-c", "echo $FROM_FILE; pwd; id -u"}, Env: []string{"PATH=/bin", "FROM_FILE=yes"}, Cwd: "/etc", User: specs.User{UID: 65534, GID: 65534}}
	data, _ := json.Marshal(p)
	path := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(path, data, 0o644)
	out := e.must("oci", "exec", "--process", path, id)
	if strings.Fields(out)[0] != "yes" || !strings.Contains(out, "/etc") || !strings.Contains(out, "65534") {
		t.Errorf("exec --process: %q", out)
	}
}

func TestFeatures(t *testing.T) {
	e := newEnv(t)
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		MountOptions  []string `json:"mountOptions"`
		Linux         struct {
			Namespaces   []string `json:"namespaces"`
			Capabilities []string `json:"capabilities"`
			Seccomp      struct {
				Enabled bool     `json:"enabled"`
				Actions []string `json:"actions"`
			} `json:"seccomp"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(e.must("oci", "features")), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMax != specs.Version || len(f.Hooks) != 6 || len(f.Linux.Namespaces) != 8 || !f.Linux.Seccomp.Enabled {
		t.Errorf("features %+v", f)
	}
	// Derived from what the runtime applies: tmpcopyup (which it does) is
	// there, idmap (which it ignores) and SCMP_ACT_NOTIFY (which it
	// refuses) are not.
	if !slices.Contains(f.MountOptions, "tmpcopyup") || !slices.Contains(f.MountOptions, "rshared") || slices.Contains(f.MountOptions, "idmap") {
		t.Errorf("mount options %v", f.MountOptions)
	}
	if !slices.Contains(f.Linux.Seccomp.Actions, "SCMP_ACT_ERRNO") || slices.Contains(f.Linux.Seccomp.Actions, "SCMP_ACT_NOTIFY") {
		t.Errorf("seccomp actions %v", f.Linux.Seccomp.Actions)
	}
	if !slices.Contains(f.Linux.Capabilities, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities %v", f.Linux.Capabilities)
	}
}
