package runtime

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// forwarded are the signals a foreground berth passes on to its container.
// SIGCHLD, SIGURG (used by Go's scheduler), SIGPIPE and SIGWINCH (handled
// as a resize) are not.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGVTALRM,
	unix.SIGPROF, unix.SIGIO, unix.SIGPWR, unix.SIGSYS, unix.SIGTRAP, unix.SIGXCPU, unix.SIGXFSZ,
}

// CatchSignals starts catching, in the background, the signals a
// foreground berth forwards to its container (see Forward). The Go runtime
// makes a round trip to its signal thread for each one it starts or stops
// catching, about a millisecond in all, which is better spent while the
// container is set up than while it runs: callers catch them first, and
// keep them caught until they exit. Signals caught before Forward runs
// wait in the channel and reach the container then.
func CatchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 32)
	go signal.Notify(sigs, forwarded...)
	return sigs
}

// Forward relays the signals from sigs (see CatchSignals) and, with a pty,
// the terminal to the process, and returns its exit status when it ends.
func (p *Proc) Forward(sigs chan os.Signal, stdin, stdout *os.File) (int, error) {
	var winch chan os.Signal
	var copyDone sync.WaitGroup
	if p.Console != nil {
		if term.IsTerminal(int(stdin.Fd())) {
			if old, err := term.MakeRaw(int(stdin.Fd())); err == nil {
				defer term.Restore(int(stdin.Fd()), old)
			}
			winch = make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			resize(stdin, p.Console)
		}
		go func() { _, _ = io.Copy(p.Console, stdin) }()
		copyDone.Add(1)
		go func() {
			defer copyDone.Done()
			_, _ = io.Copy(stdout, p.Console)
		}()
	}
	done := make(chan struct{})
	var code int
	var err error
	go func() {
		code, err = p.Wait()
		close(done)
	}()
	for {
		select {
		case s := <-sigs:
			_ = unix.Kill(p.Pid, s.(unix.Signal))
		case <-winch:
			resize(stdin, p.Console)
		case <-done:
			if winch != nil {
				signal.Stop(winch)
			}
			if p.Console != nil {
				// Let the last output drain; the copy ends with EIO once
				// every holder of the pty slave is gone.
				waitTimeout(&copyDone, 2*time.Second)
				p.Console.Close()
			}
			return code, err
		}
	}
}

func resize(from, to *os.File) {
	ws, err := unix.IoctlGetWinsize(int(from.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		_ = unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
	case <-time.After(d):
	}
}
