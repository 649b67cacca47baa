// Package monitorcore is the one attach/copy/wait loop of a container's
// monitor: it copies the container's output to the json-file log and to
// attached clients, feeds their input to the container, and waits for
// it. The lean monitor program (cmd/berth-monitor) runs it, and so does
// berth's own monitor when that program cannot run (a berth built
// without it), so that both serve clients alike.
//
// It uses only package syscall and berth's smallest packages, and one
// thread of work (an epoll loop that also learns of the exit, through a
// pidfd), which is what keeps the lean program lean.
package monitorcore

import (
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/internal/leanproc"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/internal/notifymsg"
	"github.com/berth-project/berth/jsonlog"
)

const (
	// clientBacklog is how much output a client may fall behind before
	// it is dropped: a slow client must not stall the container or grow
	// the monitor.
	clientBacklog = 1 << 20
	// stdinBacklog is how much input may wait for the container to read
	// it; beyond it clients are not read (their writes block instead).
	stdinBacklog = 64 << 10
	// drainWait bounds the wait, in nanoseconds, for the output after
	// the container's exit: a stray process that escaped the pid
	// namespace may hold the pipes open forever.
	drainWait = 2_000_000_000
)

type stream struct {
	fd    int
	kind  byte
	split jsonlog.Splitter
}

type client struct {
	fd  int
	in  []byte
	out []byte
}

type watch struct {
	on bool
	ev uint32
}

type monitor struct {
	complain func(error)
	ep       int
	pid      int
	log      int
	streams  []*stream
	console  int // pty master, -1 without -t
	stdin    int // where input goes: a pipe, the console or -1
	pending  []byte
	// closeStdin: close the stdin pipe once pending is written.
	closeStdin bool
	listen     int
	// notify is the container's notify socket, notifyTo the connection
	// to systemd's its messages go on to (-1 without a relay).
	notify, notifyTo int
	clients          map[int]*client
	// exitR becomes readable when the container has exited: a pidfd of
	// it, or the pipe that reap writes its status to.
	exitR int
	// byPidfd: exitR is a pidfd and the status is still to be collected.
	byPidfd bool
	// watched is, by descriptor, what each is registered with epoll
	// for; nwatched counts those that are.
	watched  []watch
	nwatched int
	// started: the loop took the stdio in (streams, stdin).
	started bool
	// hc runs the healthchecks (health.go); nil without them.
	hc     *checker
	health Health
	buf    []byte
	entry  []byte
	// lg and journalFailed are the log's (logsink.go).
	lg            logState
	journalFailed bool
}

// Config is what Run works with: descriptors of the calling process, all
// of which Run owns and closes before it returns. A descriptor of -1 is
// absent.
type Config struct {
	// Pid is the container's process, a child of the caller.
	Pid int
	// Log is the json-file log, opened for appending; -1 for none.
	Log int
	// Logging says how the output is logged (logsink.go).
	Logging Logging
	// Out, Err and In are the pipes of the container's stdio, without a
	// terminal.
	Out, Err, In int
	// Console is the pty master of a container with a terminal.
	Console int
	// Listen is the attach socket; Clients are connections accepted from
	// it before Run (a client that the start waited for).
	Listen  int
	Clients []int
	// Notify is the socket the container's NOTIFY_SOCKET is bound to
	// (--sdnotify=container), NotifyTo a datagram socket connected to
	// systemd's: Run relays each message, with MAINPID= set to this
	// process, which systemd accepts as the unit's main process. Both are
	// set or there is no relay; as any descriptor above stdio's they
	// must be above 2 (so that a Config's zero value has none). With
	// Health.Ready, NotifyTo may come alone.
	Notify, NotifyTo int
	// Buf is the buffer output is read into; Run makes one if nil.
	Buf []byte
	// Complain reports what goes wrong along the way; nil writes to
	// stderr.
	Complain func(error)
	// Health has the container's healthcheck run on schedule.
	Health Health
}

