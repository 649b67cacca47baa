package container

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/sdnotify"
)

// MonitorArg is the hidden command that runs a container's monitor.
const MonitorArg = proto.MonitorCommand

// MonitorName is the monitor's argv[0]: it tells berth, before any flag
// parsing, to set up only what a monitor needs (see package main).
const MonitorName = "berth-monitor"

// SpawnMonitor starts the monitor of a detached container: berth again, in
// a session of its own, which becomes the container's parent. It returns
// once the container runs (or failed to). With waitAttach the monitor holds
// the start until a client attaches (run -it, start -a), so no output is
// missed; connect then calls back with the monitor's socket ready.
func (s *Store) SpawnMonitor(id string, globalArgs []string, waitAttach bool, connect func() error) error {
	m, err := s.PrestartMonitor(id, globalArgs, waitAttach)
	if err != nil {
		return err
	}
	return m.Go(connect)
}

// Monitor is a monitor process started ahead of its container's record,
// so its start-up overlaps the caller's work (run -d); Go lets it start
// the container, Abort sends it away.
type Monitor struct {
	s          *Store
	id         string
	cmd        *exec.Cmd
	ready, go_ *os.File
	waitAttach bool
	pid        int
}

// PrestartMonitor starts the monitor of container id, which waits for Go.
func (s *Store) PrestartMonitor(id string, globalArgs []string, waitAttach bool) (*Monitor, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer readyW.Close()
	goR, goW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer goR.Close()
	args := append([]string{MonitorName}, globalArgs...)
	args = append(args, MonitorArg)
	if waitAttach {
		args = append(args, "--wait-attach")
	}
	args = append(args, id)
	cmd := &exec.Cmd{Path: self, Args: args, Stdin: null, Stdout: null, Stderr: null,
		ExtraFiles: []*os.File{readyW, goR}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		readyR.Close()
		goW.Close()
		return nil, fmt.Errorf("start monitor: %w", err)
	}
	return &Monitor{s: s, id: id, cmd: cmd, ready: readyR, go_: goW, waitAttach: waitAttach, pid: cmd.Process.Pid}, nil
}

// Pid is the monitor's process id.
func (m *Monitor) Pid() int { return m.pid }

// Abort ends a monitor that was not told to go: it exits without a trace.
func (m *Monitor) Abort() {
	m.go_.Close()
	m.ready.Close()
	_ = m.cmd.Wait()
}

// Go lets the monitor start the container (whose record must exist now)
// and waits until it runs or failed to.
func (m *Monitor) Go(connect func() error) error {
	defer m.ready.Close()
	// The monitor is nobody's child to wait for: it outlives this process.
	defer m.cmd.Process.Release()
	_, err := m.go_.Write([]byte("go\n"))
	m.go_.Close()
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if m.waitAttach && connect != nil {
		if err := connect(); err != nil {
			_ = m.cmd.Process.Kill()
			return err
		}
	}
	msg, _ := io.ReadAll(m.ready)
	// Warnings of the start come first, one "warn TEXT" line each; they
	// are this command's to show, where the user sees them.
	var line string
	for _, l := range strings.Split(strings.TrimSpace(string(msg)), "\n") {
		if w, ok := strings.CutPrefix(l, "warn "); ok {
			logrus.Warn(w)
			continue
		}
		line = l
	}
	switch {
	case line == "ok":
		return nil
	case strings.HasPrefix(line, "error "):
		rest := strings.TrimPrefix(line, "error ")
		code, text, _ := strings.Cut(rest, " ")
		n, _ := strconv.Atoi(code)
		if n == 0 {
			n = 125
		}
		return &StartError{Code: n, Err: errors.New(text)}
	default:
		return &StartError{Code: 125, Err: fmt.Errorf("the monitor of container %.12s exited before starting it (see %s)", m.id, m.s.monitorLogPath(m.id))}
	}
}

