package core

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/tests/rig"
)

// Docker's default capability set as a mask.
const dockerCaps = "00000000a80425fb"

func TestDefaultIsolation(t *testing.T) {
	e := rig.NewEnv(t)
	rep := e.RunProbe(e.Bundle())
	if rep.Pid != 1 {
		t.Errorf("pid = %d, want 1 (own pid namespace)", rep.Pid)
	}
	if rep.Hostname != "berth" {
		t.Errorf("hostname = %q", rep.Hostname)
	}
	if rep.UID != 0 || rep.GID != 0 {
		t.Errorf("uid/gid = %d/%d", rep.UID, rep.GID)
	}
	if rep.CapEff != dockerCaps || rep.CapBnd != dockerCaps || rep.CapPrm != dockerCaps {
		t.Errorf("caps eff=%s bnd=%s prm=%s, want %s", rep.CapEff, rep.CapBnd, rep.CapPrm, dockerCaps)
	}
	if rep.NoNewPrivs != 1 {
		t.Errorf("no_new_privs = %d", rep.NoNewPrivs)
	}
	if rep.Seccomp != 2 {
		t.Errorf("seccomp mode = %d, want 2", rep.Seccomp)
	}
	for _, ns := range []string{"pid", "net", "mnt", "uts", "ipc", "cgroup"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Namespaces[ns] == "" || rep.Namespaces[ns] == host {
			t.Errorf("%s namespace %q is the host's %q", ns, rep.Namespaces[ns], host)
		}
	}
	for _, p := range []string{"/proc/sysrq-trigger", "/proc/sys/vm/drop_caches", "/proc/sys/kernel/domainname"} {
		if rep.Writable[p] == "ok" || rep.Writable[p] == "" {
			t.Errorf("%s is writable (%q)", p, rep.Writable[p])
		}
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"} {
		if v, ok := rep.Readable[p]; ok && v == "data" {
			t.Errorf("masked path %s shows data", p)
		}
	}
	// Masked files read as /dev/null, masked dirs as an empty tmpfs;
	// check those the host kernel has.
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"} {
		if _, err := os.Stat(p); err == nil && rep.Readable[p] != "empty" {
			t.Errorf("%s = %q inside, want empty (masked)", p, rep.Readable[p])
		}
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd", "stdin"} {
		if !slices.Contains(rep.Devices, d) {
			t.Errorf("/dev/%s missing: %v", d, rep.Devices)
		}
	}
	if slices.Contains(rep.Devices, "sda") || slices.Contains(rep.Devices, "kmsg") {
		t.Errorf("host devices leaked into /dev: %v", rep.Devices)
	}
	for _, fd := range rep.FDs {
		if fd.FD > 2 {
			t.Errorf("descriptor %d (%s) leaked into the container", fd.FD, fd.Target)
		}
	}
	if rep.Cwd != "/" {
		t.Errorf("cwd = %q", rep.Cwd)
	}
	if nf := rep.Rlimits["nofile"]; nf.Soft != 1024 || nf.Hard != 1024 {
		t.Errorf("nofile = %+v, want 1024/1024 from the spec", nf)
	}
	var sysRO, procMounted bool
	for _, m := range rep.Mounts {
		if m.Target == "/sys" && strings.Contains(","+m.Options+",", ",ro,") {
			sysRO = true
		}
		if m.Target == "/proc" && m.FSType == "proc" {
			procMounted = true
		}
	}
	if !sysRO || !procMounted {
		t.Errorf("mounts: /sys ro=%v, /proc=%v: %+v", sysRO, procMounted, rep.Mounts)
	}
}

func TestExitCodes(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "exit 3")
	id := e.ID("exit")
	if r := e.Berth("oci", "run", "--bundle", b.Dir, id); r.Code != 3 {
		t.Fatalf("exit code %d, want 3 (stderr %q)", r.Code, r.Stderr)
	}
	e.AssertGone(id, "/berth/"+id)

	// Killed by a signal from outside: 128+9, as a shell reports it.
	b = e.Bundle("/probe", "sleep", "60")
	id = e.ID("sig")
	done := make(chan rig.Result, 1)
	go func() { done <- e.Berth("oci", "run", "--bundle", b.Dir, id) }()
	rig.WaitFor(t, "running", 10*time.Second, func() bool {
		r := e.Berth("oci", "state", id)
		return r.Code == 0 && strings.Contains(r.Stdout, "running")
	})
	e.Must("oci", "kill", id, "KILL")
	select {
	case r := <-done:
		if r.Code != 137 {
			t.Fatalf("killed by SIGKILL: exit %d, want 137", r.Code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after SIGKILL")
	}
	e.AssertGone(id, "/berth/"+id)
}

func TestBadProgram(t *testing.T) {
	e := rig.NewEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing", []string{"/no/such/program"}, 127, "no such file"},
		{"not-in-path", []string{"nosuchcmd"}, 127, "not found"},
		{"not-executable", []string{"/etc/passwd"}, 126, "permission denied"},
		{"directory", []string{"/bin"}, 126, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.Bundle(tc.args...)
			id := e.ID(tc.name)
			r := e.Berth("oci", "run", "--bundle", b.Dir, id)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.Code, tc.code, r.Stderr)
			}
			checkOneLine(t, r.Stderr, tc.msg)
			e.AssertGone(id, "/berth/"+id)
			// create must fail the same way, before any start.
			id = e.ID(tc.name)
			r = e.Berth("oci", "create", "--bundle", b.Dir, id)
			if r.Code != tc.code {
				t.Fatalf("create: exit %d, want %d", r.Code, tc.code)
			}
			e.AssertGone(id, "/berth/"+id)
		})
	}
}

