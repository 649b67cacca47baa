package monitorcore

import (
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/internal/leanproc"
	"github.com/berth-project/berth/internal/notifymsg"
)

// Health is when and how the monitor has the container's healthcheck run:
// it starts Argv (berth's hidden health command, which runs one check in
// the container, records it and applies the policy) at Path, one at a
// time, and reaps it. Durations are in nanoseconds; with no Argv there is
// no check.
type Health struct {
	Path string
	Argv []string
	// Interval is the time between checks; StartInterval replaces it in
	// the first StartPeriod after the start until a check passed, as
	// Docker schedules them.
	Interval, StartPeriod, StartInterval int64
	// Ready sends READY=1 to systemd (Config.NotifyTo) when a check first
	// passes (--sdnotify=healthy). The monitor sends it, not the check:
	// it is the unit's main process, which systemd always maps to the
	// unit, where a check that exits right after sending may be gone
	// before systemd looks at who sent the message, and be dropped.
	Ready bool
}

// checker runs the checks from the epoll loop: a timerfd says when the
// next is due, and a pidfd when the running one ended. Both are watched
// only while they matter, so a container without checks costs nothing.
type checker struct {
	h       Health
	timer   int
	pid     int // of the running check; 0 when none runs
	pidfd   int
	passed  bool
	started int64 // on the monotonic clock
}

// The kernel's timerfd flags (O_CLOEXEC and O_NONBLOCK).
const tfdFlags = 0x80000 | 0x800

// startHealth sets up the checker and arms the first check. Failing, the
// container runs without checks and the monitor says so.
func (m *monitor) startHealth(h Health) {
	if len(h.Argv) == 0 || h.Interval <= 0 {
		return
	}
	fd, _, errno := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, tfdFlags, 0)
	if errno != 0 {
		m.complain(errno)
		return
	}
	m.hc = &checker{h: h, timer: int(fd), pidfd: -1, started: now(clockMonotonic)}
	m.hc.arm(m.hc.delay())
}

// delay is the wait before the next check.
func (c *checker) delay() int64 {
	if !c.passed && now(clockMonotonic)-c.started < c.h.StartPeriod && c.h.StartInterval > 0 {
		return c.h.StartInterval
	}
	return c.h.Interval
}

// arm sets the timer to expire once, ns from now (0 disarms it).
func (c *checker) arm(ns int64) {
	var spec [4]int64 // struct itimerspec: interval, then value
	spec[2], spec[3] = ns/1_000_000_000, ns%1_000_000_000
	_, _, _ = syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, uintptr(c.timer), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
}

// healthDue runs a check when the timer expired.
func (m *monitor) healthDue() {
	c := m.hc
	var b [8]byte
	if n, _ := syscall.Read(c.timer, b[:]); n != 8 {
		return
	}
	if c.pid > 0 && !m.reapCheck() {
		// Without a pidfd, the last check is looked at only now: it still
		// runs, and the next waits.
		c.arm(c.h.Interval)
		return
	}
	pid, err := syscall.ForkExec(c.h.Path, c.h.Argv, &syscall.ProcAttr{Env: syscall.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		m.complain(err)
		c.arm(c.delay())
		return
	}
	c.pid = pid
	fd, _, errno := syscall.RawSyscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 || NoPidfd {
		if errno == 0 {
			syscall.Close(int(fd))
		}
		c.arm(c.delay())
		return
	}
	c.pidfd = int(fd)
}

// healthEnded reaps the check whose pidfd became readable and arms the
// next one.
func (m *monitor) healthEnded() {
	if m.reapCheck() {
		m.hc.arm(m.hc.delay())
		// The fork faulted in code the loop does not run otherwise.
		leanproc.TrimText(m.buf)
	}
}

// reapCheck collects the running check; false if it still runs. The
// check exits 0 when the container passed it.
func (m *monitor) reapCheck() bool {
	c := m.hc
	code, ended := collect(c.pid, syscall.WNOHANG)
	if !ended {
		return false
	}
	c.passed = c.passed || code == 0
	if code == 0 && c.h.Ready && m.notifyTo >= 0 {
		c.h.Ready = false
		msg := notifymsg.Rewrite(nil, []byte("READY=1\n"), syscall.Getpid())
		if _, err := syscall.Write(m.notifyTo, msg); err != nil {
			m.complain(errorString("notify systemd: " + err.Error()))
		}
	}
	c.pid = 0
	m.closePidfd()
	return true
}

func (m *monitor) closePidfd() {
	if c := m.hc; c.pidfd >= 0 {
		m.unwatch(c.pidfd)
		syscall.Close(c.pidfd)
		c.pidfd = -1
	}
}

// stopHealth ends the checks once the container exited. A check still
// running has nothing left to look at: it is killed and reaped here, or
// it would outlive the monitor (whose successor, berth, does not wait for
// it) as an orphan, a zombie until the host's init reaps it. Its actions
// run in processes of their own, which it started before it exited.
func (m *monitor) stopHealth() {
	if c := m.hc; c != nil {
		m.unwatch(c.timer)
		syscall.Close(c.timer)
		m.closePidfd()
		if c.pid > 0 {
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
			collect(c.pid, 0)
			c.pid = 0
		}
		m.hc = nil
	}
}
