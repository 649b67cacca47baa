package seccomp

import (
	"fmt"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// cond is one validated argument condition.
type cond struct {
	index    uint
	op       specs.LinuxSeccompOperator
	value    uint64
	valueTwo uint64
}

type condRule struct {
	conds []cond
	ret   uint32
}

// sysEntry collects what the profile says about one syscall number.
type sysEntry struct {
	nr        uint32
	condRules []condRule
	uncond    *uint32
}

func (e *sysEntry) addCond(r condRule) {
	for _, o := range e.condRules {
		if o.ret == r.ret && slices.Equal(o.conds, r.conds) {
			return
		}
	}
	e.condRules = append(e.condRules, r)
}

type archFilter struct {
	info    *archInfo
	entries map[uint32]*sysEntry
}

func (f *archFilter) entry(nr uint32) *sysEntry {
	e := f.entries[nr]
	if e == nil {
		e = &sysEntry{nr: nr}
		f.entries[nr] = e
	}
	return e
}

func (f *archFilter) sorted(defRet uint32) []*sysEntry {
	out := make([]*sysEntry, 0, len(f.entries))
	for _, e := range f.entries {
		if len(e.condRules) == 0 && (e.uncond == nil || *e.uncond == defRet) {
			continue // same as not mentioning it
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nr < out[j].nr })
	return out
}

func validateConds(args []specs.LinuxSeccompArg) ([]cond, error) {
	out := make([]cond, 0, len(args))
	for _, a := range args {
		if a.Index > 5 {
			return nil, fmt.Errorf("argument index %d out of range (0-5)", a.Index)
		}
		if !slices.Contains(operators, a.Op) {
			return nil, fmt.Errorf("unknown argument operator %q", a.Op)
		}
		out = append(out, cond{index: a.Index, op: a.Op, value: a.Value, valueTwo: a.ValueTwo})
	}
	return out, nil
}

// Compile translates an OCI seccomp profile into a classic BPF program for
// seccomp(SECCOMP_SET_MODE_FILTER). See the package documentation for the
// exact semantics.
func Compile(cfg *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if cfg == nil {
		return nil, fmt.Errorf("seccomp: nil profile")
	}
	if _, err := Flags(cfg); err != nil {
		return nil, err
	}
	defRet, err := actionRet(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp: default action: %w", err)
	}

	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	arches := []*archInfo{native}
	for _, name := range cfg.Architectures {
		info, ok := supportedArches[name]
		if !ok {
			if foreignArches[name] {
				logrus.Debugf("seccomp: ignoring architecture %s on this host", name)
				continue
			}
			return nil, fmt.Errorf("seccomp: unknown architecture %q", name)
		}
		if !slices.Contains(arches, info) {
			arches = append(arches, info)
		}
	}
	filters := make([]*archFilter, len(arches))
	for i, a := range arches {
		filters[i] = &archFilter{info: a, entries: map[uint32]*sysEntry{}}
	}

	for i, sc := range cfg.Syscalls {
		ret, err := actionRet(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d] %v: %w", i, sc.Names, err)
		}
		conds, err := validateConds(sc.Args)
		if err != nil {
			return nil, fmt.Errorf("seccomp: syscalls[%d] %v: %w", i, sc.Names, err)
		}
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp: syscalls[%d]: no syscall names", i)
		}
		for _, name := range sc.Names {
			known := false
			for _, f := range filters {
				nr, ok := f.info.table()[name]
				if !ok {
					continue
				}
				known = true
				e := f.entry(nr)
				if len(conds) == 0 {
					if e.uncond == nil {
						r := ret
						e.uncond = &r
					} else if *e.uncond != ret {
						logrus.Debugf("seccomp: %s on %s already has action %#x, ignoring %#x", name, f.info.name, *e.uncond, ret)
					}
					continue
				}
				e.addCond(condRule{conds: conds, ret: ret})
			}
			if !known {
				logrus.Debugf("seccomp: unknown syscall %q on all architectures, skipping", name)
			}
		}
	}

	a := &assembler{}
	g := &gen{a: a, defRet: defRet}
	g.emit(filters)
	prog, err := a.assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return prog, nil
}

type gen struct {
	a      *assembler
	defRet uint32
}

func (g *gen) emit(filters []*archFilter) {
	a := g.a
	var x64, x32, i386 *archFilter
	for _, f := range filters {
		switch f.info {
		case archX86_64:
			x64 = f
		case archX32:
			x32 = f
		case archX86:
			i386 = f
		}
	}
	a.ldAbs(offArch)
	l64, l32 := a.newLabel(), a.newLabel()
	if x64 != nil || x32 != nil {
		a.jmp(unix.BPF_JEQ, unix.AUDIT_ARCH_X86_64, l64, labelNext)
	}
	if i386 != nil {
		a.jmp(unix.BPF_JEQ, unix.AUDIT_ARCH_I386, l32, labelNext)
	}
	a.ret(g.defRet)

	if x64 != nil || x32 != nil {
		a.bind(l64)
		a.ldAbs(offNr)
		lx32 := a.newLabel()
		a.jmp(unix.BPF_JGE, x32SyscallBit, lx32, labelNext)
		if x64 != nil {
			g.tree(x64.sorted(g.defRet))
		} else {
			a.ret(g.defRet)
		}
		a.bind(lx32)
		if x32 != nil {
			g.tree(x32.sorted(g.defRet))
		} else {
			a.ret(g.defRet)
		}
	}
	if i386 != nil {
		a.bind(l32)
		a.ldAbs(offNr)
		g.tree(i386.sorted(g.defRet))
	}
}

