package core

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

	"github.com/berth-project/berth/tests/rig"
)

func TestProcessAndLinuxFields(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	b.Spec.Domainname = "example.test"
	b.Spec.Hostname = "box1"
	b.Spec.Process.OOMScoreAdj = rig.Ptr(500)
	b.Spec.Process.User.Umask = rig.Ptr(uint32(0o027))
	b.Spec.Process.Env = append(b.Spec.Process.Env, "HELLO=world")
	b.Spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
	b.Spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: rig.Ptr(os.FileMode(0o640))}}
	b.Save(t)
	rep := e.RunProbe(b)
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
		b.Spec.Linux.Sysctl = map[string]string{k: "10"}
		b.Save(t)
		id := e.ID("sysctl")
		r := e.Berth("oci", "run", "--bundle", b.Dir, id)
		if r.Code != 125 {
			t.Fatalf("non-namespaced sysctl %s: exit %d", k, r.Code)
		}
		checkOneLine(t, r.Stderr, "not namespaced")
		e.AssertGone(id, "/berth/"+id)
	}
}

func TestDeviceUsable(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "echo x > /dev/mynull && echo WROTE; ls -l /dev/mynull")
	b.Spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: rig.Ptr(os.FileMode(0o640)), UID: rig.Ptr(uint32(0)), GID: rig.Ptr(uint32(5))}}
	b.Save(t)
	out := e.Must("oci", "run", "--bundle", b.Dir, e.ID("dev"))
	if !strings.Contains(out, "WROTE") || !strings.Contains(out, "crw-r-----") {
		t.Errorf("device: %q", out)
	}
	// Without a rule, a host device is not usable even if its node is made.
	b = e.Bundle("/bin/sh", "-c", "mknod /tmp/mem c 1 1 && head -c1 /tmp/mem >/dev/null 2>&1 && echo READ-MEM; true")
	out = e.Must("oci", "run", "--bundle", b.Dir, e.ID("nodev"))
	if strings.Contains(out, "READ-MEM") {
		t.Error("/dev/mem readable: the device cgroup does not deny it")
	}
}

func TestTimeNamespace(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel without time namespaces")
	}
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/cat", "/proc/uptime")
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	b.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 10 * 86400}}
	b.Save(t)
	// The init is forked without sharing berth's memory, so this works
	// on kernels (6.1 among them) that refuse a CLONE_VM clone into a new
	// time namespace.
	id := e.ID("time")
	out := e.Must("oci", "run", "--bundle", b.Dir, id)
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
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "ls /; hostname")
	out := e.Must("oci", "run", "--no-pivot", "--bundle", b.Dir, e.ID("nopivot"))
	if !strings.Contains(out, "probe") || strings.Contains(out, "lost+found") {
		t.Errorf("root with --no-pivot: %q", out)
	}
}

func TestJoinNamespacePath(t *testing.T) {
	e := rig.NewEnv(t)
	a := e.Bundle("/probe", "sleep", "60")
	ida := e.ID("nsowner")
	e.Must("oci", "run", "-d", "--bundle", a.Dir, ida)
	pid := e.State(ida).Pid
	b := e.Bundle()
	for i, ns := range b.Spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace || ns.Type == specs.IPCNamespace {
			b.Spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc"}[ns.Type])
		}
	}
	b.Save(t)
	rep := e.RunProbe(b)
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
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "sleep 100 & sleep 100 & wait")
	id := e.ID("killall")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	rig.WaitFor(t, "three processes", 5*time.Second, func() bool {
		var pids []int
		json.Unmarshal([]byte(e.Must("oci", "ps", "--format", "json", id)), &pids)
		return len(pids) == 3
	})
	if r := e.Berth("oci", "delete", id); r.Code != 125 {
		t.Errorf("delete of a running container without -f: exit %d", r.Code)
	}
	e.Must("oci", "kill", "--all", id, "KILL")
	rig.WaitFor(t, "stopped", 5*time.Second, func() bool { return e.State(id).Status == "stopped" })
	e.Must("oci", "delete", id)
	e.AssertGone(id, "/berth/"+id)

	id = e.ID("force")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	e.Must("oci", "delete", "-f", id)
	e.AssertGone(id, "/berth/"+id)
}

func TestExecProcessFile(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("pjson")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	p := specs.Process{Args: []string{"/bin/sh", "-c", "echo $FROM_FILE; pwd; id -u"}, Env: []string{"PATH=/bin", "FROM_FILE=yes"}, Cwd: "/etc", User: specs.User{UID: 65534, GID: 65534}}
	data, _ := json.Marshal(p)
	path := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(path, data, 0o644)
	out := e.Must("oci", "exec", "--process", path, id)
	if strings.Fields(out)[0] != "yes" || !strings.Contains(out, "/etc") || !strings.Contains(out, "65534") {
		t.Errorf("exec --process: %q", out)
	}
}

func TestFeatures(t *testing.T) {
	e := rig.NewEnv(t)
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
	if err := json.Unmarshal([]byte(e.Must("oci", "features")), &f); err != nil {
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
