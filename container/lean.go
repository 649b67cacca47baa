package container

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	goruntime "runtime"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/runtime"
)

// The environment that carries a monitor's state through the lean monitor
// program and back: the program adds the exit (monitorproto) to these.
const (
	envLeanExit     = proto.EnvExit
	envLeanFinished = proto.EnvFinished
	envLeanStarted  = "BERTH_MONITOR_STARTED"
	envLeanBackoff  = "BERTH_MONITOR_BACKOFF"
	// envLeanProcs marks a GOMAXPROCS that berth set for the program, not
	// the user: the Go runtime gives each P its own caches, some 60 KiB
	// apiece, and the program's one loop needs one.
	envLeanProcs = "BERTH_MONITOR_GOMAXPROCS"
	// envLeanHeld lists the descriptors of the sockets holding the
	// container's published ports: the lean program keeps them open (it
	// is not told about them) and berth takes them back.
	envLeanHeld = "BERTH_MONITOR_HELD"
)

// leanState is what the monitor needs again after the lean monitor.
type leanState struct {
	code     int
	finished time.Time
	started  time.Time // of the run that ended, for the restart back-off
	backoff  time.Duration
	held     []int // descriptors of held ports (envLeanHeld)
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
	if ns := num(envLeanFinished); ns > 0 {
		st.finished = time.Unix(0, ns).UTC()
	}
	st.started = time.Unix(0, num(envLeanStarted))
	st.backoff = time.Duration(num(envLeanBackoff))
	if st.backoff <= 0 {
		st.backoff = 100 * time.Millisecond
	}
	if os.Getenv(envLeanProcs) != "" {
		// Set for the program only: this process and its children get
		// the default back.
		_ = os.Unsetenv("GOMAXPROCS")
		goruntime.SetDefaultGOMAXPROCS()
	}
	for _, f := range strings.Split(os.Getenv(envLeanHeld), ",") {
		if fd, err := strconv.Atoi(f); err == nil && fd > 2 {
			st.held = append(st.held, fd)
		}
	}
	for _, k := range []string{envLeanExit, envLeanFinished, envLeanStarted, envLeanBackoff, envLeanProcs, envLeanHeld} {
		_ = os.Unsetenv(k)
	}
	return st, true
}

// execLean replaces this monitor by the lean monitor program, which keeps
// the pid, the container as its child, and the descriptors named here. It
// returns only when that could not be done; the caller then stays the
// monitor, with every descriptor as it was.
func (s *Store) execLean(r *Record, proc *runtime.Proc, l *net.UnixListener, log *os.File, lg monitorcore.Logging, outR, errR, stdinW *os.File, client *net.UnixConn, notify, notifyTo syscall.Conn, st leanState) error {
	prog, err := s.helpers.Install(helperbin.Monitor)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lean monitor: %w", err)
	}
	// The program's complaints go where this monitor's do.
	mlog, err := s.openMonitorLog(r.ID)
	if err != nil {
		return fmt.Errorf("lean monitor: %w", err)
	}
	defer mlog.Close()
	// Descriptors are reached through SyscallConn, not Fd or File: those
	// switch them to blocking mode, which would hang this process's own
	// use of them if the exec fails.
	var kept []int
	// Whatever fails after a descriptor was made inheritable makes it
	// close-on-exec again: hooks of a later start would inherit it.
	defer func() {
		for _, fd := range kept {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}()
	pass := func(c syscall.Conn) (string, error) {
		n, err := connFd(c)
		if err != nil || n < 0 {
			return "-1", err
		}
		if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, 0); err != nil {
			return "", err
		}
		kept = append(kept, n)
		return strconv.Itoa(n), nil
	}
	args := []string{MonitorName, MonitorArg, "lean", r.ID, "pid=" + strconv.Itoa(proc.Pid), "berth=" + self}
	for _, p := range []struct {
		key string
		c   syscall.Conn
	}{{"log", fileConn(log)}, {"out", fileConn(outR)}, {"err", fileConn(errR)}, {"in", fileConn(stdinW)}, {"console", fileConn(proc.Console)}, {"listen", l}} {
		v, err := pass(p.c)
		if err != nil {
			return fmt.Errorf("lean monitor: %s: %w", p.key, err)
		}
		args = append(args, p.key+"="+v)
	}
	if client != nil {
		v, err := pass(client)
		if err != nil {
			return fmt.Errorf("lean monitor: client: %w", err)
		}
		args = append(args, "client="+v)
	}
	if notifyTo != nil {
		for _, p := range []struct {
			key string
			c   syscall.Conn
		}{{"notify", notify}, {"notifyto", notifyTo}} {
			if p.c == nil {
				continue
			}
			v, err := pass(p.c)
			if err != nil {
				return fmt.Errorf("lean monitor: %s: %w", p.key, err)
			}
			args = append(args, p.key+"="+v)
		}
	}
	args = append(args, leanLogArgs(lg)...)
	var held []string
	for _, f := range s.heldNet(r.ID) {
		v, err := pass(f)
		if err != nil {
			return fmt.Errorf("lean monitor: held port: %w", err)
		}
		held = append(held, v)
	}
	args = append(args, HealthSchedule(r.Config.Healthcheck)...)
	if notifyTo != nil && notify == nil {
		args = append(args, "hready=1")
	}
	args = append(args, "--")
	args = append(args, os.Args...)
	env := append(leanEnv(), leanStateEnv(st, held)...)
	// Keep this process's stderr to put back if the exec fails.
	saved, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("lean monitor: stderr: %w", err)
	}
	defer unix.Close(saved)
	if err := unix.Dup3(int(mlog.Fd()), 2, 0); err != nil {
		return fmt.Errorf("lean monitor: stderr: %w", err)
	}
	err = unix.Exec(prog, args, env)
	_ = unix.Dup3(saved, 2, 0)
	return fmt.Errorf("lean monitor: exec %s: %w", prog, err)
}

