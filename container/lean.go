package container

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/monitorbin"
	"github.com/berth-project/berth/runtime"
)

// The environment that carries a monitor's state through the lean monitor
// program and back (see cmd/berth-monitor, which adds the first two).
const (
	envLeanExit     = "BERTH_MONITOR_EXIT"
	envLeanFinished = "BERTH_MONITOR_FINISHED"
	envLeanStarted  = "BERTH_MONITOR_STARTED"
	envLeanBackoff  = "BERTH_MONITOR_BACKOFF"
	// envLeanProcs marks a GOMAXPROCS that berth set for the program, not
	// the user: the Go runtime gives each P its own caches, some 60 KiB
	// apiece, and the program's one loop needs one.
	envLeanProcs = "BERTH_MONITOR_GOMAXPROCS"
)

// leanState is what the monitor needs again after the lean monitor.
type leanState struct {
	code     int
	finished time.Time
	started  time.Time // of the run that ended, for the restart back-off
	backoff  time.Duration
}

// LeanReturned tells whether this monitor process came back from the lean
// monitor program.
func LeanReturned() bool {
	_, ok := os.LookupEnv(envLeanExit)
	return ok
}

// leanReturn reads, and removes from the environment, the state the lean
// monitor hands back; ok is false in a monitor that was not handed one.
func leanReturn() (leanState, bool) {
	var st leanState
	code, ok := os.LookupEnv(envLeanExit)
	if !ok {
		return st, false
	}
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(os.Getenv(k), 10, 64)
		return n
	}
	c, err := strconv.Atoi(code)
	if err != nil {
		c = unknownExit
	}
	st.code = c
	st.finished = time.Unix(0, num(envLeanFinished)).UTC()
	st.started = time.Unix(0, num(envLeanStarted))
	st.backoff = time.Duration(num(envLeanBackoff))
	if st.backoff <= 0 {
		st.backoff = 100 * time.Millisecond
	}
	if os.Getenv(envLeanProcs) != "" {
		_ = os.Unsetenv("GOMAXPROCS")
	}
	for _, k := range []string{envLeanExit, envLeanFinished, envLeanStarted, envLeanBackoff, envLeanProcs} {
		_ = os.Unsetenv(k)
	}
	return st, true
}

// execLean replaces this monitor by the lean monitor program, which keeps
// the pid, the container as its child, and the descriptors named here. It
// returns only when that could not be done; the caller then stays the
// monitor.
func (s *Store) execLean(r *Record, proc *runtime.Proc, l net.Listener, logw *LogWriter, outR, errR, stdinW *os.File, st leanState) error {
	prog, err := monitorbin.Install(filepath.Join(s.StateRoot, "monitor"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lean monitor: %w", err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		return fmt.Errorf("lean monitor: attach socket is a %T", l)
	}
	lf, err := ul.File()
	if err != nil {
		return fmt.Errorf("lean monitor: attach socket: %w", err)
	}
	defer lf.Close()
	// The program's complaints go where this monitor's do.
	mlog, err := os.OpenFile(filepath.Join(s.Dir(r.ID), "monitor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("lean monitor: %w", err)
	}
	defer mlog.Close()
	var kept []int
	pass := func(f *os.File) (string, error) {
		if f == nil {
			return "-1", nil
		}
		fd := int(f.Fd())
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return "", err
		}
		kept = append(kept, fd)
		return strconv.Itoa(fd), nil
	}
	// Whatever fails after a descriptor was made inheritable makes it
	// close-on-exec again: this process stays the monitor and execs
	// nothing else, but hooks of a later start would inherit it.
	defer func() {
		for _, fd := range kept {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}()
	args := []string{MonitorName, MonitorArg, "lean", r.ID, "pid=" + strconv.Itoa(proc.Pid), "berth=" + self}
	for _, p := range []struct {
		key string
		f   *os.File
	}{{"log", logw.f}, {"out", outR}, {"err", errR}, {"in", stdinW}, {"console", proc.Console}, {"listen", lf}} {
		v, err := pass(p.f)
		if err != nil {
			return fmt.Errorf("lean monitor: %s: %w", p.key, err)
		}
		args = append(args, p.key+"="+v)
	}
	args = append(append(args, "--"), os.Args...)
	env := make([]string, 0, len(os.Environ())+2)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BERTH_MONITOR_") {
			env = append(env, e)
		}
	}
	env = append(env,
		envLeanStarted+"="+strconv.FormatInt(st.started.UnixNano(), 10),
		envLeanBackoff+"="+strconv.FormatInt(int64(st.backoff), 10))
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		env = append(env, "GOMAXPROCS=1", envLeanProcs+"=1")
	}
	if err := unix.Dup3(int(mlog.Fd()), 2, 0); err != nil {
		return fmt.Errorf("lean monitor: stderr: %w", err)
	}
	err = unix.Exec(prog, args, env)
	return fmt.Errorf("lean monitor: exec %s: %w", prog, err)
}
