package runtime

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// initChild is an init berth started: a child of this process, or of the
// process that forked it for this one (CreateOpts.Fork), which this one
// can signal and see end through a pidfd but not wait for.
type initChild struct {
	*os.Process
	// pidfd is the other parent's child's, opened while it could not
	// have been reaped yet (its parent reaps it only once this process
	// is done with it); -1 for a child of this process.
	pidfd int
}

func ownChild(p *os.Process) *initChild { return &initChild{Process: p, pidfd: -1} }

// otherChild is process pid, just forked by another process for this one.
func otherChild(pid int) (*initChild, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd of init %d: %w", pid, err)
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &initChild{Process: p, pidfd: fd}, nil
}

// errNotOurs is the wait for an init another process is the parent of:
// that process collects its status.
var errNotOurs = errors.New("the init's exit status is its parent's to collect")

// Kill kills the init.
func (c *initChild) Kill() error {
	if c.pidfd < 0 {
		return c.Process.Kill()
	}
	return unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0)
}

// Wait waits for the init to end; for another process's child it only
// returns once the init is gone, with errNotOurs.
func (c *initChild) Wait() (*os.ProcessState, error) {
	if c.pidfd < 0 {
		return c.Process.Wait()
	}
	// The pidfd turns readable when the process has exited.
	fds := []unix.PollFd{{Fd: int32(c.pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			if err != nil {
				return nil, fmt.Errorf("wait for init: %w", err)
			}
			return nil, errNotOurs
		}
	}
}

// release closes the pidfd of another process's child.
func (c *initChild) release() {
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
}

// proc is the Proc the caller gets: for another process's child, Wait
// returns once the init is gone and says nothing of its status.
func (c *initChild) proc() *Proc {
	if c.pidfd < 0 {
		return &Proc{proc: c.Process, Pid: c.Pid}
	}
	return &Proc{Pid: c.Pid, wait: func() (int, error) {
		_, err := c.Wait()
		c.release()
		return 125, err
	}}
}