// Run copies and serves until the container has exited and its output
// ended (or a short while after its exit, if a stray process holds the
// output open), tells the clients the exit status, and returns it in the
// shell's convention with when the container ended (Unix nanoseconds).
// An error says what went wrong after which Run only waited.
func Run(c Config) (int, int64, error) {
	m := &monitor{pid: c.Pid, log: c.Log, console: c.Console, listen: c.Listen, clients: map[int]*client{},
		watched: make([]watch, 0, 16), buf: c.Buf, complain: c.Complain, ep: -1, exitR: -1, stdin: -1,
		notify: -1, notifyTo: -1, health: c.Health}
	if c.Notify > 2 && c.NotifyTo > 2 {
		m.notify, m.notifyTo = c.Notify, c.NotifyTo
	} else if c.NotifyTo > 2 && c.Notify < 0 && c.Health.Ready {
		// No relay: the healthcheck's READY=1 only.
		m.notifyTo = c.NotifyTo
	} else {
		// Half a relay relays nothing: still Run's to close.
		for _, fd := range []int{c.Notify, c.NotifyTo} {
			if fd > 2 {
				syscall.Close(fd)
			}
		}
	}
	if m.buf == nil {
		m.buf = make([]byte, 32*1024)
	}
	if m.complain == nil {
		m.complain = func(err error) {
			_, _ = syscall.Write(2, []byte("berth monitor: "+err.Error()+"\n"))
		}
	}
	for _, fd := range c.Clients {
		m.clients[fd] = &client{fd: fd}
		_ = syscall.SetNonblock(fd, true)
	}
	m.openLogging(c)
	code, finished, err := m.loop(c.Out, c.Err, c.In)
	m.closeLogging()
	m.closeAll(c.Out, c.Err, c.In)
	return code, finished, err
}

// closeAll closes every descriptor Run was given that is still open.
func (m *monitor) closeAll(out, errFd, in int) {
	m.stopHealth()
	open := map[int]bool{}
	for _, fd := range []int{m.log, m.listen, m.console, m.stdin, m.exitR, m.ep, m.notify, m.notifyTo} {
		open[fd] = true
	}
	for _, s := range m.streams {
		open[s.fd] = true
	}
	for fd := range m.clients {
		open[fd] = true
	}
	// Without the loop (it could not start), the stdio was never taken in.
	if !m.started {
		open[out], open[errFd], open[in] = true, true, true
	}
	delete(open, -1)
	for fd := range open {
		syscall.Close(fd)
	}
}

// sysPidfdOpen is pidfd_open(2), which has one number on every
// architecture; package syscall does not name it.
const sysPidfdOpen = 434

// NoPidfd makes Run wait as on a kernel without pidfds (tests).
var NoPidfd bool

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func putBE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

func putBE64(b []byte, v uint64) { putBE32(b, uint32(v>>32)); putBE32(b[4:], uint32(v)) }

// The kernel's clocks, for clock_gettime.
const (
	clockRealtime  = 0
	clockMonotonic = 1
)

