package build

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress writes the build's output as docker build --progress=plain
// does: "#N" lines per step, the step's output with the seconds since it
// started, DONE, CACHED or ERROR. Stages running at once write whole
// lines under one lock. On a terminal (tty) a step's output is one live
// line, rewritten in place, so the view stays compact; the failing step's
// last lines come with its error.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	live bool // a live output line is on the screen
}

// liveWidth bounds a live line, so it never wraps on a usual terminal.
const liveWidth = 100

func (p *progress) clearLive() {
	if p.live {
		fmt.Fprint(p.w, "\r\033[K")
		p.live = false
	}
}

func (p *progress) line(step int, format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	fmt.Fprintf(p.w, "#%d %s\n", step, fmt.Sprintf(format, a...))
}

// output is one line a RUN step printed.
func (p *progress) output(step int, start time.Time, text string) {
	if p == nil || p.w == nil {
		return
	}
	if !p.tty {
		p.line(step, "%.3f %s", time.Since(start).Seconds(), text)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	text = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, text)
	if len(text) > liveWidth {
		text = text[:liveWidth]
	}
	fmt.Fprintf(p.w, "\r\033[K#%d %.1fs %s", step, time.Since(start).Seconds(), text)
	p.live = true
}

func (p *progress) plain(format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLive()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *progress) done(step int, start time.Time) {
	p.line(step, "DONE %.1fs", time.Since(start).Seconds())
}
