package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/runtime"
)

// LeanMonitor is the lean monitor program (cmd/berth-monitor) started
// ahead of a detached container (run -d, start, restart) as its monitor
// from the start.
// The caller starts the container as the foreground path does, with the
// program forking the init, so the program is the container's parent;
// then the program runs the monitor loop with what the caller hands it.
// berth's own monitor runs only once the container has ended, when the
// program execs back into berth to record the exit.
type LeanMonitor struct {
	s    *Store
	id   string
	cmd  *exec.Cmd
	sock int // our end of the program's SOCK_SEQPACKET socket
	// buf holds the program's replies.
	buf [512]byte
}

// leanReplyTimeout bounds each wait for the program's reply: a program
// that hangs must not hang the start.
const leanReplyTimeout = 30 * time.Second

// leanMaxMessage bounds a message to the program: what one word of a
// command line may be, and well within a socket's send buffer.
const leanMaxMessage = 128 * 1024

// PrestartLean starts the lean monitor of container id, which waits for
// the fork of the container's init; nil where it cannot (berth built
// without the program, or a failure, which it logs): berth's own monitor
// is to start the container.
func (s *Store) PrestartLean(id string) *LeanMonitor {
	lm, err := s.prestartLean(id)
	if err != nil {
		if !errors.Is(err, helperbin.ErrNotBuilt) {
			logrus.Warnf("%v; berth monitors the container", err)
		}
		return nil
	}
	return lm
}

func (s *Store) prestartLean(id string) (*LeanMonitor, error) {
	prog, err := s.helpers.Install(helperbin.Monitor)
	if err != nil {
		return nil, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lean monitor: socketpair: %w", err)
	}
	theirs := os.NewFile(uintptr(pair[1]), "monitor-socket")
	defer theirs.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		unix.Close(pair[0])
		return nil, fmt.Errorf("lean monitor: %w", err)
	}
	defer null.Close()
	cmd := &exec.Cmd{Path: prog, Args: []string{MonitorName, MonitorArg, proto.ServeCommand, id}, Env: leanEnv(),
		Stdin: null, Stdout: null, Stderr: null, ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		unix.Close(pair[0])
		return nil, fmt.Errorf("start lean monitor: %w", err)
	}
	return &LeanMonitor{s: s, id: id, cmd: cmd, sock: pair[0]}, nil
}

// LeanFor starts the lean monitor for container r (whose record exists)
// when r fits it (LeanFits) and berth carries the program; nil: berth's
// own monitor is to start r.
func (s *Store) LeanFor(r *Record) *LeanMonitor {
	if !s.LeanFits(r) {
		return nil
	}
	return s.PrestartLean(r.ID)
}

// Pid is the program's process id: the container's monitor.
func (lm *LeanMonitor) Pid() int { return lm.cmd.Process.Pid }

// Abort ends a program that was not handed the container: it kills the
// init it forked, if any, and exits.
func (lm *LeanMonitor) Abort() {
	if lm.sock >= 0 {
		unix.Close(lm.sock)
		lm.sock = -1
	}
	done := make(chan struct{})
	go func() {
		_ = lm.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(leanReplyTimeout):
		// A program that hangs is not waited for forever.
		_ = lm.cmd.Process.Kill()
		<-done
	}
}

// LeanFits says whether r may start under the program: its init joins no
// namespace before its fork and makes no user or time namespace (those
// are forked by berth itself), and no notify relay is asked for (berth's
// monitor sets that up).
func (s *Store) LeanFits(r *Record) bool {
	switch r.HostConfig.Sdnotify {
	case "container", "healthy":
		return false
	}
	if s.launchSpec(r) == nil {
		return false
	}
	return !slices.ContainsFunc(r.Spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
		return ns.Type == specs.TimeNamespace || ns.Type == specs.UserNamespace ||
			ns.Path != "" && ns.Type != specs.NetworkNamespace
	})
}

// Run starts container r (whose record exists) under the program and
// hands it the container; globalArgs are berth's global flags for the
// monitor command the program runs when the container ends. It returns
// once the container runs, or a *StartError.
func (lm *LeanMonitor) Run(r *Record, globalArgs []string) error {
	s := lm.s
	handed := false
	defer func() {
		if !handed {
			lm.Abort()
			return
		}
		// The program outlives this process: nobody's child to wait for.
		unix.Close(lm.sock)
		_ = lm.cmd.Process.Release()
	}()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	logging, err := s.logging(r, self)
	if err != nil {
		return err
	}
	mr := &monitorRun{s: s}
	defer mr.close()
	started := time.Now()
	if err := mr.listen(r.ID); err != nil {
		return err
	}
	if err := mr.openLog(s.LogPath(r.ID), r.HostConfig.LogConfig); err != nil {
		return err
	}
	mlog, err := s.openMonitorLog(r.ID)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	defer mlog.Close()
	io, ours, theirs, err := monitorIO(r)
	defer func() {
		for _, f := range append(ours, theirs...) {
			f.Close()
		}
	}()
	if err != nil {
		return err
	}
	proc, err := s.Start(r.ID, StartOpts{IO: io, Foreground: r.Config.Tty, Fork: lm.fork, MonitorPid: lm.Pid()})
	if err != nil {
		return err
	}
	for _, f := range theirs {
		f.Close()
	}
	theirs = nil
	if proc.Console != nil {
		ours = append(ours, proc.Console)
	}
	var bo Backoff
	st := leanState{started: started, backoff: bo.Current()}
	if err := lm.handOver(r, proc, mr, mlog, ours, st, self, globalArgs, logging); err != nil {
		// Nobody would watch the container: it ends now, and its
		// owner, gone, leaves the exit to be found lost.
		_ = unix.Kill(proc.Pid, unix.SIGKILL)
		return &StartError{Code: 125, Err: err}
	}
	handed = true
	// The program serves the socket from now on.
	mr.l.SetUnlinkOnClose(false)
	return nil
}

