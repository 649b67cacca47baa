package reaper

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the init and as its child: helperEnv selects
// the role. Main makes the init a child subreaper (PR_SET_CHILD_SUBREAPER),
// so orphans reparent to it as they would to PID 1 of a container.
const helperEnv = "BERTH_REAPER_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helper(mode string, args []string) int {
	switch mode {
	case "init":
		// The child is this binary again, in the role given by args[0].
		os.Setenv(helperEnv, "child")
		return Main(args)
	case "child":
		return child(args)
	case "orphan-maker":
		// Start a grandchild and exit without waiting: it becomes an
		// orphan of the init.
		g := exec.Command(os.Args[0], "sleep", "0.2")
		g.Env = append(os.Environ(), helperEnv+"=child")
		if err := g.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(g.Process.Pid)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// child is the program the init runs; it reports through its exit code
// and stdout.
func child(args []string) int {
	if len(args) == 0 {
		return 99
	}
	switch args[0] {
	case "exit":
		if len(args) < 2 {
			return 99
		}
		n, _ := strconv.Atoi(args[1])
		return n
	case "sleep":
		d, _ := strconv.ParseFloat(args[1], 64)
		time.Sleep(time.Duration(d * float64(time.Second)))
		return 0
	case "ready-sleep":
		// Says it runs (so the init has caught its signals), then dies
		// of the first SIGTERM (Go's default action for it).
		fmt.Println("ready")
		time.Sleep(10 * time.Second)
		return 0
	case "kill-self":
		unix.Kill(os.Getpid(), unix.SIGTERM)
		time.Sleep(5 * time.Second)
		return 1
	case "signals":
		c := make(chan os.Signal, 16)
		signal.Notify(c, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT)
		fmt.Println("ready")
		// Bounded so that a failed test leaves no process behind.
		timeout := time.After(15 * time.Second)
		for {
			select {
			case s := <-c:
				fmt.Println("got", unix.SignalName(s.(syscall.Signal)))
				if s == unix.SIGTERM {
					return 0
				}
			case <-timeout:
				return 8
			}
		}
	case "reap":
		// Make an orphan that exits after 0.2s, then watch it: it must
		// vanish from /proc (reaped by the init), not stay a zombie.
		m := exec.Command(os.Args[0])
		m.Env = append(os.Environ(), helperEnv+"=orphan-maker")
		out, err := m.Output()
		if err != nil {
			fmt.Println("orphan-maker:", err)
			return 3
		}
		pid := strings.TrimSpace(string(out))
		fmt.Println("orphan", pid)
		deadline := time.Now().Add(5 * time.Second)
		zombie := false
		for time.Now().Before(deadline) {
			st, err := os.ReadFile("/proc/" + pid + "/stat")
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Println("reaped")
				return 0
			}
			if i := strings.LastIndexByte(string(st), ')'); !zombie && i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				fmt.Println("zombie")
				zombie = true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return 4
	case "fg":
		// With a controlling terminal our group must be the foreground one.
		pg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
		if err != nil {
			fmt.Println("TIOCGPGRP:", err)
			return 5
		}
		if pg != unix.Getpgrp() || pg != os.Getpid() {
			fmt.Printf("foreground %d, our group %d, pid %d\n", pg, unix.Getpgrp(), os.Getpid())
			return 6
		}
		return 0
	case "pgrp":
		if unix.Getpgrp() != os.Getpid() {
			fmt.Println("not a group leader")
			return 7
		}
		return 0
	}
	return 99
}

// initCmd runs the test binary as the init of the given child role.
func initCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(os.Args[0], append([]string{"--", os.Args[0]}, args...)...)
	c.Env = append(os.Environ(), helperEnv+"=init")
	c.Stderr = os.Stderr
	return c
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run init: %v", err)
	}
	return ee.ExitCode()
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"exit", "0"}, 0},
		{[]string{"exit", "7"}, 7},
		{[]string{"kill-self"}, 128 + int(unix.SIGTERM)},
		{[]string{"pgrp"}, 0},
	} {
		out, err := initCmd(t, tc.args...).Output()
		if got := exitCode(t, err); got != tc.want {
			t.Errorf("%v: exit %d, want %d (output %q)", tc.args, got, tc.want, out)
		}
	}
}

func TestReapsOrphans(t *testing.T) {
	out, err := initCmd(t, "reap").Output()
	if code := exitCode(t, err); code != 0 || !strings.Contains(string(out), "reaped") {
		t.Fatalf("orphan not reaped: exit %d, output %q", code, out)
	}
}

func TestForwardsSignals(t *testing.T) {
	c := initCmd(t, "signals")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("timed out waiting for the child")
			return ""
		}
	}
	if l := next(); l != "ready" {
		t.Fatalf("child said %q, want ready", l)
	}
	for _, s := range []syscall.Signal{unix.SIGUSR1, unix.SIGHUP, unix.SIGWINCH, unix.SIGINT, unix.SIGUSR2, unix.SIGQUIT, unix.SIGTERM} {
		if err := c.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		if l, want := next(), "got "+unix.SignalName(s); l != want {
			t.Fatalf("after %v the child said %q, want %q", s, l, want)
		}
	}
	if code := exitCode(t, c.Wait()); code != 0 {
		t.Fatalf("init exited %d, want 0", code)
	}
}

func TestForegroundWithTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	c := initCmd(t, "fg")
	c.Stdin = pts
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	out, err := c.Output()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--", filepath.Join(dir, "missing")}, 127},
		{[]string{"no-such-command-anywhere"}, 127},
		{[]string{"--", noexec}, 126},
		{[]string{"--", dir}, 126},
		{[]string{"--"}, 2},
	} {
		c := exec.Command(os.Args[0], tc.args...)
		c.Env = append(os.Environ(), helperEnv+"=init")
		var stderr strings.Builder
		c.Stderr = &stderr
		err := c.Run()
		if got := exitCode(t, err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.args, got, tc.want)
		}
		if !strings.HasPrefix(stderr.String(), "berth-init: ") {
			t.Errorf("%v: stderr %q lacks the berth-init: prefix", tc.args, stderr.String())
		}
	}
}

// TestSignalsUntilExit: a stop signal that comes after the child died,
// while the init is on its way out, must not end the init: as a pid
// namespace's init it would ignore its own default-action signal and the
// Go runtime would exit 2 instead (systemd's KillMode=control-group sends
// SIGTERM to the init and the child at once). Each round floods the init
// with SIGTERM until it exits; its status must be the child's, 143.
func TestSignalsUntilExit(t *testing.T) {
	for round := 0; round < 30; round++ {
		c := initCmd(t, "ready-sleep")
		stdout, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if l, _ := bufio.NewReader(stdout).ReadString('\n'); l != "ready\n" {
			_ = c.Process.Kill()
			_ = c.Wait()
			t.Fatalf("round %d: child said %q, want ready", round, l)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
	flood:
		for {
			select {
			case err = <-done:
				break flood
			default:
				_ = c.Process.Signal(unix.SIGTERM)
			}
		}
		if code := exitCode(t, err); code != 128+int(unix.SIGTERM) {
			t.Fatalf("round %d: init ended with %v, want exit %d (the child's SIGTERM)", round, c.ProcessState, 128+int(unix.SIGTERM))
		}
	}
}
