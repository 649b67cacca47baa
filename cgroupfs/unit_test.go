package cgroupfs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64 { return &v }

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/berth/abc": "/berth/abc", "berth/abc": "/berth/abc", "//berth//abc/": "/berth/abc",
		"/a/./b": "/a/b",
	} {
		got, err := cleanPath(in)
		if err != nil || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/", "..", "/berth/../x", "a/..", "/./"} {
		if got, err := cleanPath(bad); err == nil {
			t.Errorf("cleanPath(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := New("/berth/../../etc"); err == nil {
		t.Error("New accepted a path with ..")
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{
		0: 0, 1: 1, 2: 1, 512: 20, 1024: 39, 2048: 79, 262144: 10000, 1 << 40: 10000,
	} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 500: 4950, 1000: 10000} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestSwapV2(t *testing.T) {
	cases := []struct {
		swap, limit *int64
		val         string
		ok, err     bool
	}{
		{nil, i64(100), "", false, false},
		{i64(0), i64(100), "", false, false},
		{i64(-1), nil, "max", true, false},
		{i64(300), i64(100), "200", true, false},
		{i64(100), i64(100), "0", true, false},
		{i64(50), i64(100), "", false, true},
		{i64(300), nil, "", false, true},
		{i64(300), i64(-1), "", false, true},
	}
	for i, c := range cases {
		v, ok, err := swapV2(c.swap, c.limit)
		if v != c.val || ok != c.ok || (err != nil) != c.err {
			t.Errorf("case %d: got %q %v %v", i, v, ok, err)
		}
	}
}

func TestValidPagesize(t *testing.T) {
	for s, want := range map[string]bool{"2MB": true, "1GB": true, "64KB": true, "MB": false, "2M": false, "../x": false, "2XB": false} {
		if validPagesize(s) != want {
			t.Errorf("validPagesize(%q) != %v", s, want)
		}
	}
}

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major != -2 {
		d.Major = i64(major)
	}
	if minor != -2 {
		d.Minor = i64(minor)
	}
	return d
}

// -2 leaves major/minor nil.
const wild = -2

func TestDevicesV1Strings(t *testing.T) {
	rules, err := normalizeDevices([]specs.LinuxDeviceCgroup{
		dev(false, "a", wild, wild, "rwm"),
		dev(true, "c", 1, 3, "rwm"),
		dev(true, "c", 136, -1, "rw"),
		dev(true, "b", wild, wild, "m"),
		dev(true, "a", 10, 200, ""),
		dev(true, "p", wild, wild, "rwm"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		got = append(got, fmt.Sprint(r.allow, r.v1Strings()))
	}
	want := "false [a]|true [c 1:3 rwm]|true [c 136:* rw]|true [b *:* m]|true [c 10:200 rwm b 10:200 rwm]"
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("got  %s\nwant %s", g, want)
	}
	for _, bad := range []specs.LinuxDeviceCgroup{
		dev(true, "x", wild, wild, "rwm"), dev(true, "c", 1, 3, "rwx"), dev(true, "c", -5, 3, "r"),
	} {
		if _, err := normalizeDevices([]specs.LinuxDeviceCgroup{bad}); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}

// runDevProg interprets the subset of eBPF that devicesProgram emits, for
// one request: typ is 'b' or 'c', access a set of accRead|accWrite|accMknod.
func runDevProg(t *testing.T, insns asm.Instructions, typ byte, major, minor uint32, access uint32) bool {
	t.Helper()
	labels := map[string]int{}
	for i, ins := range insns {
		if s := ins.Symbol(); s != "" {
			labels[s] = i
		}
	}
	dt := uint32(devChar)
	if typ == 'b' {
		dt = devBlock
	}
	ctx := []uint32{access<<16 | dt, major, minor}
	var reg [11]uint64
	for pc, steps := 0, 0; ; steps++ {
		if pc < 0 || pc >= len(insns) || steps > 10000 {
			t.Fatalf("program ran off at pc %d", pc)
		}
		ins := insns[pc]
		op := ins.OpCode
		cls := op.Class()
		switch {
		case cls.IsLoad():
			if ins.Src != asm.R1 || op.Size() != asm.Word || ins.Offset%4 != 0 || ins.Offset > 8 {
				t.Fatalf("unexpected load %v", ins)
			}
			reg[ins.Dst] = uint64(ctx[ins.Offset/4])
		case cls.IsALU():
			src := uint64(ins.Constant)
			if op.Source() == asm.RegSource {
				src = reg[ins.Src]
			}
			switch op.ALUOp() {
			case asm.Mov:
				reg[ins.Dst] = src
			case asm.And:
				reg[ins.Dst] &= src
			case asm.RSh:
				reg[ins.Dst] >>= src
			default:
				t.Fatalf("unexpected alu %v", ins)
			}
		case cls.IsJump():
			jop := op.JumpOp()
			if jop == asm.Exit {
				return reg[asm.R0] == 1
			}
			if op.Source() != asm.ImmSource {
				t.Fatalf("unexpected jump %v", ins)
			}
			target, ok := labels[ins.Reference()]
			if !ok {
				t.Fatalf("unresolved label %q", ins.Reference())
			}
			var taken bool
			switch jop {
			case asm.JEq:
				taken = reg[ins.Dst] == uint64(ins.Constant)
			case asm.JNE:
				taken = reg[ins.Dst] != uint64(ins.Constant)
			default:
				t.Fatalf("unexpected jump %v", ins)
			}
			if taken {
				pc = target
				continue
			}
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
		pc++
	}
}

func TestDevicesProgramRules(t *testing.T) {
	type req struct {
		typ          byte
		major, minor uint32
		access       uint32
		want         bool
	}
	cases := []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		reqs  []req
	}{
		{
			name:  "empty list allows",
			rules: nil,
			reqs:  []req{{'c', 1, 3, accRead, true}, {'b', 8, 0, accAll, true}},
		},
		{
			name: "default deny with allow list",
			rules: []specs.LinuxDeviceCgroup{
				dev(false, "a", wild, wild, "rwm"),
				dev(true, "c", 1, 3, "rwm"),
				dev(true, "c", 1, 5, "r"),
				dev(true, "c", 136, wild, "rw"),
				dev(true, "b", wild, wild, "m"),
			},
			reqs: []req{
				{'c', 1, 3, accRead | accWrite, true},
				{'b', 1, 3, accRead, false}, // type matters
				{'c', 1, 5, accRead, true},
				{'c', 1, 5, accWrite, false},
				{'c', 1, 5, accRead | accWrite, false}, // allow must cover all bits
				{'c', 136, 7, accWrite, true},
				{'c', 136, 7, accMknod, false},
				{'b', 8, 1, accMknod, true},
				{'b', 8, 1, accRead, false},
				{'c', 1, 7, accRead, false},
			},
		},
		{
			name: "last match wins",
			rules: []specs.LinuxDeviceCgroup{
				dev(false, "a", wild, wild, "rwm"),
				dev(true, "c", 1, wild, "rwm"),
				dev(false, "c", 1, 7, "w"),
				dev(true, "c", 1, 9, "rwm"),
				dev(false, "c", 1, 9, ""),
			},
			reqs: []req{
				{'c', 1, 3, accWrite, true},
				{'c', 1, 7, accRead, true},
				{'c', 1, 7, accWrite, false},
				{'c', 1, 7, accRead | accWrite, false}, // a deny of wild bit denies
				{'c', 1, 9, accRead, false},
				{'c', 2, 9, accRead, false},
			},
		},
		{
			name: "default allow with denies",
			rules: []specs.LinuxDeviceCgroup{
				dev(true, "a", wild, wild, "rwm"),
				dev(false, "b", 8, wild, "w"),
			},
			reqs: []req{
				{'b', 8, 0, accWrite, false},
				{'b', 8, 0, accRead, true},
				{'c', 8, 0, accWrite, true},
			},
		},
		{
			name: "a later deny-all resets",
			rules: []specs.LinuxDeviceCgroup{
				dev(true, "c", 1, 3, "rwm"),
				dev(false, "", wild, wild, ""),
				dev(true, "c", 1, 5, "rwm"),
			},
			reqs: []req{{'c', 1, 3, accRead, false}, {'c', 1, 5, accRead, true}},
		},
		{
			name: "type a with numbers matches both types",
			rules: []specs.LinuxDeviceCgroup{
				dev(false, "a", wild, wild, "rwm"),
				dev(true, "a", 10, 200, "rw"),
			},
			reqs: []req{{'c', 10, 200, accRead, true}, {'b', 10, 200, accWrite, true}, {'b', 10, 201, accWrite, false}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules, err := normalizeDevices(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			prog := devicesProgram(rules)
			// Structure: starts with the context loads, ends with the
			// default verdict; every reference resolves.
			if len(prog) < 8 || prog[len(prog)-1].OpCode.JumpOp() != asm.Exit {
				t.Fatalf("bad program shape:\n%v", prog)
			}
			syms := map[string]bool{}
			for _, ins := range prog {
				if s := ins.Symbol(); s != "" {
					if syms[s] {
						t.Fatalf("duplicate symbol %s", s)
					}
					syms[s] = true
				}
			}
			for _, ins := range prog {
				if r := ins.Reference(); r != "" && !syms[r] {
					t.Fatalf("unresolved reference %s", r)
				}
			}
			for _, r := range c.reqs {
				if got := runDevProg(t, prog, r.typ, r.major, r.minor, r.access); got != r.want {
					t.Errorf("%c %d:%d %s: allowed=%v, want %v\n%v", r.typ, r.major, r.minor, accessString(r.access), got, r.want, prog)
				}
			}
		})
	}
}