func checkOneLine(t *testing.T, stderr, want string) {
	t.Helper()
	s := strings.TrimRight(stderr, "\n")
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("want one line of error, got %q", stderr)
	}
	if !strings.Contains(strings.ToLower(s), strings.ToLower(want)) {
		t.Errorf("error %q does not mention %q", s, want)
	}
}

func TestBadInput(t *testing.T) {
	e := rig.NewEnv(t)
	good := e.Bundle()
	cases := []struct {
		name  string
		setup func(b *rig.Bundle)
		id    string
		msg   string
	}{
		{"no-config", func(b *rig.Bundle) { os.Remove(filepath.Join(b.Dir, "config.json")) }, "", "no config.json"},
		{"malformed", func(b *rig.Bundle) { os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte("{not json"), 0o644) }, "", "parse"},
		{"oci-version", func(b *rig.Bundle) { b.Spec.Version = "2.0.0"; b.Save(t) }, "", "unsupported ociVersion"},
		{"no-rootfs", func(b *rig.Bundle) { os.RemoveAll(filepath.Join(b.Dir, "rootfs")) }, "", "rootfs"},
		{"rlimit", func(b *rig.Bundle) {
			b.Spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
			b.Save(t)
		}, "", "RLIMIT_NOFILE"},
		{"unknown-cap", func(b *rig.Bundle) {
			b.Spec.Process.Capabilities.Bounding = append(b.Spec.Process.Capabilities.Bounding, "CAP_BOGUS")
			b.Save(t)
		}, "", "unknown capability"},
		{"bad-seccomp", func(b *rig.Bundle) {
			b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
			b.Save(t)
		}, "", "seccomp"},
		{"slash-id", nil, "a/b", "invalid container id"},
		{"dotdot-id", nil, "..", "invalid container id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			if tc.setup != nil {
				b = e.Bundle()
				tc.setup(b)
			}
			id := tc.id
			if id == "" {
				id = e.ID(tc.name)
			}
			r := e.Berth("oci", "run", "--bundle", b.Dir, id)
			if r.Code != 125 {
				t.Fatalf("exit %d, want 125; stderr %q", r.Code, r.Stderr)
			}
			checkOneLine(t, r.Stderr, tc.msg)
			if tc.id == "" {
				e.AssertGone(id, "/berth/"+id)
			}
			ents, _ := os.ReadDir(e.Root)
			for _, ent := range ents {
				// The helper programs berth installs under its root
				// (internal/helperbin) serve every container.
				if ent.Name() != ".helpers" {
					t.Errorf("state root not empty: %s", ent.Name())
				}
			}
		})
	}
	t.Run("duplicate-id", func(t *testing.T) {
		b := e.Bundle("/probe", "sleep", "60")
		id := e.ID("dup")
		e.Must("oci", "create", "--bundle", b.Dir, id)
		r := e.Berth("oci", "create", "--bundle", b.Dir, id)
		if r.Code != 125 {
			t.Fatalf("duplicate create exit %d", r.Code)
		}
		checkOneLine(t, r.Stderr, "already exists")
		if st := e.State(id); st.Status != "created" {
			t.Fatalf("the first container was disturbed: %s", st.Status)
		}
		e.Must("oci", "delete", "-f", id)
		e.AssertGone(id, "/berth/"+id)
	})
}

