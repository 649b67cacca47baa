package namespaces

import (
	"os"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPlanFor(t *testing.T) {
	p, err := PlanFor([]specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
		{Type: specs.TimeNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Clone != unix.CLONE_NEWPID|unix.CLONE_NEWNS {
		t.Errorf("clone flags %#x", p.Clone)
	}
	if !p.NewCgroup || !p.NewTime || p.Join[specs.NetworkNamespace] != "/proc/self/ns/net" {
		t.Errorf("plan %+v", p)
	}
	if !p.Has(specs.NetworkNamespace) || p.Has(specs.UTSNamespace) {
		t.Error("Has is wrong")
	}
	if _, err := PlanFor([]specs.LinuxNamespace{{Type: "bogus"}}); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := PlanFor([]specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.PIDNamespace}}); err == nil {
		t.Error("duplicate accepted")
	}
	if _, err := PlanFor([]specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/nonexistent/ns"}}); err == nil {
		t.Error("missing path accepted")
	}
}

func TestJoinForExecSelf(t *testing.T) {
	p, err := JoinForExec(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Join) != 0 {
		t.Fatalf("own namespaces should need no join: %v", p.Join)
	}
}

func TestHostID(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	if id, ok := HostID(m, 1000); !ok || id != 101000 {
		t.Fatalf("HostID = %d %v", id, ok)
	}
	if _, ok := HostID(m, 70000); ok {
		t.Fatal("unmapped id mapped")
	}
	if id, ok := HostID(nil, 5); !ok || id != 5 {
		t.Fatal("identity")
	}
}

func TestSysctlNamespace(t *testing.T) {
	for k, want := range map[string]specs.LinuxNamespaceType{
		"net.ipv4.ip_forward": specs.NetworkNamespace, "kernel.shm_rmid_forced": specs.IPCNamespace,
		"kernel.msg_next_id": specs.IPCNamespace, "fs.mqueue.msg_max": specs.IPCNamespace,
		"kernel.hostname": specs.UTSNamespace, "kernel.shmfoo": "", "kernel.semaphore": "",
		"vm.swappiness": "", "kernel.pid_max": "", "fs.mqueue": "",
	} {
		if got := SysctlNamespace(k); got != want {
			t.Errorf("SysctlNamespace(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestTypes(t *testing.T) {
	ts := Types()
	if len(ts) != 8 || !slices.IsSorted(ts) {
		t.Errorf("Types() = %v", ts)
	}
}
