package core

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/probe"
	"github.com/berth-project/berth/tests/rig"
)

func fileHash(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

// TestExeNotWritable is CVE-2019-5736: a process in the container holds
// /proc/1/exe of berth's init open, waits for the init to exec the user
// program, and then tries to write through it. With berth running from a
// sealed memfd the write must fail and the host binary stay the same.
func TestExeNotWritable(t *testing.T) {
	e := rig.NewEnv(t)
	before := fileHash(t, rig.BerthBin)
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("cve")
	e.Must("oci", "create", "--bundle", b.Dir, id)
	pid := e.State(id).Pid
	// The same attack from the host side: hold the init's exe now, and
	// reopen it for writing once the init has exec'd the program.
	held, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	// The init may run from berth's init program rather than berth: that
	// file, read through the descriptor held, must survive too.
	heldPath := fmt.Sprintf("/proc/self/fd/%d", held.Fd())
	initBefore := fileHash(t, heldPath)
	// A berth built with its helper programs runs the init from the
	// small one (cmd/berth-init), not from itself.
	if sum, err := os.ReadFile("../../internal/helperbin/bin/berth-init.sha256"); err == nil {
		if want := strings.TrimSpace(string(sum)); initBefore != want {
			t.Errorf("the init runs from a binary with sha256 %s, want berth-init's %s", initBefore, want)
		}
	}
	script := `exec 3</proc/1/exe || { echo NOOPEN > /tmp/result; exit 0; }
touch /tmp/opened
while [ ! -e /tmp/go ]; do usleep 20000; done
if echo pwned >> /proc/self/fd/3; then echo WROTE > /tmp/result; else echo DENIED > /tmp/result; fi`
	e.Must("oci", "exec", "-d", id, "/bin/sh", "-c", script)
	// The attacker holds berth's init binary open before the init execs.
	opened := filepath.Join(b.Dir, "rootfs/tmp/opened")
	rig.WaitFor(t, "exe opened", 10*time.Second, func() bool { _, err := os.Stat(opened); return err == nil })
	e.Must("oci", "start", id)
	goFile := filepath.Join(b.Dir, "rootfs/tmp/go")
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(b.Dir, "rootfs/tmp/result")
	rig.WaitFor(t, "attack result", 10*time.Second, func() bool { _, err := os.Stat(res); return err == nil })
	time.Sleep(50 * time.Millisecond)
	if got := strings.TrimSpace(rig.ReadFile(t, res)); got != "DENIED" {
		t.Errorf("writing through the init's /proc/1/exe: %s, want DENIED", got)
	}
	// Read-only bind (EROFS) or sealed memfd (EPERM); the host's
	// writable binary would open fine now that nothing executes it here.
	w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", held.Fd()), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		w.Close()
		t.Error("the init's binary can be opened for writing after exec")
	} else if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EPERM) {
		t.Errorf("reopen for writing: %v, want EROFS or EPERM", err)
	}
	if after := fileHash(t, rig.BerthBin); after != before {
		t.Fatal("the berth binary was modified from inside a container")
	}
	if fileHash(t, heldPath) != initBefore {
		t.Fatal("the init's binary was modified from inside a container")
	}
}

func TestNoHostFDsAndCwd(t *testing.T) {
	e := rig.NewEnv(t)
	// A cwd through one of berth's own descriptors would point outside
	// the rootfs (CVE-2024-21626): it must fail or stay inside.
	for fd := 3; fd <= 9; fd++ {
		b := e.Bundle("/probe")
		b.Spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
		b.Save(t)
		id := e.ID("cwd")
		r := e.Berth("oci", "run", "--bundle", b.Dir, id)
		if r.Code == 0 {
			if !strings.Contains(r.Stdout, `"cwd": "/`) || strings.Contains(r.Stdout, "unreachable") {
				t.Errorf("cwd fd %d: container started outside its root: %.300s", fd, r.Stdout)
			}
		} else if r.Code != 125 {
			t.Errorf("cwd fd %d: exit %d (%s)", fd, r.Code, r.Stderr)
		}
		e.AssertGone(id, "/berth/"+id)
	}
}

