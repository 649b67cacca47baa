package runtime

import (
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-project/berth/internal/detachkeys"
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
	code, _, err := p.ForwardKeys(sigs, stdin, stdout, nil)
	return code, err
}

// ForwardKeys is Forward that also returns, with detached set, when the
// user types keys (see package detachkeys) on stdin into the pty. The
// process then runs on with p.Console open, for the caller to hand on:
// closing the pty's master would hang it up.
func (p *Proc) ForwardKeys(sigs chan os.Signal, stdin, stdout *os.File, keys []byte) (int, bool, error) {
	var winch chan os.Signal
	var copyDone sync.WaitGroup
	detach := make(chan struct{})
	var gone atomic.Bool
	if p.Console != nil {
		if term.IsTerminal(int(stdin.Fd())) {
			if old, err := term.MakeRaw(int(stdin.Fd())); err == nil {
				defer term.Restore(int(stdin.Fd()), old)
			}
			winch = make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			resize(stdin, p.Console)
		}
		go func() {
			scan := detachkeys.Scanner{Keys: keys}
			buf := make([]byte, 32*1024)
			for {
				n, err := stdin.Read(buf)
				out, hit := scan.Filter(buf[:n])
				if len(out) > 0 {
					if _, werr := p.Console.Write(out); werr != nil {
						return
					}
				}
				if hit {
					gone.Store(true)
					close(detach)
					return
				}
				if err != nil {
					return
				}
			}
		}()
		copyDone.Add(1)
		go func() {
			defer copyDone.Done()
			_, _ = io.Copy(detachedWriter{stdout, &gone}, p.Console)
		}()
	}
	done := make(chan struct{})
	var wcode int
	var werr error
	go func() {
		wcode, werr = p.Wait()
		close(done)
	}()
	for {
		select {
		case s := <-sigs:
			_ = unix.Kill(p.Pid, s.(unix.Signal))
		case <-winch:
			resize(stdin, p.Console)
		case <-detach:
			if winch != nil {
				signal.Stop(winch)
			}
			return -1, true, nil
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
			return wcode, false, werr
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

// detachedWriter drops what comes after a detach, which the terminal's
// user no longer waits for.
type detachedWriter struct {
	w    io.Writer
	gone *atomic.Bool
}

func (d detachedWriter) Write(b []byte) (int, error) {
	if d.gone.Load() {
		return len(b), nil
	}
	return d.w.Write(b)
}
