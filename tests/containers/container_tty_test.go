package containers

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// pty is a pseudo-terminal pair for running berth as if from a terminal.
type pty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           strings.Builder
}

func openPty(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101})
	p := &pty{master: m, slave: s}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

func (p *pty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs cmd with the pty as its controlling terminal.
func (p *pty) start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (p *pty) waitOutput(t *testing.T, want string) {
	t.Helper()
	rig.WaitFor(t, fmt.Sprintf("%q on the terminal (have %q)", want, p.output()), 15*time.Second, func() bool {
		return strings.Contains(p.output(), want)
	})
}

func TestContainerInteractiveTTY(t *testing.T) {
	c := rig.NewContainerEnv(t)
	p := openPty(t)
	cmd := c.Cmd("run", "-it", "--name", "tty", rig.TestImage, "sh")
	p.start(t, cmd)
	// The container's terminal has the caller's size.
	_, _ = p.master.Write([]byte("stty size; tty\n"))
	p.waitOutput(t, "33 101")
	p.waitOutput(t, "/dev/pts/0")
	// Ctrl-P Ctrl-Q detaches and leaves it running.
	_, _ = p.master.Write([]byte{16, 17})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("detach: berth exited %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("detach keys did not detach")
	}
	if st := c.PsStatus()["tty"]; !strings.HasPrefix(st, "Up ") {
		t.Fatalf("after detach: %q", st)
	}
	// attach re-attaches; the exit status comes back.
	p2 := openPty(t)
	cmd = c.Cmd("attach", "tty")
	p2.start(t, cmd)
	time.Sleep(300 * time.Millisecond)
	// A new terminal size reaches the container (SIGWINCH to berth, a
	// resize to the monitor, TIOCSWINSZ on the container's pty).
	_ = unix.IoctlSetWinsize(int(p2.slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 77})
	time.Sleep(300 * time.Millisecond)
	_, _ = p2.master.Write([]byte("stty size\n"))
	p2.waitOutput(t, "41 77")
	_, _ = p2.master.Write([]byte("echo again; exit 5\n"))
	p2.waitOutput(t, "again")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("attach exit: %v", err)
	}
	if got := c.Field("tty", "{{.State.ExitCode}}"); got != "5" {
		t.Errorf("recorded exit %s (%s)", got, c.Field("tty", "{{.State.Error}}"))
	}
	// The terminal's output is in the log too.
	if got := c.Must("logs", "tty"); !strings.Contains(got, "again") {
		t.Errorf("logs of a tty container: %q", got)
	}
}

func TestContainerExecTTY(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "100")
	p := openPty(t)
	cmd := c.Cmd("exec", "-it", "box", "sh")
	p.start(t, cmd)
	_, _ = p.master.Write([]byte("tty; stty size; exit 4\n"))
	p.waitOutput(t, "/dev/pts/")
	p.waitOutput(t, "33 101")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Errorf("exec -it exit: %v", err)
	}
}