// now reads one of the kernel's clocks, in nanoseconds. This and the
// number helpers below stand in for packages time and strconv, which
// would add a tenth to this program's code for the little it needs.
func now(clock int) int64 {
	var ts syscall.Timespec
	_, _, _ = syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, uintptr(clock), uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// wallNow is the time of day in Unix nanoseconds, for the log and the
// exit.
func wallNow() int64 { return now(clockRealtime) }

// msUntil is an epoll timeout that ends at or just after deadline on the
// monotonic clock.
func msUntil(deadline int64) int {
	return int(max(deadline-now(clockMonotonic), 0)/1_000_000) + 1
}

// loop copies and serves until the container has exited and its output
// ended, and returns its status and when it ended (wallNow).
func (m *monitor) loop(out, errFd, in int) (int, int64, error) {
	var err error
	if m.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return m.waitOnly(err)
	}
	// A pidfd tells of the exit through epoll, so no thread has to sit
	// in wait4: each costs its stacks, in this process and in the kernel.
	// Kernels before 5.3 lack it: a goroutine waits instead.
	fd, _, errno := syscall.RawSyscall(sysPidfdOpen, uintptr(m.pid), 0, 0)
	if NoPidfd && errno == 0 {
		syscall.Close(int(fd))
		errno = syscall.ENOSYS
	}
	if errno == 0 {
		m.exitR, m.byPidfd = int(fd), true
	} else {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
			return m.waitOnly(err)
		}
		m.exitR = p[0]
		go reap(m.pid, p[1])
	}
	m.stdin, m.started = in, true
	if m.console >= 0 {
		m.streams = append(m.streams, &stream{fd: m.console, kind: proto.FrameStdout})
		m.stdin = m.console
	} else {
		if out >= 0 {
			m.streams = append(m.streams, &stream{fd: out, kind: proto.FrameStdout})
		}
		if errFd >= 0 {
			m.streams = append(m.streams, &stream{fd: errFd, kind: proto.FrameStderr})
		}
	}
	for _, s := range m.streams {
		name := "stdout"
		if s.kind == proto.FrameStderr {
			name = "stderr"
		}
		s.split.Emit = func(line []byte) { m.logLine(name, line) }
		_ = syscall.SetNonblock(s.fd, true)
	}
	for _, fd := range []int{m.stdin, m.listen, m.notify} {
		if fd >= 0 {
			_ = syscall.SetNonblock(fd, true)
		}
	}
	m.startHealth(m.health)
	m.sync()
	leanproc.TrimText(m.buf)

	var (
		exited   bool
		code     int
		finished int64
		deadline int64 // on the monotonic clock
		evs      [32]syscall.EpollEvent
	)
	for !exited || len(m.streams) > 0 && now(clockMonotonic) < deadline {
		timeout := -1
		if exited {
			timeout = msUntil(deadline)
		}
		n, err := syscall.EpollWait(m.ep, evs[:], timeout)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return m.waitExit(err)
		}
		for _, ev := range evs[:n] {
			fd := int(ev.Fd)
			switch {
			case fd == m.exitR:
				if exited, code, finished = m.reaped(); exited {
					deadline = now(clockMonotonic) + drainWait
					m.unwatch(fd)
					m.stopHealth()
				}
			case m.hc != nil && fd == m.hc.timer:
				m.healthDue()
			case m.hc != nil && fd == m.hc.pidfd:
				m.healthEnded()
			case fd == m.listen:
				m.accept()
			case fd == m.notify:
				m.relayNotify()
			case m.clients[fd] != nil:
				m.serveClient(m.clients[fd], ev.Events)
			default:
				m.serveStream(fd, ev.Events)
			}
		}
		m.sync()
	}
	// What the container said just before it ended is still systemd's
	// to hear (STATUS=, STOPPING=1).
	m.relayNotify()
	m.finish(code)
	return code, finished, nil
}

