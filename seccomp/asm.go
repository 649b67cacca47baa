package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/seccomp/filter"
)

// A tiny forward-only classic-BPF assembler with symbolic labels. Conditional
// jumps in cBPF carry 8-bit offsets; when a target ends up more than 255
// instructions away the assembler rewrites the jump to go through an
// unconditional BPF_JA trampoline (32-bit offset) placed right after it.

// label names a position in the program. labelNext (0) means "the next
// instruction", i.e. fall through.
type label int

const labelNext label = 0

// maxInsns is BPF_MAXINSNS, the kernel's limit on a classic BPF program.
const maxInsns = filter.MaxInsns

type insn struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps
	target label // BPF_JA
	bind   label // != 0: pseudo instruction that defines this label
}

type assembler struct {
	prog   []insn
	labels int
}

func (a *assembler) newLabel() label {
	a.labels++
	return label(a.labels)
}

func (a *assembler) bind(l label) { a.prog = append(a.prog, insn{bind: l}) }

func (a *assembler) ldAbs(off uint32) {
	a.prog = append(a.prog, insn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off})
}

func (a *assembler) and(k uint32) {
	a.prog = append(a.prog, insn{code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, k: k})
}

// jmp emits a conditional jump (op is one of BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET).
func (a *assembler) jmp(op uint16, k uint32, jt, jf label) {
	a.prog = append(a.prog, insn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf})
}

func (a *assembler) ret(k uint32) {
	a.prog = append(a.prog, insn{code: unix.BPF_RET | unix.BPF_K, k: k})
}

func isCondJump(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// positions returns, for every label, the index of the real instruction it
// precedes, and for every element of prog its real-instruction index.
func (a *assembler) positions() (map[label]int, []int) {
	pos := make(map[label]int, a.labels)
	idx := make([]int, len(a.prog))
	n := 0
	for i, in := range a.prog {
		idx[i] = n
		if in.bind != 0 {
			pos[in.bind] = n
			continue
		}
		n++
	}
	return pos, idx
}

// offset computes the jump offset from instruction at real index i to label l.
func offset(pos map[label]int, i int, l label) (int, error) {
	if l == labelNext {
		return 0, nil
	}
	p, ok := pos[l]
	if !ok {
		return 0, fmt.Errorf("bpf: unbound label %d", l)
	}
	off := p - i - 1
	if off < 0 {
		return 0, fmt.Errorf("bpf: backward jump to label %d", l)
	}
	return off, nil
}

// expandFarJumps inserts trampolines for every conditional jump whose target
// is too far. It reports whether it changed anything.
func (a *assembler) expandFarJumps() (bool, error) {
	pos, idx := a.positions()
	var out []insn
	changed := false
	for i, in := range a.prog {
		if in.bind != 0 || !isCondJump(in.code) {
			out = append(out, in)
			continue
		}
		ot, err := offset(pos, idx[i], in.jt)
		if err != nil {
			return false, err
		}
		of, err := offset(pos, idx[i], in.jf)
		if err != nil {
			return false, err
		}
		farT, farF := ot > 255, of > 255
		if !farT && !farF {
			out = append(out, in)
			continue
		}
		changed = true
		// Make fall-through explicit: the trampolines now sit in between.
		next := a.newLabel()
		if in.jt == labelNext {
			in.jt = next
		}
		if in.jf == labelNext {
			in.jf = next
		}
		var tramps []insn
		if farT {
			t := a.newLabel()
			tramps = append(tramps, insn{bind: t}, insn{code: unix.BPF_JMP | unix.BPF_JA, target: in.jt})
			in.jt = t
		}
		if farF {
			t := a.newLabel()
			tramps = append(tramps, insn{bind: t}, insn{code: unix.BPF_JMP | unix.BPF_JA, target: in.jf})
			in.jf = t
		}
		out = append(out, in)
		out = append(out, tramps...)
		out = append(out, insn{bind: next})
	}
	a.prog = out
	return changed, nil
}

// assemble resolves labels and returns the final program.
func (a *assembler) assemble() ([]unix.SockFilter, error) {
	for iter := 0; ; iter++ {
		if iter > 64 {
			return nil, fmt.Errorf("bpf: jump layout did not converge")
		}
		changed, err := a.expandFarJumps()
		if err != nil {
			return nil, err
		}
		if !changed {
			break
		}
	}
	pos, idx := a.positions()
	out := make([]unix.SockFilter, 0, len(a.prog))
	for i, in := range a.prog {
		if in.bind != 0 {
			continue
		}
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch {
		case in.code == unix.BPF_JMP|unix.BPF_JA:
			off, err := offset(pos, idx[i], in.target)
			if err != nil {
				return nil, err
			}
			f.K = uint32(off)
		case isCondJump(in.code):
			ot, err := offset(pos, idx[i], in.jt)
			if err != nil {
				return nil, err
			}
			of, err := offset(pos, idx[i], in.jf)
			if err != nil {
				return nil, err
			}
			if ot > 255 || of > 255 {
				return nil, fmt.Errorf("bpf: internal error: jump offset out of range")
			}
			f.Jt, f.Jf = uint8(ot), uint8(of)
		}
		out = append(out, f)
	}
	if len(out) > maxInsns {
		return nil, fmt.Errorf("seccomp filter too long: %d instructions (limit %d)", len(out), maxInsns)
	}
	return out, nil
}