// openMonitorLog opens the log where a container's monitor complains.
func (s *Store) openMonitorLog(id string) (*os.File, error) {
	return os.OpenFile(s.monitorLogPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o640)
}

func (s *Store) monitorLogPath(id string) string { return filepath.Join(s.Dir(id), "monitor.log") }

// connFd is c's descriptor, -1 for a nil c. It is reached through
// SyscallConn, not Fd or File, which would switch it to blocking mode,
// and stays valid while c is open.
func connFd(c syscall.Conn) (int, error) {
	if c == nil {
		return -1, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// leanEnv is the lean program's environment: this process's, without
// another monitor's state, and with one P unless the user set GOMAXPROCS.
func leanEnv() []string {
	env := make([]string, 0, len(os.Environ())+5)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BERTH_MONITOR_") {
			env = append(env, e)
		}
	}
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		env = append(env, "GOMAXPROCS=1", envLeanProcs+"=1")
	}
	return env
}

// leanStateEnv is what the lean program hands back to berth besides the
// exit: the run's start, the back-off, and the held ports' descriptors.
func leanStateEnv(st leanState, held []string) []string {
	env := []string{envLeanStarted + "=" + strconv.FormatInt(st.started.UnixNano(), 10),
		envLeanBackoff + "=" + strconv.FormatInt(int64(st.backoff), 10)}
	if len(held) > 0 {
		env = append(env, envLeanHeld+"="+strings.Join(held, ","))
	}
	return env
}

// PruneHelpers removes the helper programs that other builds of berth
// installed under this store's roots and that no process runs.
func (s *Store) PruneHelpers() ([]string, int64, error) { return s.helpers.Prune() }

// fileConn is f as a syscall.Conn, and a nil f as a nil interface.
func fileConn(f *os.File) syscall.Conn {
	if f == nil {
		return nil
	}
	return f
}

// leanLogArgs are the lean program's words for how it logs (see
// cmd/berth-monitor).
func leanLogArgs(lg monitorcore.Logging) []string {
	var args []string
	if lg.MaxSize > 0 {
		args = append(args, "logpath="+lg.Path, "maxsize="+strconv.FormatInt(lg.MaxSize, 10), "maxfile="+strconv.Itoa(lg.MaxFile))
		if lg.Compress {
			args = append(args, "compress=1")
		}
	}
	if lg.Attrs != "" {
		args = append(args, "attrs="+lg.Attrs)
	}
	for _, f := range lg.Journal {
		args = append(args, "journal="+f)
	}
	if len(lg.Journal) > 0 {
		args = append(args, "journalsock="+lg.JournalSocket)
	}
	return args
}
