package seccomp

import (
	"math/rand"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// refEval is a straightforward model of the documented semantics, used to
// check the compiled programs.
func refEval(t *testing.T, cfg *specs.LinuxSeccomp, audit, nr uint32, args [6]uint64) uint32 {
	t.Helper()
	defRet, err := actionRet(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[*archInfo]bool{archX86_64: true} // native
	for _, a := range cfg.Architectures {
		if info := supportedArches[a]; info != nil {
			listed[info] = true
		}
	}
	var info *archInfo
	switch {
	case audit == unix.AUDIT_ARCH_X86_64 && nr < x32SyscallBit:
		info = archX86_64
	case audit == unix.AUDIT_ARCH_X86_64:
		info = archX32
	case audit == unix.AUDIT_ARCH_I386:
		info = archX86
	}
	if info == nil || !listed[info] {
		return defRet
	}
	matches := func(s specs.LinuxSyscall) bool {
		for _, n := range s.Names {
			if v, ok := info.table()[n]; ok && v == nr {
				return true
			}
		}
		return false
	}
	for _, s := range cfg.Syscalls {
		if len(s.Args) == 0 || !matches(s) {
			continue
		}
		ok := true
		for _, c := range s.Args {
			if !refCond(c.Op, args[c.Index], c.Value, c.ValueTwo) {
				ok = false
			}
		}
		if ok {
			r, _ := actionRet(s.Action, s.ErrnoRet)
			return r
		}
	}
	for _, s := range cfg.Syscalls {
		if len(s.Args) == 0 && matches(s) {
			r, _ := actionRet(s.Action, s.ErrnoRet)
			return r
		}
	}
	return defRet
}

func TestRandomProfilesAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	names := sortedNames(syscallsX86_64())
	names = append(names, "socketcall", "_llseek", "mmap2", "stat64", "waitpid")
	actions := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess,
		specs.ActTrap, specs.ActLog, specs.ActTrace}
	values := []uint64{0, 1, 2, 0xff, 0xffffffff, 0x100000000, 0x1ffffffff, 0xffffffffffffffff, 0x8000000000000000, 0x7E020000}
	archSets := [][]specs.Arch{nil, {specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, {specs.ArchX86}, {specs.ArchX32}}
	audits := []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64}

	compiled := 0
	for iter := 0; iter < 40; iter++ {
		cfg := &specs.LinuxSeccomp{
			DefaultAction: actions[rng.Intn(len(actions))],
			Architectures: archSets[rng.Intn(len(archSets))],
		}
		if cfg.DefaultAction == specs.ActErrno {
			cfg.DefaultErrnoRet = uintp(uint(rng.Intn(200)))
		}
		nrules := 1 + rng.Intn(300)
		for i := 0; i < nrules; i++ {
			s := specs.LinuxSyscall{Action: actions[rng.Intn(len(actions))]}
			for j := rng.Intn(3) + 1; j > 0; j-- {
				s.Names = append(s.Names, names[rng.Intn(len(names))])
			}
			if s.Action == specs.ActErrno && rng.Intn(2) == 0 {
				s.ErrnoRet = uintp(uint(rng.Intn(4096)))
			}
			if rng.Intn(3) == 0 {
				for j := rng.Intn(3) + 1; j > 0; j-- {
					s.Args = append(s.Args, specs.LinuxSeccompArg{
						Index:    uint(rng.Intn(6)),
						Op:       allOps[rng.Intn(len(allOps))],
						Value:    values[rng.Intn(len(values))],
						ValueTwo: values[rng.Intn(len(values))],
					})
				}
			}
			cfg.Syscalls = append(cfg.Syscalls, s)
		}
		prog, err := Compile(cfg)
		if err != nil {
			if strings.Contains(err.Error(), "too long") {
				continue // a legitimate limit of classic BPF
			}
			t.Fatalf("iter %d: %v", iter, err)
		}
		compiled++
		for probe := 0; probe < 2000; probe++ {
			audit := audits[rng.Intn(len(audits))]
			name := names[rng.Intn(len(names))]
			var nr uint32
			switch {
			case rng.Intn(10) == 0:
				nr = rng.Uint32()
			case audit == unix.AUDIT_ARCH_I386:
				nr = syscallsX86()[name]
			case rng.Intn(4) == 0:
				nr = syscallsX32()[name]
			default:
				nr = syscallsX86_64()[name]
			}
			var args [6]uint64
			for k := range args {
				args[k] = values[rng.Intn(len(values))]
				if rng.Intn(4) == 0 {
					args[k] += uint64(rng.Intn(3)) - 1
				}
			}
			got, err := runBPF(prog, seccompData{nr: nr, arch: audit, args: args})
			if err != nil {
				t.Fatalf("iter %d: %v", iter, err)
			}
			if want := refEval(t, cfg, audit, nr, args); got != want {
				t.Fatalf("iter %d: arch %#x nr %#x args %#x: got %#x want %#x", iter, audit, nr, args, got, want)
			}
		}
	}
	t.Logf("%d of 40 random profiles compiled", compiled)
	if compiled < 30 {
		t.Fatalf("only %d of 40 random profiles compiled", compiled)
	}
}
