// Package reaper is the minimal init that `berth run --init` puts at PID 1
// of a container, like tini or docker-init: it starts the container's
// command as its only child, forwards signals to it, reaps every zombie
// that is reparented to it, and exits with the child's status.
//
// The berth binary itself is bind-mounted at Path; main dispatches to
// Main when it is started under that name. Main runs in every --init
// container for the container's whole life, so it keeps to the standard
// library and golang.org/x/sys.
package reaper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Path is where the berth binary is mounted in an --init container.
const Path = "/dev/init"

// Exit codes for a command that cannot be started, as shells use them.
const (
	exitNotExecutable = 126
	exitNotFound      = 127
	exitUsage         = 2
)

// defaultPath is searched when the environment has no PATH, as in
// Docker's default container environment.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var errNotFound = errors.New("executable file not found in $PATH")

// reapInterval bounds how long a zombie can wait if its SIGCHLD was
// coalesced away or dropped by a full channel.
const reapInterval = time.Second

// Main runs args (optionally after "--") as the child and returns the exit
// status to exit with: the child's, or 128+n if signal n killed it.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "berth-init: no command given (usage: %s [--] CMD [ARG...])\n", Path)
		return exitUsage
	}
	status, err := run(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
	}
	return status
}

// caught is every signal Main handles: forwarded ones, SIGCHLD, and the
// terminal-job signals it swallows.
func caught() []os.Signal {
	var sigs []os.Signal
	for n := 1; n <= 64; n++ {
		s := syscall.Signal(n)
		switch s {
		case unix.SIGKILL, unix.SIGSTOP:
			continue // cannot be caught
		case unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSYS:
			continue // synchronous: about this process, not for the child
		case unix.SIGURG:
			// The Go runtime sends itself SIGURG to preempt goroutines;
			// forwarding those would flood the child with spurious ones.
			continue
		}
		if n == 32 || n == 33 {
			continue // reserved by the C library for its threads
		}
		sigs = append(sigs, s)
	}
	return sigs
}

// forwarded reports whether a caught signal goes on to the child.
func forwarded(s syscall.Signal) bool {
	switch s {
	case unix.SIGCHLD:
		return false
	case unix.SIGTTIN, unix.SIGTTOU:
		// Caught rather than ignored (an ignored disposition would be
		// inherited across exec), and dropped: they are about this
		// process touching the terminal, as tini treats them.
		return false
	}
	return true
}

func run(args []string) (int, error) {
	// Orphans must come to us to be reaped even when we are not PID 1
	// (tests, or a runtime that runs the init under another process).
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return exitNotExecutable, fmt.Errorf("set child subreaper: %w", err)
		}
	}
	prog, err := lookPath(args[0])
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotFound) {
			return exitNotFound, err
		}
		return exitNotExecutable, err
	}

	// Catch before the fork: a signal arriving in between must not kill
	// us (a Go default action) nor be lost. They stay caught until the
	// process exits: a stop signal that comes after the child died (one
	// sent to the whole container, as systemd's KillMode=control-group
	// does) must not end us either. As a pid namespace's init we ignore
	// a default-action signal of our own, and the Go runtime, failing to
	// die of it, would exit 2 in place of the child's status.
	sigc := make(chan os.Signal, 128)
	signal.Notify(sigc, caught()...)

	attr := &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if hasCtty(0) {
		// The child's group takes the terminal, so ^C and job control
		// reach it as they would without an init (tini's tcsetpgrp).
		attr.Sys.Foreground = true
		attr.Sys.Ctty = 0
	}
	// syscall.ForkExec, not os.StartProcess: nothing else may wait on the
	// child, as wait4(-1) below reaps it with everything else.
	pid, err := syscall.ForkExec(prog, args, attr)
	if err != nil {
		err = fmt.Errorf("exec %s: %w", args[0], err)
		switch {
		case errors.Is(err, syscall.ENOENT):
			return exitNotFound, err
		default:
			return exitNotExecutable, err
		}
	}

	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	for {
		select {
		case s := <-sigc:
			sig, ok := s.(syscall.Signal)
			if ok && forwarded(sig) {
				// ESRCH only means the child is already gone; its exit
				// is picked up by the reap below.
				_ = unix.Kill(pid, sig)
			}
		case <-tick.C:
		}
		if status, done := reap(pid); done {
			return status, nil
		}
	}
}

// reap collects every exited child and reports the status of child pid
// once it has exited.
func reap(child int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD && !done {
			// Our child is gone without a status seen here: nothing will
			// ever report it, so stop rather than wait forever.
			return 1, true
		}
		if err != nil || pid <= 0 {
			return status, done
		}
		if pid != child {
			continue
		}
		switch {
		case ws.Exited():
			status, done = ws.ExitStatus(), true
		case ws.Signaled():
			status, done = 128+int(ws.Signal()), true
		}
	}
}

// hasCtty reports whether fd is this process's controlling terminal:
// TIOCGPGRP fails with ENOTTY on any other fd.
func hasCtty(fd int) bool {
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil
}

// lookPath finds name as execvp would; the error wraps errNotFound or
// fs.ErrNotExist when nothing by that name exists, and fs.ErrPermission
// when only non-executable files do.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		if err := checkExec(name); err != nil {
			return "", err
		}
		return name, nil
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = defaultPath
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := checkExec(p)
		if err == nil {
			return p, nil
		}
		if denied == nil && errors.Is(err, fs.ErrPermission) {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%s: %w", name, errNotFound)
}

func checkExec(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, errors.Unwrap(err))
	}
	if st.IsDir() {
		return fmt.Errorf("%s: is a directory: %w", p, fs.ErrPermission)
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("%s: %w", p, fs.ErrPermission)
	}
	return nil
}
