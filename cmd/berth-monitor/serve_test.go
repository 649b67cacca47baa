package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/tests/rig"
)

// serving is the program in serve mode and berth's end of its socket.
type serving struct {
	t    *testing.T
	cmd  *exec.Cmd
	sock int
}

func startServe(t *testing.T, env ...string) *serving {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(pair[1]), "theirs")
	defer theirs.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, proto.MonitorCommand, proto.ServeCommand, "test-id")
	cmd.Env = append(append(os.Environ(), asMain+"=1"), env...)
	cmd.ExtraFiles = []*os.File{theirs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serving{t: t, cmd: cmd, sock: pair[0]}
	t.Cleanup(func() {
		s.close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return s
}

func (s *serving) close() {
	if s.sock >= 0 {
		unix.Close(s.sock)
		s.sock = -1
	}
}

// ask sends one message and returns the reply's kind and text.
func (s *serving) ask(words []string, files ...*os.File) (string, string) {
	s.t.Helper()
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(s.sock, []byte(strings.Join(words, "\x00")), oob, nil, 0); err != nil {
		s.t.Fatal(err)
	}
	var buf [512]byte
	n, err := unix.Read(s.sock, buf[:])
	if err != nil || n == 0 {
		s.t.Fatalf("no reply: %d, %v", n, err)
	}
	kind, text, _ := strings.Cut(string(buf[:n]), "\x00")
	return kind, text
}

// fork has the program fork sh -c script with stdio.
func (s *serving) fork(script string, stdio ...*os.File) int {
	s.t.Helper()
	kind, text := s.ask([]string{proto.ServeFork, "/bin/sh", "0", "-1", "1", "PATH=/usr/bin:/bin", "sh", "-c", script}, stdio...)
	if kind != proto.ServePid {
		s.t.Fatalf("fork: %s %s", kind, text)
	}
	pid, err := strconv.Atoi(text)
	if err != nil {
		s.t.Fatal(err)
	}
	return pid
}

// bigAttrs makes the run message longer than the program's buffer, as a
// log's many labels would.
var bigAttrs = `{"big":"` + strings.Repeat("x", 40*1024) + `"}`

// TestServeForksRunsAndHandsBack: the program forks the "init" as its own
// child, runs the loop on the descriptors sent later (the container's
// input and output reach the client and the log), and hands back to the
// berth command line with the exit, the environment sent and the held
// descriptor still open.
func TestServeForksRunsAndHandsBack(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, "KEEP=kept")
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	pid := s.fork(`read x; echo "got $x"; echo oops >&2; exit 7`, inR, outW, errW)
	for _, f := range []*os.File{inR, outW, errW} {
		f.Close()
	}
	if got := rig.ParentPid(t, pid); got != s.cmd.Process.Pid {
		t.Fatalf("init's parent is %d, want the program, %d", got, s.cmd.Process.Pid)
	}

	logf, err := os.Create(filepath.Join(dir, "c-json.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	stderrf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderrf.Close()
	held, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	sockPath, lf := attachSocket(t, dir)
	result := filepath.Join(dir, "result")
	words := []string{proto.ServeRun, "2", "BERTH_MONITOR_HELD=@6", "SENT=yes",
		"berth-monitor", proto.MonitorCommand, "lean", "test-id", "pid=" + strconv.Itoa(pid), "log=@0", "out=@1", "err=@2", "in=@3",
		"console=-1", "listen=@4", "stderr=@5", "attrs=" + bigAttrs, "berth=/bin/sh", "--",
		"sh", "-c", `echo "$BERTH_MONITOR_EXIT $KEEP $SENT $(readlink /proc/self/fd/$BERTH_MONITOR_HELD)" > "$1"`, "sh", result}
	if kind, text := s.ask(words, logf, outR, errR, inW, lf, stderrf, held); kind != proto.ServeOK {
		t.Fatalf("run: %s %s", kind, text)
	}
	for _, f := range []*os.File{outR, errR, inW, lf} {
		f.Close()
	}
	s.close()
	// The program execs itself into the loop (its input keeps the
	// "container" waiting), with descriptor numbers for the @Ns.
	var args []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", s.cmd.Process.Pid))
		args = strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		if len(args) > 2 && args[2] == "lean" || time.Now().After(deadline) {
			break
		}
	}
	if len(args) < 5 || args[1] != proto.MonitorCommand || args[2] != "lean" || args[3] != "test-id" || !slices.Contains(args, "attrs="+bigAttrs) ||
		slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "=@") || strings.HasPrefix(a, "stderr=") }) {
		t.Errorf("the loop runs with %q", args)
	}

	c, err := net.Dial("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(frame(proto.FrameStdin, []byte("hello\n"))); err != nil {
		t.Fatal(err)
	}
	got, code := readFrames(t, c, func() string {
		b, _ := os.ReadFile(stderrf.Name())
		return string(b)
	})
	if got[proto.FrameStdout] != "got hello\n" || got[proto.FrameStderr] != "oops\n" || code != 7 {
		t.Errorf("client got stdout %q, stderr %q, exit %d", got[proto.FrameStdout], got[proto.FrameStderr], code)
	}
	if err := s.cmd.Wait(); err != nil {
		b, _ := os.ReadFile(stderrf.Name())
		t.Fatalf("program: %v (stderr %q)", err, b)
	}
	res, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("7 kept yes %s\n", held.Name()); string(res) != want {
		t.Errorf("handed back %q, want %q", res, want)
	}
	if b, _ := os.ReadFile(logf.Name()); !strings.Contains(string(b), "got hello") || !strings.Contains(string(b), bigAttrs) {
		t.Errorf("log %q", b)
	}
	if b, _ := os.ReadFile(stderrf.Name()); len(b) != 0 {
		t.Errorf("complaints %q", b)
	}
}

// TestServeAbandonsInitWhenBerthGoes: the end of berth's socket before
// the run message (a failed start) ends the init the program forked.
func TestServeAbandonsInitWhenBerthGoes(t *testing.T) {
	s := startServe(t)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	pid := s.fork("exec sleep 100", null, null, null)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Fatalf("init not running: %v", err)
	}
	s.close()
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("program: %v", err)
	}
	// Killed and reaped by the program before it exited.
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("init %d outlived the program: %v", pid, err)
	}
}

// TestServeRunRefusesAnotherPid: the loop only watches the init the
// program forked.
func TestServeRunRefusesAnotherPid(t *testing.T) {
	s := startServe(t)
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	s.fork("exec sleep 100", null, null, null)
	words := []string{proto.ServeRun, "0", "berth-monitor", proto.MonitorCommand, "lean", "x", "pid=1", "log=-1", "out=-1", "err=-1",
		"in=-1", "console=-1", "listen=-1", "berth=/bin/true", "--", "true"}
	if kind, text := s.ask(words); kind != proto.ServeError || !strings.Contains(text, "pid=") {
		t.Errorf("run with another pid: %s %q, want an error", kind, text)
	}
	kind, _ := s.ask([]string{proto.ServeFork, "/bin/true", "0", "-1", "0", "true"}, null, null, null)
	if kind != proto.ServeError {
		t.Errorf("second fork: %s, want an error", kind)
	}
}