// relayNotify forwards the messages queued on the notify socket to
// systemd, each with this process's pid for MAINPID. Output is not
// being read meanwhile, so the two halves of the buffer serve.
func (m *monitor) relayNotify() {
	if m.notify < 0 {
		return
	}
	half := len(m.buf) / 2
	in, out := m.buf[:half], m.buf[half:half]
	pid := syscall.Getpid()
	for {
		n, _, err := syscall.Recvfrom(m.notify, in, syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				m.complain(err)
			}
			return
		}
		msg := notifymsg.Rewrite(out, in[:n], pid)
		if len(msg) == 0 {
			continue
		}
		if _, err := syscall.Write(m.notifyTo, msg); err != nil {
			m.complain(errorString("notify systemd: " + err.Error()))
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// waitOnly is the fallback when the loop cannot start: the container's
// status still has to be recorded.
func (m *monitor) waitOnly(cause error) (int, int64, error) {
	code := waitStatus(m.pid)
	return code, wallNow(), cause
}

// reaped collects the container's status once exitR is readable; false
// if it has not exited after all.
func (m *monitor) reaped() (bool, int, int64) {
	if m.byPidfd {
		code, ended := collect(m.pid, syscall.WNOHANG)
		return ended, code, wallNow()
	}
	var b [12]byte
	if k, _ := syscall.Read(m.exitR, b[:]); k == 12 {
		code, finished := exitRecord(b)
		return true, code, finished
	}
	return false, 0, 0
}

// waitExit is the fallback when the loop breaks down after the wait for
// the container was set up.
func (m *monitor) waitExit(cause error) (int, int64, error) {
	if m.byPidfd {
		return m.waitOnly(cause)
	}
	_ = syscall.SetNonblock(m.exitR, false)
	var b [12]byte
	for {
		n, err := syscall.Read(m.exitR, b[:])
		if n == 12 {
			code, finished := exitRecord(b)
			return code, finished, cause
		}
		if err != syscall.EINTR {
			return 255, wallNow(), cause
		}
	}
}

// reap waits for the container and writes its status and end time to w,
// as exitRecord reads them.
func reap(pid, w int) {
	code := waitStatus(pid)
	var b [12]byte
	putBE32(b[:], uint32(int32(code)))
	putBE64(b[4:], uint64(wallNow()))
	defer syscall.Close(w)
	for {
		if _, err := syscall.Write(w, b[:]); err != syscall.EINTR {
			return
		}
	}
}

// exitRecord reads what reap writes: the status and the end time.
func exitRecord(b [12]byte) (int, int64) {
	return int(int32(be32(b[:]))), int64(be64(b[4:]))
}

// waitStatus waits for pid and returns its status as a shell reports it.
func waitStatus(pid int) int {
	code, _ := collect(pid, 0)
	return code
}

// collect waits for pid with wait4's options and returns its status as a
// shell reports it; false if, with WNOHANG, pid has not ended yet.
func collect(pid, options int) (int, bool) {
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, options, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			// Not our child: nothing tells how it ended.
			return 255, true
		case got == 0:
			return 0, false
		case ws.Signaled():
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

// want is what fd should be watched for now.
func (m *monitor) want(fd int) uint32 {
	var ev uint32
	for _, s := range m.streams {
		if s.fd == fd {
			ev |= syscall.EPOLLIN
		}
	}
	if fd == m.stdin && len(m.pending) > 0 {
		ev |= syscall.EPOLLOUT
	}
	if c := m.clients[fd]; c != nil {
		if len(m.pending) < stdinBacklog {
			ev |= syscall.EPOLLIN
		}
		if len(c.out) > 0 {
			ev |= syscall.EPOLLOUT
		}
	}
	if fd == m.listen || fd == m.exitR || fd == m.notify || m.hc != nil && (fd == m.hc.timer || fd == m.hc.pidfd) {
		ev |= syscall.EPOLLIN
	}
	return ev
}

// sync brings the epoll set in line with want. It runs after every
// round of events, so it allocates nothing.
func (m *monitor) sync() {
	m.syncFd(m.listen)
	m.syncFd(m.exitR)
	m.syncFd(m.notify)
	m.syncFd(m.stdin)
	if m.hc != nil {
		m.syncFd(m.hc.timer)
		m.syncFd(m.hc.pidfd)
	}
	for _, s := range m.streams {
		m.syncFd(s.fd)
	}
	for fd := range m.clients {
		m.syncFd(fd)
	}
}

func (m *monitor) syncFd(fd int) {
	if fd < 0 {
		return
	}
	ev := m.want(fd)
	op := syscall.EPOLL_CTL_ADD
	if fd < len(m.watched) && m.watched[fd].on {
		if m.watched[fd].ev == ev {
			return
		}
		op = syscall.EPOLL_CTL_MOD
	}
	e := syscall.EpollEvent{Events: ev, Fd: int32(fd)}
	if syscall.EpollCtl(m.ep, op, fd, &e) == nil {
		m.watching(fd, ev)
	}
}

// watching records that fd is registered for ev.
func (m *monitor) watching(fd int, ev uint32) {
	for len(m.watched) <= fd {
		m.watched = append(m.watched, watch{})
	}
	if !m.watched[fd].on {
		m.nwatched++
	}
	m.watched[fd] = watch{on: true, ev: ev}
}

func (m *monitor) unwatch(fd int) {
	if fd >= 0 && fd < len(m.watched) && m.watched[fd].on {
		_ = syscall.EpollCtl(m.ep, syscall.EPOLL_CTL_DEL, fd, nil)
		m.watched[fd] = watch{}
		m.nwatched--
	}
}

func (m *monitor) serveStream(fd int, ev uint32) {
	if fd == m.stdin {
		if ev&syscall.EPOLLOUT != 0 {
			m.writeStdin()
		}
		if fd != m.console && ev&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
			// The container closed its stdin.
			m.endStdin()
		}
	}
	for i, s := range m.streams {
		if s.fd != fd || ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
			continue
		}
		// A few reads at a time, so a chatty container does not starve
		// the clients.
		for range 4 {
			n, err := syscall.Read(fd, m.buf)
			if n > 0 {
				s.split.Write(m.buf[:n])
				m.broadcast(s.kind, m.buf[:n])
				continue
			}
			if err == syscall.EAGAIN || err == syscall.EINTR {
				return
			}
			// End of output: EOF on a pipe, EIO on a pty whose other
			// side is gone.
			s.split.Flush()
			m.unwatch(fd)
			m.streams = append(m.streams[:i], m.streams[i+1:]...)
			if fd == m.console {
				// Input has nowhere to go either; closed, the master
				// makes later writes to the terminal fail, as they
				// would with nobody reading.
				m.console, m.stdin, m.pending = -1, -1, nil
			}
			syscall.Close(fd)
			return
		}
		return
	}
}

func (m *monitor) logLine(stream string, line []byte) {
	m.writeLog(stream, line)
}

func (m *monitor) writeStdin() {
	for len(m.pending) > 0 {
		n, err := syscall.Write(m.stdin, m.pending)
		if n > 0 {
			m.pending = m.pending[n:]
			continue
		}
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return
		}
		// The container closed its stdin: what is left has nowhere to go.
		m.pending = nil
	}
	m.pending = nil
	if m.closeStdin {
		m.endStdin()
	}
}