func TestLifecycle(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "signals")
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: rig.Ptr(int64(64 << 20))}
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: rig.Ptr(int64(50))}
	b.Save(t)
	id := e.ID("life")
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := rig.ExecBerth(e, f, "oci", "create", "--bundle", b.Dir, "--pid-file", filepath.Join(b.Dir, "pid"), id)
	if err := cmd.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	st := e.State(id)
	if st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: %+v", st)
	}
	pidData, _ := os.ReadFile(filepath.Join(b.Dir, "pid"))
	if strings.TrimSpace(string(pidData)) != rig.Itoa(st.Pid) {
		t.Errorf("pid file %q, state pid %d", pidData, st.Pid)
	}
	// The limits are in place before the program runs.
	cg := "/berth/" + id
	if got := rig.HostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != rig.Itoa(64<<20) {
		t.Errorf("memory limit on host = %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "50" {
		t.Errorf("pids.max on host = %s", got)
	}
	if strings.Contains(rig.ReadFile(t, out), "ready") {
		t.Fatal("program ran before start")
	}
	e.Must("oci", "start", id)
	rig.WaitFor(t, "program ready", 5*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, out), "ready") })
	if st := e.State(id); st.Status != "running" {
		t.Fatalf("after start: %s", st.Status)
	}
	list := e.Must("oci", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "running") {
		t.Errorf("list: %s", list)
	}
	ps := e.Must("oci", "ps", "--format", "json", id)
	if !strings.Contains(ps, rig.Itoa(st.Pid)) {
		t.Errorf("ps %s lacks init pid %d", ps, st.Pid)
	}
	e.Must("oci", "pause", id)
	if st := e.State(id); st.Status != "paused" {
		t.Fatalf("after pause: %s", st.Status)
	}
	e.Must("oci", "resume", id)
	if st := e.State(id); st.Status != "running" {
		t.Fatalf("after resume: %s", st.Status)
	}
	e.Must("oci", "kill", id, "USR1")
	rig.WaitFor(t, "SIGUSR1 seen", 5*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, out), "got SIGUSR1") })
	// The same sizes as run -m: a fraction with a unit works here too.
	e.Must("oci", "update", "--memory", "1.5g", id)
	if got := rig.HostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != rig.Itoa(3<<29) {
		t.Errorf("memory limit after update --memory 1.5g = %s", got)
	}
	if r := e.Berth("oci", "update", "--memory", "1.5x", id); r.Code == 0 || !strings.Contains(r.Stderr, "invalid size") {
		t.Errorf("update --memory 1.5x: code %d, stderr %q", r.Code, r.Stderr)
	}
	e.Must("oci", "update", "--memory", "32m", "--pids-limit", "20", id)
	if got := rig.HostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != rig.Itoa(32<<20) {
		t.Errorf("memory limit after update = %s", got)
	}
	if got := rig.HostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "20" {
		t.Errorf("pids.max after update = %s", got)
	}
	e.Must("oci", "kill", id, "15")
	rig.WaitFor(t, "stopped", 5*time.Second, func() bool { return e.State(id).Status == "stopped" })
	if !strings.Contains(rig.ReadFile(t, out), "got SIGTERM") {
		t.Errorf("SIGTERM not seen: %s", rig.ReadFile(t, out))
	}
	if r := e.Berth("oci", "kill", id, "TERM"); r.Code == 0 {
		t.Error("kill of a stopped container succeeded")
	}
	e.Must("oci", "delete", id)
	e.AssertGone(id, cg)
}

func TestCgroupLimitsInside(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: rig.Ptr(int64(96 << 20))}
	b.Spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: rig.Ptr(int64(33))}
	b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: rig.Ptr(int64(50000)), Period: rig.Ptr(uint64(100000))}
	b.Save(t)
	rep := e.RunProbe(b)
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		want := map[string]string{"memory.max": rig.Itoa(96 << 20), "pids.max": "33", "cpu.max": "50000 100000"}
		for k, v := range want {
			if rep.Cgroup[k] != v {
				t.Errorf("inside %s = %q, want %q", k, rep.Cgroup[k], v)
			}
		}
		return
	}
	want := map[string]string{"memory/memory.limit_in_bytes": rig.Itoa(96 << 20), "pids/pids.max": "33", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}
	for k, v := range want {
		if rep.Cgroup[k] != v {
			t.Errorf("inside %s = %q, want %q", k, rep.Cgroup[k], v)
		}
	}
	if !strings.Contains(rep.CgroupFile, ":/\n") && !strings.HasSuffix(strings.TrimSpace(rep.CgroupFile), ":/") {
		t.Errorf("cgroup namespace should show / as the container's cgroup: %q", rep.CgroupFile)
	}
}

// TestDeleteRightAfterKill: delete without --force just after kill KILL
// (the README's sequence) removes the container: the init, killed, is
// still alive while the kernel ends the rest of its pid namespace, and
// delete waits for that instead of calling the container running. Many
// processes in the namespace make that window wide; a few rounds hit it.
func TestDeleteRightAfterKill(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "for i in $(seq 200); do sleep 60 & done; wait")
	for i := 0; i < 5; i++ {
		id := e.ID("killdel")
		e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
		pid := e.State(id).Pid
		rig.WaitFor(t, "200 sleeps", 60*time.Second, func() bool { return childCount(pid) >= 200 })
		e.Must("oci", "kill", id, "KILL")
		if r := e.Berth("oci", "delete", id); r.Code != 0 {
			t.Fatalf("round %d: delete right after kill KILL: exit %d: %s", i, r.Code, r.Stderr)
		}
		e.AssertGone(id, "/berth/"+id)
	}
}

// childCount is how many processes have pid as their parent (from
// /proc: the VMs' busybox pgrep has no -c).
func childCount(pid int) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// Field 4, the parent, follows the command name's last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			if fs := strings.Fields(string(b[i+1:])); len(fs) > 1 && fs[1] == strconv.Itoa(pid) {
				n++
			}
		}
	}
	return n
}