func TestSymlinkCannotRedirectMount(t *testing.T) {
	e := rig.NewEnv(t)
	hostDir := t.TempDir()
	// Inside, both mounts show at the path the symlinks resolve to.
	b := e.Bundle("/bin/sh", "-c", "grep -q ' "+hostDir+"/sub ' /proc/self/mountinfo && grep -q ' "+hostDir+"/sub2 ' /proc/self/mountinfo && echo mounted")
	rootfs := filepath.Join(b.Dir, "rootfs")
	// An absolute and a relative symlink that point at hostDir when
	// followed on the host; inside the rootfs they resolve to
	// rootfs/hostDir, which exists.
	if err := os.MkdirAll(filepath.Join(rootfs, hostDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostDir, filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../.."+hostDir, filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/escape/sub", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel/sub2", Type: "tmpfs", Source: "tmpfs"})
	b.Save(t)
	out := e.Must("oci", "run", "--bundle", b.Dir, e.ID("link"))
	if strings.TrimSpace(out) != "mounted" {
		t.Errorf("mounts missing inside: %q", out)
	}
	checkEmpty := func() {
		ents, _ := os.ReadDir(hostDir)
		for _, ent := range ents {
			t.Errorf("mount target escaped to the host: %s/%s", hostDir, ent.Name())
		}
	}
	checkEmpty()
	if _, err := os.Stat(filepath.Join(rootfs, hostDir, "sub")); err != nil {
		t.Errorf("target not created inside the rootfs: %v", err)
	}
	// A symlink whose target does not exist inside the rootfs is refused,
	// never followed out.
	if err := os.RemoveAll(filepath.Join(rootfs, "tmp", filepath.Base(hostDir))); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(rootfs, strings.Split(hostDir, "/")[1])); err != nil {
		t.Fatal(err)
	}
	id := e.ID("dangling")
	r := e.Berth("oci", "run", "--bundle", b.Dir, id)
	if r.Code != 125 {
		t.Fatalf("dangling symlink mount: exit %d, stdout %q", r.Code, r.Stdout)
	}
	checkOneLine(t, r.Stderr, "/escape/sub")
	checkEmpty()
	e.AssertGone(id, "/berth/"+id)
}

func TestNonRootUser(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	b.Spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001}}
	b.Save(t)
	rep := e.RunProbe(b)
	if rep.UID != 1000 || rep.EUID != 1000 || rep.GID != 1000 || len(rep.Groups) != 1 || rep.Groups[0] != 1001 {
		t.Errorf("uid %d euid %d gid %d groups %v", rep.UID, rep.EUID, rep.GID, rep.Groups)
	}
	// A non-root program keeps no effective capabilities after execve.
	if rep.CapEff != "0000000000000000" || rep.CapBnd != dockerCaps {
		t.Errorf("caps eff %s bnd %s", rep.CapEff, rep.CapBnd)
	}
}

func TestHooks(t *testing.T) {
	e := rig.NewEnv(t)
	dir := t.TempDir()
	b := e.Bundle("/bin/true")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 the deprecated hook must still run
		Prestart:        []specs.Hook{hook("prestart")},
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		// Runs inside the container, after pivot_root: its paths are the
		// container's.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
		Poststart:      []specs.Hook{hook("poststart")},
		Poststop:       []specs.Hook{hook("poststop")},
	}
	b.Save(t)
	id := e.ID("hooks")
	e.Must("oci", "run", "--bundle", b.Dir, id)
	for _, name := range []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s hook did not run: %v", name, err)
			continue
		}
		if !strings.Contains(string(data), `"id":"`+id+`"`) || !strings.Contains(string(data), `"bundle":"`+b.Dir) {
			t.Errorf("%s hook got state %s", name, data)
		}
	}
	if data, err := os.ReadFile(filepath.Join(b.Dir, "rootfs/tmp/startContainer")); err != nil || !strings.Contains(string(data), id) {
		t.Errorf("startContainer hook: %q %v", data, err)
	}

	// A failing prestart hook fails create and leaves nothing.
	//lint:ignore SA1019 the deprecated hook must still fail the create
	b.Spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo nope >&2; exit 1"}}}}
	b.Save(t)
	id = e.ID("badhook")
	r := e.Berth("oci", "run", "--bundle", b.Dir, id)
	if r.Code != 125 {
		t.Fatalf("failing hook: exit %d", r.Code)
	}
	checkOneLine(t, r.Stderr, "prestart hook")
	e.AssertGone(id, "/berth/"+id)
}

