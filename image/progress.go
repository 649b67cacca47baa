package image

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress reports per-layer transfers: bars on a terminal, one plain
// line per layer otherwise, nothing when quiet.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	bars *mpb.Progress
}

func newProgress(w io.Writer, quiet bool) *progress {
	if quiet || w == nil {
		return &progress{}
	}
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bars = mpb.New(mpb.WithOutput(w), mpb.WithWidth(40))
	}
	return p
}

// printf prints a plain line (never interleaved with bars).
func (p *progress) printf(format string, a ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bars != nil {
		return
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

type layerProgress struct {
	p   *progress
	id  string
	bar *mpb.Bar
}

// layer starts reporting one blob of size bytes; verb is "Downloading" or
// "Pushing".
func (p *progress) layer(id, verb string, size int64) *layerProgress {
	lp := &layerProgress{p: p, id: id}
	if p.bars != nil {
		lp.bar = p.bars.AddBar(size,
			mpb.PrependDecorators(decor.Name(id+" "), decor.Name(verb, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.OnComplete(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), "done")),
		)
	}
	return lp
}

func (lp *layerProgress) reader(r io.Reader) io.Reader {
	if lp.bar == nil {
		return r
	}
	return lp.bar.ProxyReader(r)
}

// done ends the layer with a status ("Pull complete", "Already exists").
func (lp *layerProgress) done(status string) {
	if lp.bar != nil {
		lp.bar.SetTotal(-1, true)
		return
	}
	lp.p.printf("%s: %s", lp.id, status)
}

func (lp *layerProgress) fail() {
	if lp.bar != nil {
		lp.bar.Abort(false)
	}
}

func (p *progress) wait() {
	if p.bars != nil {
		p.bars.Wait()
		p.bars = nil
	}
}
