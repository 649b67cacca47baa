package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/cgroupfs"
)

// Docker's default capability set as a mask.
const dockerCaps = "00000000a80425fb"

func TestDefaultIsolation(t *testing.T) {
	e := newEnv(t)
	rep := e.runProbe(e.bundle())
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
	e := newEnv(t)
	b := e.bundle("/bin/sh", "-c", "exit 3")
	id := e.id("exit")
	if r := e.berth("oci", "run", "--bundle", b.dir, id); r.code != 3 {
		t.Fatalf("exit code %d, want 3 (stderr %q)", r.code, r.stderr)
	}
	e.assertGone(id, "/berth/"+id)

	// Killed by a signal from outside: 128+9, as a shell reports it.
	b = e.bundle("/probe", "sleep", "60")
	id = e.id("sig")
	done := make(chan result, 1)
	go func() { done <- e.berth("oci", "run", "--bundle", b.dir, id) }()
	waitFor(t, "running", 10*time.Second, func() bool {
		r := e.berth("oci", "state", id)
		return r.code == 0 && strings.Contains(r.stdout, "running")
	})
	e.must("oci", "kill", id, "KILL")
	select {
	case r := <-done:
		if r.code != 137 {
			t.Fatalf("killed by SIGKILL: exit %d, want 137", r.code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after SIGKILL")
	}
	e.assertGone(id, "/berth/"+id)
}

func TestBadProgram(t *testing.T) {
	e := newEnv(t)
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
			b := e.bundle(tc.args...)
			id := e.id(tc.name)
			r := e.berth("oci", "run", "--bundle", b.dir, id)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tc.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.msg)
			e.assertGone(id, "/berth/"+id)
			// create must fail the same way, before any start.
			id = e.id(tc.name)
			r = e.berth("oci", "create", "--bundle", b.dir, id)
			if r.code != tc.code {
				t.Fatalf("create: exit %d, want %d", r.code, tc.code)
			}
			e.assertGone(id, "/berth/"+id)
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
	e := newEnv(t)
	good := e.bundle()
	cases := []struct {
		name  string
		setup func(b *bundle)
		id    string
		msg   string
	}{
		{"no-config", func(b *bundle) { os.Remove(filepath.Join(b.dir, "config.json")) }, "", "no config.json"},
		{"malformed", func(b *bundle) { os.WriteFile(filepath.Join(b.dir, "config.json"), []byte("{not json"), 0o644) }, "", "parse"},
		{"oci-version", func(b *bundle) { b.spec.Version = "2.0.0"; b.save(t) }, "", "unsupported ociVersion"},
		{"no-rootfs", func(b *bundle) { os.RemoveAll(filepath.Join(b.dir, "rootfs")) }, "", "rootfs"},
		{"rlimit", func(b *bundle) {
			b.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 30, Hard: 1 << 30}}
			b.save(t)
		}, "", "RLIMIT_NOFILE"},
		{"unknown-cap", func(b *bundle) {
			b.spec.Process.Capabilities.Bounding = append(b.spec.Process.Capabilities.Bounding, "CAP_BOGUS")
			b.save(t)
		}, "", "unknown capability"},
		{"bad-seccomp", func(b *bundle) {
			b.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
			b.save(t)
		}, "", "seccomp"},
		{"slash-id", nil, "a/b", "invalid container id"},
		{"dotdot-id", nil, "..", "invalid container id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := good
			if tc.setup != nil {
				b = e.bundle()
				tc.setup(b)
			}
			id := tc.id
			if id == "" {
				id = e.id(tc.name)
			}
			r := e.berth("oci", "run", "--bundle", b.dir, id)
			if r.code != 125 {
				t.Fatalf("exit %d, want 125; stderr %q", r.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.msg)
			if tc.id == "" {
				e.assertGone(id, "/berth/"+id)
			}
			ents, _ := os.ReadDir(e.root)
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
		b := e.bundle("/probe", "sleep", "60")
		id := e.id("dup")
		e.must("oci", "create", "--bundle", b.dir, id)
		r := e.berth("oci", "create", "--bundle", b.dir, id)
		if r.code != 125 {
			t.Fatalf("duplicate create exit %d", r.code)
		}
		checkOneLine(t, r.stderr, "already exists")
		if st := e.state(id); st.Status != "created" {
			t.Fatalf("the first container was disturbed: %s", st.Status)
		}
		e.must("oci", "delete", "-f", id)
		e.assertGone(id, "/berth/"+id)
	})
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	b := e.bundle("/probe", "signals")
	b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}
	b.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(50))}
	b.save(t)
	id := e.id("life")
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := execBerth(e, f, "oci", "create", "--bundle", b.dir, "--pid-file", filepath.Join(b.dir, "pid"), id)
	if err := cmd.Run(); err != nil {
		t.Fatalf("create: %v", err)
	}
	st := e.state(id)
	if st.Status != "created" || st.Pid <= 0 {
		t.Fatalf("after create: %+v", st)
	}
	pidData, _ := os.ReadFile(filepath.Join(b.dir, "pid"))
	if strings.TrimSpace(string(pidData)) != itoa(st.Pid) {
		t.Errorf("pid file %q, state pid %d", pidData, st.Pid)
	}
	// The limits are in place before the program runs.
	cg := "/berth/" + id
	if got := hostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != itoa(64<<20) {
		t.Errorf("memory limit on host = %s", got)
	}
	if got := hostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "50" {
		t.Errorf("pids.max on host = %s", got)
	}
	if strings.Contains(readFile(t, out), "ready") {
		t.Fatal("program ran before start")
	}
	e.must("oci", "start", id)
	waitFor(t, "program ready", 5*time.Second, func() bool { return strings.Contains(readFile(t, out), "ready") })
	if st := e.state(id); st.Status != "running" {
		t.Fatalf("after start: %s", st.Status)
	}
	list := e.must("oci", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "running") {
		t.Errorf("list: %s", list)
	}
	ps := e.must("oci", "ps", "--format", "json", id)
	if !strings.Contains(ps, itoa(st.Pid)) {
		t.Errorf("ps %s lacks init pid %d", ps, st.Pid)
	}
	e.must("oci", "pause", id)
	if st := e.state(id); st.Status != "paused" {
		t.Fatalf("after pause: %s", st.Status)
	}
	e.must("oci", "resume", id)
	if st := e.state(id); st.Status != "running" {
		t.Fatalf("after resume: %s", st.Status)
	}
	e.must("oci", "kill", id, "USR1")
	waitFor(t, "SIGUSR1 seen", 5*time.Second, func() bool { return strings.Contains(readFile(t, out), "got SIGUSR1") })
	// The same sizes as run -m: a fraction with a unit works here too.
	e.must("oci", "update", "--memory", "1.5g", id)
	if got := hostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != itoa(3<<29) {
		t.Errorf("memory limit after update --memory 1.5g = %s", got)
	}
	if r := e.berth("oci", "update", "--memory", "1.5x", id); r.code == 0 || !strings.Contains(r.stderr, "invalid size") {
		t.Errorf("update --memory 1.5x: code %d, stderr %q", r.code, r.stderr)
	}
	e.must("oci", "update", "--memory", "32m", "--pids-limit", "20", id)
	if got := hostCgroupFile(t, cg, "memory.max", "memory/memory.limit_in_bytes"); got != itoa(32<<20) {
		t.Errorf("memory limit after update = %s", got)
	}
	if got := hostCgroupFile(t, cg, "pids.max", "pids/pids.max"); got != "20" {
		t.Errorf("pids.max after update = %s", got)
	}
	e.must("oci", "kill", id, "15")
	waitFor(t, "stopped", 5*time.Second, func() bool { return e.state(id).Status == "stopped" })
	if !strings.Contains(readFile(t, out), "got SIGTERM") {
		t.Errorf("SIGTERM not seen: %s", readFile(t, out))
	}
	if r := e.berth("oci", "kill", id, "TERM"); r.code == 0 {
		t.Error("kill of a stopped container succeeded")
	}
	e.must("oci", "delete", id)
	e.assertGone(id, cg)
}

func TestCgroupLimitsInside(t *testing.T) {
	e := newEnv(t)
	b := e.bundle()
	b.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(96 << 20))}
	b.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(33))}
	b.spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}
	b.save(t)
	rep := e.runProbe(b)
	if cgroupfs.DetectMode() == cgroupfs.Unified {
		want := map[string]string{"memory.max": itoa(96 << 20), "pids.max": "33", "cpu.max": "50000 100000"}
		for k, v := range want {
			if rep.Cgroup[k] != v {
				t.Errorf("inside %s = %q, want %q", k, rep.Cgroup[k], v)
			}
		}
		return
	}
	want := map[string]string{"memory/memory.limit_in_bytes": itoa(96 << 20), "pids/pids.max": "33", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"}
	for k, v := range want {
		if rep.Cgroup[k] != v {
			t.Errorf("inside %s = %q, want %q", k, rep.Cgroup[k], v)
		}
	}
	if !strings.Contains(rep.CgroupFile, ":/\n") && !strings.HasSuffix(strings.TrimSpace(rep.CgroupFile), ":/") {
		t.Errorf("cgroup namespace should show / as the container's cgroup: %q", rep.CgroupFile)
	}
}