func TestConsoleSocket(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "test -t 0 && test -t 1 && echo IS-A-TTY; stty size; sleep 1")
	b.Spec.Process.Terminal = true
	b.Spec.Process.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	b.Save(t)
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrUnix{Name: sockPath}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan *os.File, 1)
	go func() {
		cfd, _, err := unix.Accept(lfd)
		if err != nil {
			got <- nil
			return
		}
		defer unix.Close(cfd)
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(cfd, buf, oob, 0)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			got <- nil
			return
		}
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	id := e.ID("tty")
	e.Must("oci", "create", "--bundle", b.Dir, "--console-socket", sockPath, id)
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no pty master arrived on the console socket")
	}
	if master == nil {
		t.Fatal("bad console socket message")
	}
	defer master.Close()
	e.Must("oci", "start", id)
	var out strings.Builder
	buf := make([]byte, 1024)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), "33 101") {
		master.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := master.Read(buf)
		out.Write(buf[:n])
	}
	if !strings.Contains(out.String(), "IS-A-TTY") || !strings.Contains(out.String(), "33 101") {
		t.Errorf("pty output %q, want IS-A-TTY and size 33 101", out.String())
	}
}

func TestExecInto(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("exec")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	initPid := e.State(id).Pid
	initNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	initCgNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", initPid))
	out := e.Must("oci", "exec", "--user", "1000:1000", "-g", "1001", "--cwd", "/tmp", "-e", "FOO=bar", id, "/probe")
	for _, want := range []string{`"uid": 1000`, `"gid": 1000`, `"cwd": "/tmp"`, `"FOO=bar"`, initNS, initCgNS, `"seccomp": 2`, `"no_new_privs": 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("exec report lacks %s: %.400s", want, out)
		}
	}
	if strings.Contains(out, `"pid": 1,`) {
		t.Error("exec'd process is pid 1")
	}
	if r := e.Berth("oci", "exec", id, "/bin/sh", "-c", "exit 7"); r.Code != 7 {
		t.Errorf("exec exit code %d, want 7", r.Code)
	}
	if r := e.Berth("oci", "exec", id, "nosuchcmd"); r.Code != 127 {
		t.Errorf("exec of a missing program: exit %d, want 127", r.Code)
	}
	if r := e.Berth("oci", "exec", "nosuchcontainer", "/bin/true"); r.Code != 125 {
		t.Errorf("exec into a missing container: exit %d", r.Code)
	}
}

func TestUserNamespace(t *testing.T) {
	e := rig.NewEnv(t)
	rep := e.RunProbe(userNSBundle(t, e))
	if f := strings.Fields(rep.UIDMap); len(f) != 3 || f[0] != "0" || f[1] != "100000" || f[2] != "65536" {
		t.Errorf("uid_map %q", rep.UIDMap)
	}
	host, _ := os.Readlink("/proc/self/ns/user")
	if rep.Namespaces["user"] == host {
		t.Error("same user namespace as the host")
	}
	if rep.UID != 0 || rep.Pid != 1 {
		t.Errorf("uid %d pid %d", rep.UID, rep.Pid)
	}
}

func TestCustomSeccomp(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?")
	b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: rig.Ptr(uint(38))}},
	}
	b.Save(t)
	r := e.Berth("oci", "run", "--bundle", b.Dir, e.ID("sc"))
	if !strings.Contains(r.Stdout, "rc=1") || !strings.Contains(r.Stderr+r.Stdout, "not implemented") {
		t.Errorf("mkdir under the profile: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(b.Dir, "rootfs/tmp/x")); err == nil {
		t.Error("mkdir succeeded despite the profile")
	}
}

func TestRlimits(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle()
	b.Spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 300, Hard: 600}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
	b.Save(t)
	rep := e.RunProbe(b)
	if nf := rep.Rlimits["nofile"]; nf.Soft != 300 || nf.Hard != 600 {
		t.Errorf("nofile %+v, want 300/600", nf)
	}
	// Without an rlimit in the spec the container inherits the caller's
	// soft limit, not the one Go raised for berth itself.
	b.Spec.Process.Rlimits = nil
	b.Save(t)
	id := e.ID("rl")
	cmd := fmt.Sprintf("ulimit -Sn 777 && exec %s --root %s oci run --bundle %s %s", rig.BerthBin, e.Root, b.Dir, id)
	out, err := rig.ExecShell(cmd)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out, `"nofile": {`) || !strings.Contains(out, `"soft": 777`) {
		t.Errorf("inherited nofile not 777: %.2000s", out)
	}
}

func TestSignalsForwarded(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "signals")
	id := e.ID("sigs")
	outPath := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := rig.ExecBerth(e, f, "oci", "run", "--bundle", b.Dir, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	rig.WaitFor(t, "ready", 10*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, outPath), "ready") })
	for _, s := range []unix.Signal{unix.SIGUSR1, unix.SIGHUP, unix.SIGUSR2, unix.SIGINT} {
		if err := cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		name := "got " + unix.SignalName(s)
		rig.WaitFor(t, name, 5*time.Second, func() bool { return strings.Contains(rig.ReadFile(t, outPath), name) })
	}
	cmd.Process.Signal(unix.SIGTERM)
	err = cmd.Wait()
	if err != nil || cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("after SIGTERM: %v, output %s", err, rig.ReadFile(t, outPath))
	}
	e.AssertGone(id, "/berth/"+id)
}

func TestBerthOCIName(t *testing.T) {
	e := rig.NewEnv(t)
	link := filepath.Join(t.TempDir(), "berth-oci")
	if err := os.Symlink(rig.BerthBin, link); err != nil {
		t.Fatal(err)
	}
	b := e.Bundle("/bin/sh", "-c", "echo via-berth-oci")
	id := e.ID("ocisym")
	out, err := rig.ExecShell(fmt.Sprintf("%s --root %s --log-format json --systemd-cgroup run --bundle %s %s", link, e.Root, b.Dir, id))
	if err != nil || strings.TrimSpace(out) != "via-berth-oci" {
		t.Fatalf("berth-oci run: %v %q", err, out)
	}
	out, _ = rig.ExecShell(fmt.Sprintf("%s --root %s state nosuch", link, e.Root))
	if !strings.Contains(out, "does not exist") {
		t.Errorf("berth-oci state of a missing container: %q", out)
	}
}

func TestReadonlyRootAndBinds(t *testing.T) {
	e := rig.NewEnv(t)
	hostRW, hostRO := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(hostRO, "f"), []byte("from-host"), 0o644)
	b := e.Bundle("/bin/sh", "-c", "touch /x 2>/dev/null && echo ROOT-WRITABLE; echo data > /rw/out; cat /ro/f; touch /ro/g 2>/dev/null && echo RO-WRITABLE; true")
	b.Spec.Root.Readonly = true
	b.Spec.Mounts = append(b.Spec.Mounts,
		specs.Mount{Destination: "/rw", Type: "bind", Source: hostRW, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/ro", Type: "bind", Source: hostRO, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	b.Save(t)
	out := e.Must("oci", "run", "--bundle", b.Dir, e.ID("ro"))
	if strings.Contains(out, "WRITABLE") {
		t.Errorf("writable where it must not be: %q", out)
	}
	if !strings.Contains(out, "from-host") {
		t.Errorf("ro bind content missing: %q", out)
	}
	if got := rig.ReadFile(t, filepath.Join(hostRW, "out")); got != "data\n" {
		t.Errorf("rw bind write: %q", got)
	}
}

func TestExecTTY(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("exectty")
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	// berth relays the pty itself when no console socket is given.
	r := e.Berth("oci", "exec", "-t", id, "/bin/sh", "-c", "test -t 0 && test -t 1 && echo ON-A-TTY; tty; exit 4")
	if r.Code != 4 {
		t.Errorf("exec -t exit %d, want 4 (stderr %q)", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "ON-A-TTY") || !strings.Contains(r.Stdout, "/dev/pts/") {
		t.Errorf("exec -t output %q", r.Stdout)
	}
	// Without a console socket, a detached exec cannot have a terminal.
	if r := e.Berth("oci", "exec", "-t", "-d", id, "/bin/true"); r.Code != 125 {
		t.Errorf("exec -t -d without console socket: exit %d", r.Code)
	}
}

// openToRemappedRoot lets a remapped root reach the bundle, as with runc.
func openToRemappedRoot(t *testing.T, b *rig.Bundle) {
	t.Helper()
	for _, d := range []string{b.Dir, filepath.Dir(b.Dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// userNSBundle is a bundle whose container gets a new user namespace
// mapping root to 100000, reachable by the remapped root.
func userNSBundle(t *testing.T, e *rig.Env, args ...string) *rig.Bundle {
	t.Helper()
	b := e.Bundle(args...)
	openToRemappedRoot(t, b)
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Save(t)
	return b
}

// runUserNSSleeper runs a detached container with its own user namespace
// and returns its id and pid.
func runUserNSSleeper(t *testing.T, e *rig.Env, prefix string) (string, int) {
	t.Helper()
	b := userNSBundle(t, e, "/probe", "sleep", "60")
	id := e.ID(prefix)
	e.Must("oci", "run", "-d", "--bundle", b.Dir, id)
	return id, e.State(id).Pid
}

// A container can join another's user namespace by path (as in a pod),
// with new pid, mount and other namespaces that belong to it.
func TestJoinUserNamespacePath(t *testing.T) {
	e := rig.NewEnv(t)
	_, pid := runUserNSSleeper(t, e, "usernsowner")
	userns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))

	b := e.Bundle()
	openToRemappedRoot(t, b)
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", pid)})
	b.Save(t)
	rep := e.RunProbe(b)
	if rep.Namespaces["user"] != userns {
		t.Errorf("user namespace %s, want the owner's %s", rep.Namespaces["user"], userns)
	}
	if f := strings.Fields(rep.UIDMap); len(f) != 3 || f[1] != "100000" {
		t.Errorf("uid_map %q, want the owner's mapping", rep.UIDMap)
	}
	ownerPidNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if rep.Pid != 1 || rep.UID != 0 || rep.Namespaces["pid"] == ownerPidNS {
		t.Errorf("pid %d uid %d pidns %s (owner's %s): want pid 1 of a new pid namespace as root", rep.Pid, rep.UID, rep.Namespaces["pid"], ownerPidNS)
	}
	// The default capabilities, held in the joined namespace.
	if rep.CapEff == "" || rep.CapEff == "0000000000000000" {
		t.Errorf("no effective capabilities: %q", rep.CapEff)
	}
}

func TestExecIntoUserNamespace(t *testing.T) {
	e := rig.NewEnv(t)
	id, pid := runUserNSSleeper(t, e, "usernsexec")
	out := e.Must("oci", "exec", "--user", "1000:1000", id, "/probe")
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	for _, ns := range []string{"user", "pid", "mnt", "net", "uts", "ipc"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if rep.Namespaces[ns] != want {
			t.Errorf("exec'd process in %s namespace %s, want the container's %s", ns, rep.Namespaces[ns], want)
		}
	}
	if rep.UID != 1000 || rep.Pid == 1 {
		t.Errorf("exec'd process: uid %d pid %d", rep.UID, rep.Pid)
	}
	if r := e.Berth("oci", "exec", id, "/bin/sh", "-c", "id -u; exit 5"); r.Code != 5 || strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("exec as root: exit %d, output %q", r.Code, r.Stdout)
	}
}

// The runtime-spec's statuses in order: a createRuntime hook sees the
// container "creating", then it is "created" until start, then "running".
func TestStatusesInOrder(t *testing.T) {
	e := rig.NewEnv(t)
	dir := t.TempDir()
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("statuses")
	seen := filepath.Join(dir, "during-create")
	b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
		fmt.Sprintf("%s --root %s oci state %s > %s", rig.BerthBin, e.Root, id, seen)}}}}
	b.Save(t)
	e.Must("oci", "create", "--bundle", b.Dir, id)
	data, err := os.ReadFile(seen)
	if err != nil || !strings.Contains(string(data), `"status": "creating"`) {
		t.Errorf("state during create: %q %v", data, err)
	}
	if st := e.State(id).Status; st != "created" {
		t.Errorf("after create: %s", st)
	}
	e.Must("oci", "start", id)
	if st := e.State(id).Status; st != "running" {
		t.Errorf("after start: %s", st)
	}
	e.Must("oci", "kill", id, "KILL")
	deadline := time.Now().Add(5 * time.Second)
	for e.State(id).Status != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("still %s after SIGKILL", e.State(id).Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.Must("oci", "delete", id)
}
