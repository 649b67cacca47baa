package containers

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

func waitOutput(t *testing.T, p *rig.Pty, want string) {
	t.Helper()
	rig.WaitFor(t, fmt.Sprintf("%q on the terminal (have %q)", want, p.Output()), 15*time.Second, func() bool {
		return strings.Contains(p.Output(), want)
	})
}

func TestContainerInteractiveTTY(t *testing.T) {
	c := rig.NewContainerEnv(t)
	p := rig.OpenPty(t)
	cmd := c.Cmd("run", "-it", "--name", "tty", rig.TestImage, "sh")
	p.Start(t, cmd)
	// The container's terminal has the caller's size.
	_, _ = p.Master.Write([]byte("stty size; tty\n"))
	waitOutput(t, p, "33 101")
	waitOutput(t, p, "/dev/pts/0")
	// Ctrl-P Ctrl-Q detaches and leaves it running.
	_, _ = p.Master.Write([]byte{16, 17})
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
	p2 := rig.OpenPty(t)
	cmd = c.Cmd("attach", "tty")
	p2.Start(t, cmd)
	time.Sleep(300 * time.Millisecond)
	// A new terminal size reaches the container (SIGWINCH to berth, a
	// resize to the monitor, TIOCSWINSZ on the container's pty).
	_ = unix.IoctlSetWinsize(int(p2.Slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 77})
	time.Sleep(300 * time.Millisecond)
	_, _ = p2.Master.Write([]byte("stty size\n"))
	waitOutput(t, p2, "41 77")
	_, _ = p2.Master.Write([]byte("echo again; exit 5\n"))
	waitOutput(t, p2, "again")
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
	p := rig.OpenPty(t)
	cmd := c.Cmd("exec", "-it", "box", "sh")
	p.Start(t, cmd)
	_, _ = p.Master.Write([]byte("tty; stty size; exit 4\n"))
	waitOutput(t, p, "/dev/pts/")
	waitOutput(t, p, "33 101")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Errorf("exec -it exit: %v", err)
	}
}