// endStdin closes the stdin pipe (never the console, which is also the
// output).
func (m *monitor) endStdin() {
	if m.stdin >= 0 && m.stdin != m.console {
		m.unwatch(m.stdin)
		syscall.Close(m.stdin)
		m.stdin = -1
	}
	m.pending = nil
}

func (m *monitor) accept() {
	for {
		fd, _, err := syscall.Accept4(m.listen, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err == syscall.EINTR || err == syscall.ECONNABORTED {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				// Out of descriptors, say: the listener would stay
				// readable and the loop spin. No more clients.
				m.complain(err)
				m.unwatch(m.listen)
				syscall.Close(m.listen)
				m.listen = -1
			}
			return
		}
		m.clients[fd] = &client{fd: fd}
	}
}

func (m *monitor) drop(c *client) {
	m.unwatch(c.fd)
	delete(m.clients, c.fd)
	syscall.Close(c.fd)
}

func (m *monitor) serveClient(c *client, ev uint32) {
	if ev&syscall.EPOLLOUT != 0 && !m.flush(c) {
		return
	}
	if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) == 0 {
		return
	}
	n, err := syscall.Read(c.fd, m.buf)
	if n <= 0 {
		if err != syscall.EAGAIN && err != syscall.EINTR {
			m.drop(c)
		}
		return
	}
	c.in = append(c.in, m.buf[:n]...)
	for len(c.in) >= 5 {
		size := be32(c.in[1:5])
		if size > proto.MaxFrame {
			m.drop(c)
			return
		}
		if uint32(len(c.in)-5) < size {
			break
		}
		m.input(c.in[0], c.in[5:5+size])
		c.in = c.in[5+size:]
	}
	c.in = append([]byte(nil), c.in...)
}