// WaitSocket waits until the monitor of id listens and connects.
func (s *Store) WaitSocket(id string, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		c, err := s.AttachConn(id)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Monitor runs in the monitor process: it starts the container with pipes
// (or a pty) for its output, writes the json-file log, serves attach
// clients, records the exit, applies the restart policy and --rm, and
// exits when the container is gone for good. ready gets "ok" or
// "error CODE MESSAGE" once, after the first start.
//
// Once the container runs (with run -it and start -a, once the client the
// start waited for is there), the process execve()s into the lean monitor
// program (see cmd/berth-monitor), which does the copying, serving and
// waiting (package monitorcore) in a fraction of the memory and execve()s
// back into berth when the container ends: Monitor then starts with the
// exit in its environment and goes on from there. Where that program
// cannot run, this process runs the same loop itself.
func (s *Store) Monitor(id string, ready, goPipe *os.File, waitAttach bool) int {
	signal.Ignore(unix.SIGHUP, unix.SIGINT, unix.SIGPIPE, unix.SIGTERM, unix.SIGQUIT)
	back, resumed := leanReturn()
	if resumed {
		// Held until the teardown that finished runs below.
		s.adoptHeld(id, back.held)
	}
	if !resumed {
		// The record's decode and saves come right after the go: their
		// JSON caches are built while it is awaited.
		WarmCodec()
		// Wait for the record: started ahead of it, the monitor goes on
		// only when told to; a closed pipe means the caller gave up.
		buf := make([]byte, 3)
		if n, _ := io.ReadFull(goPipe, buf); n != 3 || string(buf) != "go\n" {
			return 0
		}
		goPipe.Close()
	}
	if f, err := s.openMonitorLog(id); err == nil {
		logrus.SetOutput(f)
		defer f.Close()
	}
	relay := &warnRelay{w: ready}
	if ready != nil {
		logrus.AddHook(relay)
	}
	report := func(format string, a ...any) {
		relay.mu.Lock()
		defer relay.mu.Unlock()
		if ready != nil {
			fmt.Fprintf(ready, format, a...)
			ready.Close()
			ready = nil
			relay.w = nil
		}
	}
	defer report("error 125 monitor ended unexpectedly\n")

	r, err := s.Load(id)
	if err != nil {
		report("error 125 %s\n", oneLine(err.Error()))
		return 1
	}
	sockPath := filepath.Join(s.attachDir(), id)
	defer os.Remove(sockPath)
	if r.HostConfig.Sdnotify == "container" {
		// Each run makes it anew; the last one's goes with the monitor.
		defer os.Remove(notifyRelayPath(id))
	}
	m := &monitorRun{s: s}
	defer m.close()
	if waitAttach && !resumed {
		if err := m.listen(id); err != nil {
			report("error 125 %s\n", oneLine(err.Error()))
			return 1
		}
		if err := m.acceptFirst(30 * time.Second); err != nil {
			report("error 125 nobody attached\n")
			return 1
		}
	}

	var bo Backoff
	var started time.Time
	for {
		var code int
		var finishedAt time.Time
		if resumed {
			code, finishedAt, started = back.code, back.finished, back.started
			bo = ResumeBackoff(back.backoff)
			resumed = false
		} else {
			started = time.Now()
			if err = m.listen(id); err == nil {
				err = m.openLog(s.LogPath(id), r.HostConfig.LogConfig)
			}
			if err == nil {
				code, finishedAt, err = m.runOnce(r, leanState{started: started, backoff: bo.Current()}, func() { report("ok\n") })
			}
		}
		if err != nil {
			var se *StartError
			c := 125
			if errors.As(err, &se) {
				c = se.Code
			}
			report("error %d %s\n", c, oneLine(err.Error()))
			logrus.Errorf("start %.12s: %v", id, err)
			if cur, lerr := s.Load(id); lerr == nil && cur.HostConfig.AutoRemove {
				_ = s.destroy(cur, true)
			}
			return 1
		}
		restart, err := s.finished(id, code, false, finishedAt)
		if err != nil {
			logrus.Errorf("record exit of %.12s: %v", id, err)
			return 1
		}
		if !restart {
			if cur, err := s.Load(id); err == nil && cur.HostConfig.AutoRemove && cur.State.Status != StatusRemoving {
				if err := s.destroy(cur, true); err != nil {
					logrus.Errorf("remove %.12s: %v", id, err)
				}
			}
			return 0
		}
		time.Sleep(bo.Next(time.Since(started)))
		cur, err := s.Load(id)
		if err != nil || cur.ManuallyStopped || cur.State.Status != StatusRestarting {
			if err == nil && cur.State.Status == StatusRestarting {
				_, _ = s.Update(id, func(x *Record) error {
					x.State.Restarting = false
					x.State.Status = StatusExited
					return nil
				})
			}
			return 0
		}
		r = cur
	}
}

// warnRelay copies the warnings logged until the first start is reported
// (a network's loopback resolvers dropped, say) to the ready pipe: the
// command that started the monitor shows them to its user, who would
// never look in monitor.log. They still go to monitor.log too.
type warnRelay struct {
	mu sync.Mutex
	w  *os.File // nil once the start is reported
}

func (h *warnRelay) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel} }