// monitorIO is a monitored run's stdio: the container's ends (theirs) and
// this side's (ours: stdout's and stderr's read ends and stdin's write
// end), pipes unless the container has a terminal.
func monitorIO(r *Record) (io runtime.IO, ours, theirs []*os.File, err error) {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return io, nil, nil, err
	}
	theirs = append(theirs, null)
	io.Stdin, io.Stdout, io.Stderr = null, null, null
	if r.Config.Tty {
		return io, nil, theirs, nil
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return io, ours, theirs, err
	}
	ours, theirs = append(ours, outR), append(theirs, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		return io, ours, theirs, err
	}
	ours, theirs = append(ours, errR), append(theirs, errW)
	io.Stdout, io.Stderr = outW, errW
	if r.Config.OpenStdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return io, ours, theirs, err
		}
		ours, theirs = append(ours, inW), append(theirs, inR)
		io.Stdin = inR
	}
	return io, ours, theirs, nil
}

// fork has the program fork the init (runtime.CreateOpts.Fork).
func (lm *LeanMonitor) fork(req *runtime.ForkRequest) (int, error) {
	var fds []int
	for _, f := range req.Files {
		fds = append(fds, int(f.Fd()))
	}
	cg := -1
	if req.CgroupDir != nil {
		cg = len(fds)
		fds = append(fds, int(req.CgroupDir.Fd()))
	}
	words := []string{proto.ServeFork, req.Path, strconv.FormatUint(uint64(req.Cloneflags), 10), strconv.Itoa(cg), strconv.Itoa(len(req.Env))}
	words = append(append(words, req.Env...), req.Args...)
	kind, text, err := lm.ask(words, fds)
	if err != nil {
		return 0, err
	}
	if kind != proto.ServePid {
		return 0, fmt.Errorf("lean monitor: fork: %s", text)
	}
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("lean monitor: fork: bad pid %q", text)
	}
	return pid, nil
}

// handOver sends the program what its loop serves: the words of its
// lean command line (see cmd/berth-monitor), with descriptors as @N.
func (lm *LeanMonitor) handOver(r *Record, proc *runtime.Proc, mr *monitorRun, mlog *os.File, ours []*os.File, st leanState, self string, globalArgs []string, lg monitorcore.Logging) error {
	var fds []int
	var ctlErr error
	ref := func(c syscall.Conn) string {
		// The descriptor stays open while c is: until the reply.
		fd, err := connFd(c)
		if err != nil && ctlErr == nil {
			ctlErr = err
		}
		if fd < 0 || ctlErr != nil {
			return "-1"
		}
		fds = append(fds, fd)
		return "@" + strconv.Itoa(len(fds)-1)
	}
	var outR, errR, inW *os.File
	if !r.Config.Tty {
		outR, errR = ours[0], ours[1]
		if r.Config.OpenStdin {
			inW = ours[2]
		}
	}
	words := []string{proto.ServeRun, "", MonitorName, MonitorArg, "lean", r.ID, "pid=" + strconv.Itoa(proc.Pid), "berth=" + self,
		"log=" + ref(fileConn(mr.log)), "out=" + ref(fileConn(outR)), "err=" + ref(fileConn(errR)), "in=" + ref(fileConn(inW)),
		"console=" + ref(fileConn(proc.Console)), "listen=" + ref(mr.l), "stderr=" + ref(mlog)}
	words = append(words, leanLogArgs(lg)...)
	words = append(words, HealthSchedule(r.Config.Healthcheck)...)
	words = append(append(words, "--", MonitorName), globalArgs...)
	words = append(words, MonitorArg, r.ID)
	var held []string
	for _, f := range lm.s.heldNet(r.ID) {
		held = append(held, ref(f))
	}
	if ctlErr != nil {
		return fmt.Errorf("lean monitor: %w", ctlErr)
	}
	env := leanStateEnv(st, held)
	words[1] = strconv.Itoa(len(env))
	words = slices.Insert(words, 2, env...)
	kind, text, err := lm.ask(words, fds)
	if err != nil {
		return err
	}
	if kind != proto.ServeOK {
		return fmt.Errorf("lean monitor: %s", text)
	}
	return nil
}

// ask sends the program one message and returns its reply.
func (lm *LeanMonitor) ask(words []string, fds []int) (kind, text string, err error) {
	msg := strings.Join(words, "\x00")
	if len(msg) > leanMaxMessage {
		return "", "", fmt.Errorf("lean monitor: message of %d bytes is too long", len(msg))
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(lm.sock, []byte(msg), oob, nil, 0); err != nil {
		return "", "", fmt.Errorf("lean monitor: send: %w", err)
	}
	pfd := []unix.PollFd{{Fd: int32(lm.sock), Events: unix.POLLIN}}
	deadline := time.Now().Add(leanReplyTimeout)
	for {
		n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("lean monitor: %w", err)
		}
		if n == 0 {
			return "", "", errors.New("lean monitor: no reply")
		}
		break
	}
	n, err := unix.Read(lm.sock, lm.buf[:])
	if err != nil {
		return "", "", fmt.Errorf("lean monitor: %w", err)
	}
	if n == 0 {
		return "", "", fmt.Errorf("lean monitor ended (see %s)", lm.s.monitorLogPath(lm.id))
	}
	kind, text, _ = strings.Cut(string(lm.buf[:n]), "\x00")
	return kind, text, nil
}
