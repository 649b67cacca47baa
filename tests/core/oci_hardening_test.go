package core

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/tests/rig"
)

// shBundle is a bundle whose process runs a shell line.
func shBundle(e *rig.Env, line string) *rig.Bundle {
	e.T.Helper()
	return e.Bundle("/bin/sh", "-c", line)
}

// runOut runs a bundle in the foreground and returns its stdout; it fails
// the test unless the container exits 0.
func runOut(e *rig.Env, b *rig.Bundle) string {
	e.T.Helper()
	return e.Must("oci", "run", "--bundle", b.Dir, e.ID("hard"))
}

// withoutMount drops the spec's mounts on dest.
func withoutMount(b *rig.Bundle, dest string) {
	var ms []specs.Mount
	for _, m := range b.Spec.Mounts {
		if m.Destination != dest && !strings.HasPrefix(m.Destination, dest+"/") {
			ms = append(ms, m)
		}
	}
	b.Spec.Mounts = ms
}

// A tmpfs with a propagation option (podman adds rprivate to every tmpfs,
// docker to --tmpfs) is mounted with that propagation.
func TestOCITmpfsPropagation(t *testing.T) {
	e := rig.NewEnv(t)
	b := shBundle(e, `grep -E " /(data|data2|sys) " /proc/self/mountinfo`)
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"rprivate", "nosuid", "size=1m"}},
		specs.Mount{Destination: "/data2", Type: "tmpfs", Source: "tmpfs", Options: []string{"rshared"}},
	)
	for i, m := range b.Spec.Mounts {
		if m.Destination == "/sys" {
			b.Spec.Mounts[i].Options = append(m.Options, "rslave")
		}
	}
	b.Save(t)
	out := runOut(e, b)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 {
			lines[f[4]] = l
		}
	}
	if l := lines["/data"]; !strings.Contains(l, " - tmpfs ") || strings.Contains(l, "shared:") {
		t.Errorf("/data: want a private tmpfs, got %q", l)
	}
	if l := lines["/data2"]; !strings.Contains(l, " - tmpfs ") || !strings.Contains(l, "shared:") {
		t.Errorf("/data2: want a shared tmpfs, got %q", l)
	}
	if l := lines["/sys"]; !strings.Contains(l, " - sysfs ") {
		t.Errorf("/sys: want sysfs, got %q", l)
	}
}