func (h *warnRelay) Fire(e *logrus.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w != nil {
		fmt.Fprintf(h.w, "warn %s\n", oneLine(e.Message))
	}
	return nil
}

// monitorRun is what the monitor keeps across the runs of its container:
// the attach socket, the client a start waited for, and the log.
type monitorRun struct {
	s *Store
	l *net.UnixListener
	// client was accepted before the start (run -it, start -a); the loop
	// serves it from the start on.
	client *net.UnixConn
	log    *os.File
}

// listen opens the attach socket, unless it is open.
func (m *monitorRun) listen(id string) error {
	if m.l != nil {
		return nil
	}
	return m.s.withAttachDir(func(dir string) error {
		p := filepath.Join(dir, id)
		_ = os.Remove(p)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			return fmt.Errorf("monitor: listen: %w", err)
		}
		m.l = l
		return nil
	})
}

// acceptFirst waits for the client the start waits for.
func (m *monitorRun) acceptFirst(timeout time.Duration) error {
	if err := m.l.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	c, err := m.l.AcceptUnix()
	_ = m.l.SetDeadline(time.Time{})
	if err != nil {
		return err
	}
	m.client = c
	return nil
}

// openLog opens the json-file log for a run, anew each time: the last run
// may have rotated the file it had open away. Other drivers have no file.
func (m *monitorRun) openLog(path string, lc LogConfig) error {
	if m.log != nil {
		m.log.Close()
		m.log = nil
	}
	if lc.Type != "" && lc.Type != LogJSONFile {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	m.log = f
	return nil
}

func (m *monitorRun) close() {
	if m.l != nil {
		m.l.Close()
	}
	if m.client != nil {
		m.client.Close()
	}
	if m.log != nil {
		m.log.Close()
	}
}

// runOnce starts the container once and serves it until it exits, with
// the loop of package monitorcore: in the lean monitor program, into
// which this process execs, or here when that program cannot run. It
// returns the exit status and when the container ended.
func (m *monitorRun) runOnce(r *Record, ls leanState, started func()) (int, time.Time, error) {
	s := m.s
	tty := r.Config.Tty
	self, err := os.Executable()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("monitor: %w", err)
	}
	logging, err := s.logging(r, self)
	if err != nil {
		return 0, time.Time{}, err
	}
	var io runtime.IO
	// closeLater are this process's files of the run; theirs are the
	// container's ends, closed once it started.
	var closeLater, theirs []*os.File
	defer func() {
		for _, f := range append(closeLater, theirs...) {
			f.Close()
		}
	}()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, time.Time{}, err
	}
	theirs = append(theirs, null)
	io.Stdin, io.Stdout, io.Stderr = null, null, null
	var outR, errR *os.File
	var stdinW *os.File
	if !tty {
		var outW, errW *os.File
		if outR, outW, err = os.Pipe(); err != nil {
			return 0, time.Time{}, err
		}
		if errR, errW, err = os.Pipe(); err != nil {
			outR.Close()
			outW.Close()
			return 0, time.Time{}, err
		}
		io.Stdout, io.Stderr = outW, errW
		closeLater = append(closeLater, outR, errR)
		theirs = append(theirs, outW, errW)
		if r.Config.OpenStdin {
			var inR *os.File
			if inR, stdinW, err = os.Pipe(); err != nil {
				return 0, time.Time{}, err
			}
			io.Stdin = inR
			closeLater = append(closeLater, stdinW)
			theirs = append(theirs, inR)
		}
	}
	// Starting a container recurses deeply (JSON, seccomp). On a goroutine
	// of its own, which ends, that grown stack is freed rather than kept
	// by the monitor for the container's lifetime.
	type startResult struct {
		proc *runtime.Proc
		err  error
	}
	so := StartOpts{IO: io, Foreground: tty}
	// --sdnotify=container: a relay socket for this run, which the lean
	// monitor serves (systemd accepts the monitor as the unit's main
	// process; berth run -d said MAINPID= of it).
	var notify, notifyTo *net.UnixConn
	if sdnotify.Wanted(r.HostConfig.Sdnotify) {
		so.NotifySocket = notifyRelayPath(r.ID)
		if notify, err = sdnotify.ListenRelay(so.NotifySocket); err != nil {
			return 0, time.Time{}, err
		}
		defer notify.Close()
		if notifyTo, err = sdnotify.Dial(); err != nil {
			return 0, time.Time{}, err
		}
		defer notifyTo.Close()
	} else if healthyReady(r) {
		// --sdnotify=healthy: the loop sends READY=1 once a check passed.
		if notifyTo, err = sdnotify.Dial(); err != nil {
			return 0, time.Time{}, err
		}
		defer notifyTo.Close()
	}
	startc := make(chan startResult, 1)
	go func() {
		p, err := s.Start(r.ID, so)
		startc <- startResult{p, err}
	}()
	res := <-startc
	proc, err := res.proc, res.err
	if err != nil {
		return 0, time.Time{}, err
	}
	for _, f := range theirs {
		f.Close()
	}
	theirs = nil
	if proc.Console != nil {
		closeLater = append(closeLater, proc.Console)
	}
	started()
	err = s.execLean(r, proc, m.l, m.log, logging, outR, errR, stdinW, m.client, connOf(notify), connOf(notifyTo), ls) // returns only if it could not
	if errors.Is(err, helperbin.ErrNotBuilt) {
		logrus.Debugf("%v", err)
	} else {
		logrus.Warnf("%v; berth stays the monitor of %.12s", err, r.ID)
	}
	cfg := monitorcore.Config{Pid: proc.Pid, Out: -1, Err: -1, In: -1, Console: -1, Listen: -1, Logging: logging,
		Complain: func(err error) { logrus.Warnf("monitor of %.12s: %v", r.ID, err) }}
	// The loop owns what it is given: copies, so that these files, and
	// the socket, can be closed here as usual.
	var dupErr error
	dup := func(c syscall.Conn) int {
		fd, err := connFd(c)
		if err != nil && dupErr == nil {
			dupErr = err
		}
		if fd < 0 || dupErr != nil {
			return -1
		}
		n, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			dupErr = err
			return -1
		}
		return n
	}
	cfg.Log = dup(fileConn(m.log))
	cfg.Out, cfg.Err, cfg.In = dup(fileConn(outR)), dup(fileConn(errR)), dup(fileConn(stdinW))
	cfg.Console = dup(fileConn(proc.Console))
	cfg.Listen = dup(m.l)
	cfg.Notify, cfg.NotifyTo = dup(connOf(notify)), dup(connOf(notifyTo))
	cfg.Health = monitorHealth(r)
	cfg.Health.Ready = notify == nil && notifyTo != nil
	if m.client != nil {
		cfg.Clients = []int{dup(m.client)}
		m.client.Close()
		m.client = nil
	}
	// The loop serves the socket from now on; the next run opens it anew.
	m.l.SetUnlinkOnClose(false)
	m.l.Close()
	m.l = nil
	if dupErr != nil {
		logrus.Warnf("monitor of %.12s: %v", r.ID, dupErr)
	}
	// This process stays the monitor for the container's lifetime: keep
	// its heap small from now on. Set before the start, the low target
	// had the collector run over and over during it.
	debug.SetGCPercent(20)
	trimMemory()
	code, finished, err := monitorcore.Run(cfg)
	if err != nil {
		logrus.Warnf("monitor of %.12s: %v", r.ID, err)
	}
	return code, time.Unix(0, finished).UTC(), nil
}

// healthyReady says whether the monitor of r tells systemd READY=1 once
// its healthcheck passed: --sdnotify=healthy under a systemd that listens.
func healthyReady(r *Record) bool {
	return r.HostConfig.Sdnotify == "healthy" && r.Config.Healthcheck.Enabled() && os.Getenv("NOTIFY_SOCKET") != ""
}

// notifyRelayPath is where the monitor of container id makes its notify
// relay's socket: under /run, for a socket's path must fit in 108 bytes,
// which one under the state root may not.
func notifyRelayPath(id string) string {
	return filepath.Join("/run/berth-notify", id)
}

// connOf is c as a syscall.Conn, and a nil c as a nil interface.
func connOf(c *net.UnixConn) syscall.Conn {
	if c == nil {
		return nil
	}
	return c
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