// interval is a run [lo, next interval's lo) of syscall numbers that share
// one outcome: either a plain return value or the rules of a single syscall.
type interval struct {
	lo  uint32
	ret uint32
	e   *sysEntry // non-nil: argument-conditioned rules of syscall lo
}

// intervals partitions the 32-bit syscall number space according to the
// sorted entries, merging neighbours with the same plain outcome. Allowlists
// are full of consecutive numbers, so this keeps the program small.
func (g *gen) intervals(entries []*sysEntry) []interval {
	var out []interval
	add := func(iv interval) {
		if n := len(out); n > 0 && iv.e == nil && out[n-1].e == nil && out[n-1].ret == iv.ret {
			return // extends the previous run
		}
		out = append(out, iv)
	}
	next := uint64(0)
	for _, e := range entries {
		if uint64(e.nr) > next {
			add(interval{lo: uint32(next), ret: g.defRet})
		}
		if len(e.condRules) > 0 {
			add(interval{lo: e.nr, e: e})
		} else {
			add(interval{lo: e.nr, ret: *e.uncond})
		}
		next = uint64(e.nr) + 1
	}
	if next <= 0xffffffff {
		add(interval{lo: uint32(next), ret: g.defRet})
	}
	if len(out) == 0 {
		out = append(out, interval{lo: 0, ret: g.defRet})
	}
	return out
}

// tree emits a binary search over the syscall number intervals. The
// accumulator holds the syscall number on entry; every path ends in a RET.
func (g *gen) tree(entries []*sysEntry) {
	g.search(g.intervals(entries))
}

func (g *gen) search(ivs []interval) {
	a := g.a
	if len(ivs) == 1 {
		if ivs[0].e != nil {
			g.block(ivs[0].e)
		} else {
			a.ret(ivs[0].ret)
		}
		return
	}
	mid := len(ivs) / 2
	right := a.newLabel()
	a.jmp(unix.BPF_JGE, ivs[mid].lo, right, labelNext)
	g.search(ivs[:mid])
	a.bind(right)
	g.search(ivs[mid:])
}

// block emits the argument-conditioned rules of one syscall, then its
// unconditional action (or the default action).
func (g *gen) block(e *sysEntry) {
	a := g.a
	for _, r := range e.condRules {
		fail := a.newLabel()
		for _, c := range r.conds {
			g.cond(c, fail)
		}
		a.ret(r.ret)
		a.bind(fail)
	}
	if e.uncond != nil {
		a.ret(*e.uncond)
	} else {
		a.ret(g.defRet)
	}
}

// cond emits the check of one 64-bit argument condition: execution falls
// through when it holds and jumps to fail otherwise. The accumulator is
// clobbered.
func (g *gen) cond(c cond, fail label) {
	a := g.a
	lo := uint32(offArgs + 8*c.index)
	hi := lo + 4
	vlo, vhi := uint32(c.value), uint32(c.value>>32)
	pass := a.newLabel()
	switch c.op {
	case specs.OpEqualTo:
		a.ldAbs(hi)
		a.jmp(unix.BPF_JEQ, vhi, labelNext, fail)
		a.ldAbs(lo)
		a.jmp(unix.BPF_JEQ, vlo, labelNext, fail)
	case specs.OpNotEqual:
		a.ldAbs(hi)
		a.jmp(unix.BPF_JEQ, vhi, labelNext, pass)
		a.ldAbs(lo)
		a.jmp(unix.BPF_JEQ, vlo, fail, labelNext)
	case specs.OpMaskedEqual:
		mlo, mhi := vlo, vhi
		wlo, whi := uint32(c.valueTwo), uint32(c.valueTwo>>32)
		a.ldAbs(hi)
		a.and(mhi)
		a.jmp(unix.BPF_JEQ, whi, labelNext, fail)
		a.ldAbs(lo)
		a.and(mlo)
		a.jmp(unix.BPF_JEQ, wlo, labelNext, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.ldAbs(hi)
		a.jmp(unix.BPF_JGT, vhi, pass, labelNext)
		a.jmp(unix.BPF_JEQ, vhi, labelNext, fail)
		a.ldAbs(lo)
		op := uint16(unix.BPF_JGT)
		if c.op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		a.jmp(op, vlo, labelNext, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		// LT is !GE and LE is !GT.
		a.ldAbs(hi)
		a.jmp(unix.BPF_JGT, vhi, fail, labelNext)
		a.jmp(unix.BPF_JEQ, vhi, labelNext, pass)
		a.ldAbs(lo)
		op := uint16(unix.BPF_JGE)
		if c.op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		a.jmp(op, vlo, fail, labelNext)
	}
	a.bind(pass)
}