func (m *monitor) input(kind byte, data []byte) {
	switch kind {
	case proto.FrameStdin:
		if m.stdin >= 0 && !m.closeStdin {
			m.pending = append(m.pending, data...)
			m.writeStdin()
		}
	case proto.FrameResize:
		if m.console >= 0 && len(data) == 4 {
			ws := [4]uint16{uint16(data[0])<<8 | uint16(data[1]), uint16(data[2])<<8 | uint16(data[3])}
			_, _, _ = syscall.Syscall(syscall.SYS_IOCTL, uintptr(m.console), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
		}
	case proto.FrameCloseStdin:
		if m.stdin >= 0 && m.console < 0 {
			m.closeStdin = true
			m.writeStdin()
		}
	}
}

// broadcast queues a frame for every client and sends what it can now.
func (m *monitor) broadcast(kind byte, data []byte) {
	for _, c := range m.clients {
		if len(c.out)+5+len(data) > clientBacklog {
			m.drop(c)
			continue
		}
		c.out = append(c.out, kind, 0, 0, 0, 0)
		putBE32(c.out[len(c.out)-4:], uint32(len(data)))
		c.out = append(c.out, data...)
		m.flush(c)
	}
}

// flush writes what it can of c's queue; false if c was dropped.
func (m *monitor) flush(c *client) bool {
	for len(c.out) > 0 {
		n, err := syscall.Write(c.fd, c.out)
		if n > 0 {
			c.out = c.out[n:]
			continue
		}
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return true
		}
		m.drop(c)
		return false
	}
	c.out = nil
	return true
}

// finish ends the streams, tells the clients the status and gives them a
// moment to take it, and leaves only stderr open across the exec.
func (m *monitor) finish(code int) {
	for _, s := range m.streams {
		s.split.Flush()
	}
	var b [4]byte
	putBE32(b[:], uint32(code))
	m.broadcast(proto.FrameExit, b[:])
	// From here only the clients' queues matter: each is watched for
	// room to write while it has something queued, and for nothing else.
	for fd := range m.watched {
		m.unwatch(fd)
	}
	for _, c := range m.clients {
		if len(c.out) > 0 {
			e := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(c.fd)}
			if syscall.EpollCtl(m.ep, syscall.EPOLL_CTL_ADD, c.fd, &e) == nil {
				m.watching(c.fd, e.Events)
			}
		}
	}
	deadline := now(clockMonotonic) + drainWait
	var evs [32]syscall.EpollEvent
	for m.nwatched > 0 && now(clockMonotonic) < deadline {
		n, err := syscall.EpollWait(m.ep, evs[:], msUntil(deadline))
		if err != nil && err != syscall.EINTR {
			break
		}
		for _, ev := range evs[:max(n, 0)] {
			c := m.clients[int(ev.Fd)]
			if c == nil {
				continue
			}
			if m.flush(c) && len(c.out) == 0 {
				m.unwatch(c.fd)
			}
		}
	}
	for _, c := range m.clients {
		// Closing a socket with unread input resets it, and the client
		// would see an error instead of the end: read what is left, up
		// to a bound, for a client may never stop writing.
		for range 32 {
			if n, _ := syscall.Read(c.fd, m.buf); n <= 0 {
				break
			}
		}
		syscall.Close(c.fd)
		delete(m.clients, c.fd)
	}
}
