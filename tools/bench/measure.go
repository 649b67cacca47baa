package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Contender is one tool in a comparison. Run performs one measured
// operation (i counts all runs of this contender, warm-ups included, so
// ids can be unique); Cleanup, if set, runs after a failed Run with the
// same i, outside the timing.
type Contender struct {
	Name    string
	Run     func(i int) error
	Cleanup func(i int)
}

// Result is the outcome for one contender.
type Result struct {
	Name    string
	Samples []time.Duration
	Err     error // set when the contender was dropped
}

// OK reports whether the contender produced samples.
func (r *Result) OK() bool { return r.Err == nil && len(r.Samples) > 0 }

// Percentile returns the p-th percentile (0..100) with linear interpolation.
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Samples) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.Samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	frac := pos - float64(lo)
	return s[lo] + time.Duration(frac*float64(s[hi]-s[lo]))
}

// Median is the 50th percentile.
func (r *Result) Median() time.Duration { return r.Percentile(50) }

// Compare times the contenders in alternation: Warmup rounds, then N
// measured rounds; each round runs every live contender once, starting
// with a different one each round so no tool always runs first. A
// contender whose run fails is dropped with its error (a tool being
// unavailable is a result, not a harness error).
func (e *Env) Compare(cs []Contender) []Result {
	res := make([]Result, len(cs))
	count := make([]int, len(cs))
	for i, c := range cs {
		res[i].Name = c.Name
	}
	for round := 0; round < e.Warmup+e.N; round++ {
		measured := round >= e.Warmup
		for k := range cs {
			if e.Ctx.Err() != nil {
				for j := range res {
					if res[j].Err == nil {
						res[j].Err = e.Ctx.Err()
					}
				}
				return res
			}
			j := (round + k) % len(cs)
			if res[j].Err != nil {
				continue
			}
			c := cs[j]
			i := count[j]
			count[j]++
			start := time.Now()
			err := c.Run(i)
			d := time.Since(start)
			if err != nil {
				if c.Cleanup != nil {
					c.Cleanup(i)
				}
				res[j].Err = err
				continue
			}
			if measured {
				res[j].Samples = append(res[j].Samples, d)
				if e.Verbose {
					fmt.Fprintf(e.Out, "  %s #%d %s\n", c.Name, len(res[j].Samples), fmtDur(d))
				}
			}
		}
	}
	return res
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// Table prints median, p10 and p90 per contender, and unavailable ones
// with their reason.
func (e *Env) Table(rs []Result) {
	fmt.Fprintf(e.Out, "%-8s %10s %10s %10s %5s\n", "tool", "median", "p10", "p90", "runs")
	for _, r := range rs {
		if !r.OK() {
			reason := "no samples"
			if r.Err != nil {
				reason = oneLine(r.Err.Error())
			}
			fmt.Fprintf(e.Out, "%-8s unavailable (%s)\n", r.Name+":", reason)
			continue
		}
		fmt.Fprintf(e.Out, "%-8s %10s %10s %10s %5d\n", r.Name, fmtDur(r.Median()), fmtDur(r.Percentile(10)), fmtDur(r.Percentile(90)), len(r.Samples))
	}
}

// Ratio prints the ratio of medians a/b and the target (<= target is good).
func (e *Env) Ratio(rs []Result, a, b string, target float64) {
	var ra, rb *Result
	for i := range rs {
		switch rs[i].Name {
		case a:
			ra = &rs[i]
		case b:
			rb = &rs[i]
		}
	}
	if ra == nil || rb == nil || !ra.OK() || !rb.OK() || rb.Median() == 0 {
		fmt.Fprintf(e.Out, "%s/%s ratio = n/a (target <= %.2f)\n", a, b, target)
		return
	}
	ratio := float64(ra.Median()) / float64(rb.Median())
	verdict := "met"
	if ratio > target {
		verdict = "not met"
	}
	fmt.Fprintf(e.Out, "%s/%s ratio = %.2f (target <= %.2f, %s)\n", a, b, ratio, target, verdict)
}

// oneLine shortens multi-line tool errors for the table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Delta prints how much longer a's median takes than b's, against a
// target of at most target (none when 0).
func (e *Env) Delta(rs []Result, a, b string, target time.Duration) {
	ra, rb := find(rs, a), find(rs, b)
	if ra == nil || rb == nil || !ra.OK() || !rb.OK() {
		fmt.Fprintf(e.Out, "%s - %s = n/a\n", a, b)
		return
	}
	d := ra.Median() - rb.Median()
	fmt.Fprintf(e.Out, "%s - %s = %+.1fms", a, b, float64(d)/float64(time.Millisecond))
	if target > 0 {
		verdict := "met"
		if d > target {
			verdict = "not met"
		}
		fmt.Fprintf(e.Out, " (target <= +%s, %s)", fmtDur(target), verdict)
	}
	fmt.Fprintln(e.Out)
}

// Growth prints how much name's median grew from before to after, against
// a target of at most frac.
func (e *Env) Growth(before, after []Result, name string, frac float64) {
	rb, ra := find(before, name), find(after, name)
	if rb == nil || ra == nil || !rb.OK() || !ra.OK() || rb.Median() == 0 {
		fmt.Fprintf(e.Out, "%s growth = n/a\n", name)
		return
	}
	g := float64(ra.Median())/float64(rb.Median()) - 1
	verdict := "met"
	if g > frac {
		verdict = "not met"
	}
	fmt.Fprintf(e.Out, "%s: %s -> %s, %+.0f%% (target <= +%.0f%%, %s)\n", name, fmtDur(rb.Median()), fmtDur(ra.Median()), g*100, frac*100, verdict)
}

func find(rs []Result, name string) *Result {
	for i := range rs {
		if rs[i].Name == name {
			return &rs[i]
		}
	}
	return nil
}
