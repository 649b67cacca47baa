package build

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress writes the build's output as docker build --progress=plain
// does: "#N" lines per step, the step's output with the seconds since it
// started, DONE, CACHED or ERROR. Stages running at once write whole
// lines under one lock.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progress) line(step int, format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "#%d %s\n", step, fmt.Sprintf(format, a...))
}

func (p *progress) plain(format string, a ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", a...)
}

func (p *progress) done(step int, start time.Time) {
	p.line(step, "DONE %.1fs", time.Since(start).Seconds())
}