// tmpcopyup fills the tmpfs with what the directory it covers holds.
func TestOCITmpcopyup(t *testing.T) {
	e := rig.NewEnv(t)
	b := shBundle(e, `cat /data/hello /data/sub/f; readlink /data/ln; stat -c '%a %u %g' /data/sub; `+
		`grep " /data " /proc/self/mountinfo | grep -c " - tmpfs "; cat /ro/hello; touch /ro/x 2>/dev/null && echo ro-writable; echo done > /data/new`)
	root := filepath.Join(b.Dir, "rootfs")
	for _, d := range []string{"data", "ro"} {
		if err := os.MkdirAll(filepath.Join(root, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, d, "hello"), []byte("hello-"+d+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "data/sub/f"), []byte("deep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "data/sub"), 123, 456); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "data/sub"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "data/ln")); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "rprivate", "nosuid"}},
		specs.Mount{Destination: "/ro", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "ro"}},
	)
	b.Save(t)
	out := runOut(e, b)
	want := "hello-data\ndeep\n/etc/passwd\n710 123 456\n1\nhello-ro\n"
	if out != want {
		t.Errorf("container saw:\n%s\nwant:\n%s", out, want)
	}
	// The copy is the tmpfs's: the image's directory is unchanged.
	if _, err := os.Stat(filepath.Join(root, "data/new")); !os.IsNotExist(err) {
		t.Errorf("write to the tmpfs reached the rootfs (%v)", err)
	}
}

// With --log FILE --log-format json, an error also goes to the file as
// runc writes it.
func TestOCILogFileJSON(t *testing.T) {
	e := rig.NewEnv(t)
	logPath := filepath.Join(t.TempDir(), "log.json")
	missing := filepath.Join(t.TempDir(), "no-bundle")
	r := e.Berth("--log", logPath, "--log-format", "json", "oci", "create", "--bundle", missing, e.ID("log"))
	if r.Code != 125 {
		t.Fatalf("create with a missing bundle: exit %d, want 125\n%s", r.Code, r.Stderr)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatalf("no log file: %v", err)
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var entry struct{ Level, Msg, Time string }
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		if entry.Level == "error" && strings.Contains(entry.Msg, "config.json") && entry.Time != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("no error entry naming config.json in the log:\n%s", rig.ReadFile(t, logPath))
	}
}

// delete --force of a container that does not exist succeeds, as runc's.
func TestOCIDeleteForceMissing(t *testing.T) {
	e := rig.NewEnv(t)
	if r := e.Berth("oci", "delete", "--force", "never-created"); r.Code != 0 {
		t.Errorf("delete --force of a missing container: exit %d: %s", r.Code, r.Stderr)
	}
	if r := e.Berth("oci", "delete", "never-created"); r.Code == 0 {
		t.Error("delete of a missing container without --force succeeded")
	}
}

// A /dev bound from the host is left alone: no device nodes are made in
// it and the user's files named null, zero, tty survive.
func TestOCIDevBindMount(t *testing.T) {
	e := rig.NewEnv(t)
	host := t.TempDir()
	names := []string{"null", "zero", "tty", "full", "random"}
	for _, n := range names[:3] {
		if err := os.WriteFile(filepath.Join(host, n), []byte("mine-"+n+"\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// stat, not cat: a real /dev/zero would never end.
	b := shBundle(e, "stat -c '%n %F' /dev/null /dev/zero /dev/tty; cat /dev/null")
	withoutMount(b, "/dev")
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/dev", Type: "bind", Source: host, Options: []string{"rbind", "rw"}})
	b.Save(t)
	out := runOut(e, b)
	if out != "/dev/null regular file\n/dev/zero regular file\n/dev/tty regular file\nmine-null\n" {
		t.Errorf("container saw %q", out)
	}
	for _, n := range names[:3] {
		p := filepath.Join(host, n)
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || rig.ReadFile(t, p) != "mine-"+n+"\n" {
			t.Errorf("host file %s was replaced (%v, %v)", p, st.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(host)
	for _, ent := range ents {
		if ent.Type()&(os.ModeDevice|os.ModeCharDevice|os.ModeSymlink) != 0 {
			t.Errorf("berth made %s (%v) in the host's directory", ent.Name(), ent.Type())
		}
		for _, n := range names[3:] {
			if ent.Name() == n {
				t.Errorf("berth made %s in the host's directory", n)
			}
		}
	}
}

// User and group ids out of range are refused: (uid_t)-1 means "no
// change" to setresuid and would leave the process root.
func TestOCIUserIDRange(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	for _, tc := range []struct {
		name string
		set  func(u *specs.User)
	}{
		{"uid", func(u *specs.User) { u.UID = 4294967295 }},
		{"gid", func(u *specs.User) { u.UID, u.GID = 1000, 4294967295 }},
		{"additionalGids", func(u *specs.User) { u.UID, u.AdditionalGids = 1000, []uint32{10, 4294967295} }},
	} {
		b.Spec.Process.User = specs.User{}
		tc.set(&b.Spec.Process.User)
		b.Save(t)
		id := e.ID("uid")
		r := e.Berth("oci", "run", "--bundle", b.Dir, id)
		if r.Code != 125 || !strings.Contains(r.Stderr, "out of range") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Errorf("%s 4294967295: exit %d, stdout %q, stderr %q; want 125 and one line saying out of range", tc.name, r.Code, r.Stdout, r.Stderr)
		}
		e.AssertGone(id, "/berth/"+id)
	}
	// exec into a running container too.
	b.Spec.Process.User = specs.User{}
	b.Spec.Process.Args = []string{"/bin/sleep", "60"}
	b.Save(t)
	id := e.ID("uidx")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	r := e.Berth("oci", "exec", "--user", "4294967295", id, "/bin/id", "-u")
	if r.Code != 125 || !strings.Contains(r.Stderr, "out of range") {
		t.Errorf("exec --user 4294967295: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	e.Must("oci", "delete", "-f", id)
}

// Without a mount namespace in the spec the container shares berth's and
// is chrooted into its rootfs; mounts are refused there.
func TestOCIHostMountNamespace(t *testing.T) {
	e := rig.NewEnv(t)
	b := shBundle(e, "cat /marker; exec sleep 60")
	root := filepath.Join(b.Dir, "rootfs")
	if err := os.WriteFile(filepath.Join(root, "marker"), []byte("in-rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var nss []specs.LinuxNamespace
	for _, ns := range b.Spec.Linux.Namespaces {
		if ns.Type != specs.MountNamespace {
			nss = append(nss, ns)
		}
	}
	b.Spec.Linux.Namespaces = nss
	mounts := b.Spec.Mounts
	b.Spec.Mounts = nil
	b.Spec.Linux.MaskedPaths, b.Spec.Linux.ReadonlyPaths = nil, nil
	b.Save(t)

	id := e.ID("hostns")
	outF, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	if err := rig.ExecBerth(e, outF, "oci", "create", "--bundle", b.Dir, id).Run(); err != nil {
		t.Fatalf("create: %v %s", err, rig.ReadFile(t, outF.Name()))
	}
	pid := e.State(id).Pid
	theirs, err1 := os.Readlink("/proc/" + rig.Itoa(pid) + "/ns/mnt")
	ours, err2 := os.Readlink("/proc/self/ns/mnt")
	if err1 != nil || err2 != nil || theirs != ours {
		t.Errorf("container mount namespace %q (%v), berth's %q (%v): want the same", theirs, err1, ours, err2)
	}
	if got, err := os.Readlink("/proc/" + rig.Itoa(pid) + "/root"); err != nil || got != root {
		t.Errorf("container root %q (%v), want %q", got, err, root)
	}
	if mi := rig.ReadFile(t, "/proc/self/mountinfo"); strings.Contains(mi, " "+root) {
		t.Errorf("something was mounted on the host under %s", root)
	}
	e.Must("oci", "start", id)
	rig.WaitFor(t, "container output", 10e9, func() bool { return strings.Contains(rig.ReadFile(t, outF.Name()), "in-rootfs") })
	if out := e.Must("oci", "exec", id, "/bin/cat", "/marker"); out != "in-rootfs\n" {
		t.Errorf("exec saw %q in /marker", out)
	}
	e.Must("oci", "delete", "-f", id)

	// Mounts listed without a mount namespace would stay on the host.
	b.Spec.Mounts = mounts
	b.Save(t)
	id = e.ID("hostns")
	r := e.Berth("oci", "run", "--bundle", b.Dir, id)
	if r.Code != 125 || !strings.Contains(r.Stderr, "mount namespace") {
		t.Errorf("mounts without a mount namespace: exit %d, stderr %q", r.Code, r.Stderr)
	}
	e.AssertGone(id, "/berth/"+id)
}

// A mount namespace named by path is joined, and the container is set
// up in it.
func TestOCIJoinMountNamespace(t *testing.T) {
	e := rig.NewEnv(t)
	b := shBundle(e, "cat /srv/only-in-ns")
	root := filepath.Join(b.Dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A persistent mount namespace: its file must sit on a private mount.
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	run("mount", "--bind", dir, dir)
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	run("mount", "--make-private", dir)
	nsFile := filepath.Join(dir, "mnt")
	if err := os.WriteFile(nsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run("unshare", "--mount="+nsFile, "--propagation", "private", "true")
	t.Cleanup(func() { _ = unix.Unmount(nsFile, unix.MNT_DETACH) })
	run("nsenter", "--mount="+nsFile, "sh", "-c", "mount -t tmpfs tmpfs "+root+"/srv && echo joined > "+root+"/srv/only-in-ns")
	if _, err := os.Stat(filepath.Join(root, "srv/only-in-ns")); !os.IsNotExist(err) {
		t.Fatalf("the namespace's file is visible on the host (%v)", err)
	}
	for i, ns := range b.Spec.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			b.Spec.Linux.Namespaces[i].Path = nsFile
		}
	}
	b.Save(t)
	if out := runOut(e, b); out != "joined\n" {
		t.Errorf("container saw %q in /srv/only-in-ns, want joined", out)
	}
}

// A process.cwd missing from the image is created inside the rootfs,
// root-owned and 0755, never through a symlink out of it.
func TestOCICwdCreated(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	root := filepath.Join(b.Dir, "rootfs")
	b.Spec.Process.Cwd = "/does/not/exist"
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000}
	b.Save(t)
	if rep := e.RunProbe(b); rep.Cwd != "/does/not/exist" {
		t.Errorf("cwd %q, want /does/not/exist", rep.Cwd)
	}
	st, err := os.Stat(filepath.Join(root, "does/not/exist"))
	if err != nil {
		t.Fatalf("cwd not in the rootfs: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o755 || sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("cwd mode %v owner %d:%d, want 0755 root:root", st.Mode(), sys.Uid, sys.Gid)
	}

	// An absolute symlink in the image resolves inside the rootfs, where
	// its target exists too.
	host := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	b.Spec.Process.Cwd = "/escape/made"
	b.Save(t)
	if rep := e.RunProbe(b); rep.Cwd != filepath.Join(host, "made") {
		t.Errorf("cwd %q, want %s/made (the symlink resolved in the rootfs)", rep.Cwd, host)
	}
	if _, err := os.Stat(filepath.Join(host, "made")); !os.IsNotExist(err) {
		t.Errorf("cwd was created on the host through a symlink (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(root, host, "made")); err != nil {
		t.Errorf("cwd not created inside the rootfs: %v", err)
	}
}

// On a host with a named v1 hierarchy (name=systemd), the container gets
// its own cgroup there and sees only its subtree; delete removes it.
func TestOCINamedCgroupHierarchy(t *testing.T) {
	named := "/sys/fs/cgroup/systemd"
	var st unix.Statfs_t
	if cgroupfs.DetectMode() == cgroupfs.Unified || unix.Statfs(named, &st) != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
		t.Skip("no name=systemd v1 hierarchy on this host")
	}
	e := rig.NewEnv(t)
	// A cgroup of someone else's, which the container must not see.
	other := filepath.Join(named, "berth-it-other-"+rig.Itoa(os.Getpid()))
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(other) })
	id := e.ID("named")
	b := e.Bundle("/bin/sleep", "60")
	b.Save(t)
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	pid := e.State(id).Pid
	cg := rig.ReadFile(t, "/proc/"+rig.Itoa(pid)+"/cgroup")
	if !strings.Contains(cg, ":name=systemd:/berth/"+id+"\n") {
		t.Errorf("container's cgroups:\n%s\nwant name=systemd:/berth/%s", cg, id)
	}
	own := filepath.Join(named, "berth", id)
	if _, err := os.Stat(own); err != nil {
		t.Errorf("no cgroup of the container in %s: %v", named, err)
	}
	ls := e.Must("oci", "exec", id, "/bin/ls", "/sys/fs/cgroup/systemd")
	if strings.Contains(ls, filepath.Base(other)) || strings.Contains(ls, "berth") {
		t.Errorf("the container sees other cgroups in its name=systemd hierarchy:\n%s", ls)
	}
	e.Must("oci", "delete", "-f", id)
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("%s left behind after delete (%v)", own, err)
	}
}

// A spec with a 1 GiB RLIMIT_AS runs reliably: the limit is set just
// before execve, not where it can break berth's own init.
func TestOCIRlimitAS(t *testing.T) {
	e := rig.NewEnv(t)
	b := shBundle(e, `grep "Max address space" /proc/self/limits`)
	const gib = 1 << 30
	b.Spec.Process.Rlimits = append(b.Spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Soft: gib, Hard: gib})
	b.Save(t)
	for i := 0; i < 20; i++ {
		out := runOut(e, b)
		if f := strings.Fields(out); len(f) < 5 || f[3] != "1073741824" || f[4] != "1073741824" {
			t.Fatalf("run %d: limits line %q, want 1073741824 both", i, out)
		}
	}
	// Far below what a Go process maps: an init that set it early would
	// fail every time, not only at times.
	const small = 16 << 20
	b.Spec.Process.Rlimits[len(b.Spec.Process.Rlimits)-1] = specs.POSIXRlimit{Type: "RLIMIT_AS", Soft: small, Hard: small}
	b.Save(t)
	if f := strings.Fields(runOut(e, b)); len(f) < 5 || f[3] != "16777216" {
		t.Errorf("limits line %q, want 16777216", f)
	}
}
