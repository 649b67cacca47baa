package nsfork

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// run starts sh -c script with attr's namespaces and returns its output,
// exit status and pid.
func run(t *testing.T, a Attr, script string) (string, int, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a.Path = "/bin/sh"
	a.Args = []string{"sh", "-c", script}
	a.Env = []string{"PATH=/usr/bin:/bin"}
	a.Files = []*os.File{os.Stdin, w, w}
	p, err := Start(&a)
	w.Close()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	out, _ := io.ReadAll(r)
	st, err := p.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return string(out), st.ExitCode(), p.Pid
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func TestStartPlain(t *testing.T) {
	needRoot(t)
	out, code, pid := run(t, Attr{}, "echo $$; exit 7")
	if code != 7 {
		t.Errorf("exit %d, want 7", code)
	}
	if strings.TrimSpace(out) != fmt.Sprint(pid) {
		t.Errorf("child says pid %q, Start returned %d", out, pid)
	}
}

// userNamespace starts a process holding a new user namespace that maps
// root to 100000 and returns the namespace file.
func userNamespace(t *testing.T) *os.File {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("user namespace holder: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestJoinUserNamespace(t *testing.T) {
	needRoot(t)
	ns := userNamespace(t)
	want, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", ns.Fd()))
	out, code, pid := run(t, Attr{UserNS: ns}, "readlink /proc/self/ns/user; id -u; id -g; grep CapEff /proc/self/status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || lines[0] != want || lines[1] != "0" || lines[2] != "0" {
		t.Fatalf("in the joined namespace: %q, want %s and uid/gid 0", out, want)
	}
	// Root of the namespace keeps its capabilities across execve.
	if full := fullCapEff(t); lines[3] != full {
		t.Errorf("capabilities after execve: %q, want the full set %q", lines[3], full)
	}
	if pid <= 0 {
		t.Errorf("pid %d", pid)
	}
}

func TestJoinUserNamespaceNewPid(t *testing.T) {
	needRoot(t)
	ns := userNamespace(t)
	// The program waits on a pipe of its own until it is killed.
	hold, keep, _ := os.Pipe()
	defer hold.Close()
	defer keep.Close()
	p, err := Start(&Attr{
		Path: "/bin/sh", Args: []string{"sh", "-c", "read x"},
		Files:  []*os.File{hold, os.Stdout, os.Stderr},
		UserNS: ns, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWUTS,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ended and reaped however the test ends; a no-op after the Wait below.
	defer func() {
		if p.Kill() == nil {
			_, _ = p.Wait()
		}
	}()
	// The returned pid is the host's view: its NSpid ends in 1.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var nspid string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "NSpid:") {
			nspid = l
		}
	}
	f := strings.Fields(nspid)
	if len(f) != 3 || f[1] != fmt.Sprint(p.Pid) || f[2] != "1" {
		t.Errorf("NSpid of the program: %q (pid %d)", nspid, p.Pid)
	}
	// The new pid namespace belongs to the joined user namespace.
	pidns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.Pid))
	self, _ := os.Readlink("/proc/self/ns/pid")
	if pidns == self {
		t.Error("no new pid namespace")
	}
	owner, err := nsOwner(fmt.Sprintf("/proc/%d/ns/uts", p.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var st1, st2 unix.Stat_t
	_ = unix.Fstat(int(ns.Fd()), &st1)
	_ = unix.Fstat(owner, &st2)
	unix.Close(owner)
	if st1.Ino != st2.Ino {
		t.Error("the new uts namespace is not owned by the joined user namespace")
	}
	_ = p.Kill()
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// fullCapEff is the CapEff line of a process with every capability.
func fullCapEff(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		t.Fatal(err)
	}
	var last uint
	if _, err := fmt.Sscan(string(b), &last); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("CapEff:\t%016x", uint64(1)<<(last+1)-1)
}

// nsOwner opens the user namespace that owns the namespace at path.
func nsOwner(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fd)
	const nsGetUserns = 0xb701 // NS_GET_USERNS
	owner, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetUserns, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(owner), nil
}

func TestDescriptorsShuffled(t *testing.T) {
	needRoot(t)
	// Targets that overlap sources: fd 0 gets what is at 2 and so on.
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	defer r1.Close()
	defer r2.Close()
	p, err := Start(&Attr{
		Path: "/bin/sh", Args: []string{"sh", "-c", "echo one >&3; echo two >&4"},
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr, w2, w1},
	})
	w1.Close()
	w2.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := io.ReadAll(r1)
	b, _ := io.ReadAll(r2)
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if string(a) != "two\n" || string(b) != "one\n" {
		t.Errorf("fd 3 went to %q, fd 4 to %q", b, a)
	}
}

func TestStartFailures(t *testing.T) {
	needRoot(t)
	_, err := Start(&Attr{Path: "/nonexistent/prog", Args: []string{"x"}, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "execve") {
		t.Errorf("missing program: %v", err)
	}
	notNS, _ := os.Open("/dev/null")
	defer notNS.Close()
	_, err = Start(&Attr{Path: "/bin/true", Args: []string{"true"}, UserNS: notNS})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "setns") {
		t.Errorf("joining a file that is no namespace: %v", err)
	}
	// Nothing is left to reap.
	var ws unix.WaitStatus
	if pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); pid > 0 {
		t.Errorf("left a child %d behind (%v, status %v)", pid, err, ws)
	}
}
