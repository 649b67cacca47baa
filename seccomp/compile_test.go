package seccomp

import (
	"math/rand"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

const (
	auditX86_64 = unix.AUDIT_ARCH_X86_64
	auditI386   = unix.AUDIT_ARCH_I386
	retAllow    = unix.SECCOMP_RET_ALLOW
)

func retErrno(e uint32) uint32 { return unix.SECCOMP_RET_ERRNO | e }

func mustCompile(t *testing.T, cfg *specs.LinuxSeccomp) []unix.SockFilter {
	t.Helper()
	prog, err := Compile(cfg)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return prog
}

func eval(t *testing.T, prog []unix.SockFilter, arch, nr uint32, args ...uint64) uint32 {
	t.Helper()
	d := seccompData{nr: nr, arch: arch}
	copy(d.args[:], args)
	r, err := runBPF(prog, d)
	if err != nil {
		t.Fatalf("runBPF: %v", err)
	}
	return r
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  *specs.LinuxSeccomp
		want string
	}{
		{"nil", nil, "nil profile"},
		{"unknown default", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, "unknown action"},
		{"empty default", &specs.LinuxSeccomp{}, "empty action"},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "not supported"},
		{"notify rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActNotify}}}, "not supported"},
		{"unknown rule action", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: "SCMP_ACT_NOPE"}}}, "unknown action"},
		{"unknown arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_VAX"}}, "unknown architecture"},
		{"bad op", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ALMOST"}}}}}, "unknown argument operator"},
		{"bad index", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "out of range"},
		{"errno on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: specs.ActKill, ErrnoRet: uintp(3)}}}, "errnoRet is only valid"},
		{"errno too big", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(70000)}, "out of range"},
		{"no names", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "no syscall names"},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, "unknown flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	f, err := Flags(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
		specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"}})
	if err != nil {
		t.Fatal(err)
	}
	if f != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW|unix.SECCOMP_FILTER_FLAG_TSYNC {
		t.Fatalf("flags = %#x", f)
	}
}

func TestActionsAndArches(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(1),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchAARCH64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid", "read", "_llseek", "no_such_syscall"}, Action: specs.ActAllow},
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
			{Names: []string{"mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"kill"}, Action: specs.ActKill},
			{Names: []string{"tkill"}, Action: specs.ActKillProcess},
			{Names: []string{"tgkill"}, Action: specs.ActTrap},
			{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"uname"}, Action: specs.ActLog},
			{Names: []string{"getpid"}, Action: specs.ActAllow},                      // duplicate
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(1)}, // == default, dropped
		},
	}
	p := mustCompile(t, cfg)
	checks := []struct {
		arch, nr, want uint32
	}{
		{auditX86_64, unix.SYS_GETPID, retAllow},
		{auditX86_64, unix.SYS_READ, retAllow},
		{auditX86_64, unix.SYS_GETCWD, retErrno(38)},
		{auditX86_64, unix.SYS_MKDIRAT, retErrno(1)},
		{auditX86_64, unix.SYS_KILL, unix.SECCOMP_RET_KILL_THREAD},
		{auditX86_64, unix.SYS_TKILL, unix.SECCOMP_RET_KILL_PROCESS},
		{auditX86_64, unix.SYS_TGKILL, unix.SECCOMP_RET_TRAP},
		{auditX86_64, unix.SYS_PTRACE, unix.SECCOMP_RET_TRACE | 7},
		{auditX86_64, unix.SYS_UNAME, unix.SECCOMP_RET_LOG},
		{auditX86_64, unix.SYS_GETPPID, retErrno(1)},
		{auditX86_64, unix.SYS_WRITE, retErrno(1)},
		// x32 is not listed: default action even for allowed names.
		{auditX86_64, syscallsX32()["getpid"], retErrno(1)},
		// i386 has its own numbers.
		{auditI386, syscallsX86()["getpid"], retAllow},
		{auditI386, syscallsX86()["_llseek"], retAllow},
		{auditI386, syscallsX86()["getcwd"], retErrno(38)},
		{auditI386, unix.SYS_GETPID, retErrno(1)}, // 39 is mkdir on i386: not allowed
		// Unlisted arch.
		{unix.AUDIT_ARCH_AARCH64, 172, retErrno(1)},
	}
	for _, c := range checks {
		if got := eval(t, p, c.arch, c.nr); got != c.want {
			t.Errorf("arch %#x nr %d: got %#x want %#x", c.arch, c.nr, got, c.want)
		}
	}
}

func TestX32(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid", "ioctl"}, Action: specs.ActAllow},
		},
	}
	p := mustCompile(t, cfg)
	if got := eval(t, p, auditX86_64, x32SyscallBit|unix.SYS_GETPID); got != retAllow {
		t.Errorf("x32 getpid: %#x", got)
	}
	if got := eval(t, p, auditX86_64, x32SyscallBit|514); got != retAllow {
		t.Errorf("x32 ioctl (514): %#x", got)
	}
	if got := eval(t, p, auditX86_64, x32SyscallBit|unix.SYS_IOCTL); got != retErrno(1) {
		t.Errorf("x32 64-bit ioctl number must not be allowed: %#x", got)
	}
	if got := eval(t, p, auditX86_64, unix.SYS_IOCTL); got != retAllow {
		t.Errorf("x86_64 ioctl: %#x", got)
	}
	if got := eval(t, p, auditI386, 20); got != retErrno(1) {
		t.Errorf("i386 not listed: %#x", got)
	}
}

// refCond is the reference semantics of one condition.
func refCond(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
	switch op {
	case specs.OpEqualTo:
		return arg == v
	case specs.OpNotEqual:
		return arg != v
	case specs.OpLessThan:
		return arg < v
	case specs.OpLessEqual:
		return arg <= v
	case specs.OpGreaterThan:
		return arg > v
	case specs.OpGreaterEqual:
		return arg >= v
	case specs.OpMaskedEqual:
		return arg&v == v2
	}
	panic(op)
}

var allOps = []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
	specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}

func TestArgOpsAgainstReference(t *testing.T) {
	interesting := []uint64{0, 1, 2, 0xfffffffe, 0xffffffff, 0x100000000, 0x100000001, 0x1ffffffff,
		0x200000000, 0x7fffffffffffffff, 0x8000000000000000, 0xfffffffffffffffe, 0xffffffffffffffff,
		0x123456789abcdef0, 0x0000000500000005}
	rng := rand.New(rand.NewSource(1))
	for _, op := range allOps {
		for _, v := range interesting {
			v2 := v & 0x0000ffff0000ffff
			cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
				Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(99),
				Args: []specs.LinuxSeccompArg{{Index: 3, Op: op, Value: v, ValueTwo: v2}},
			}}}
			p := mustCompile(t, cfg)
			tests := append([]uint64{}, interesting...)
			for _, x := range interesting {
				tests = append(tests, x+1, x-1, x^0xffffffff, x^0xffffffff00000000, rng.Uint64())
			}
			for _, arg := range tests {
				want := uint32(retAllow)
				if refCond(op, arg, v, v2) {
					want = retErrno(99)
				}
				if got := eval(t, p, auditX86_64, unix.SYS_GETPPID, 0, 0, 0, arg); got != want {
					t.Fatalf("%s value %#x valueTwo %#x arg %#x: got %#x want %#x", op, v, v2, arg, got, want)
				}
			}
		}
	}
}

func TestArgsAndedAndOrdering(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActAllow},
		{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(20), Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpGreaterEqual, Value: 10},
			{Index: 0, Op: specs.OpLessThan, Value: 20},
			{Index: 1, Op: specs.OpEqualTo, Value: 5},
		}},
		{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(21), Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpEqualTo, Value: 15},
		}},
	}}
	p := mustCompile(t, cfg)
	cases := []struct {
		a0, a1 uint64
		want   uint32
	}{
		{15, 5, retErrno(20)},
		{10, 5, retErrno(20)},
		{20, 5, retAllow},
		{15, 6, retErrno(21)},
		{9, 5, retAllow},
		{0, 0, retAllow},
	}
	for _, c := range cases {
		if got := eval(t, p, auditX86_64, unix.SYS_GETPPID, c.a0, c.a1); got != c.want {
			t.Errorf("args %d,%d: got %#x want %#x", c.a0, c.a1, got, c.want)
		}
	}
	// Conditional rule without an unconditional one falls back to default.
	cfg = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(13), Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}}},
	}}
	p = mustCompile(t, cfg)
	if got := eval(t, p, auditX86_64, unix.SYS_PERSONALITY, 0xffffffff); got != retAllow {
		t.Errorf("personality(0xffffffff): %#x", got)
	}
	if got := eval(t, p, auditX86_64, unix.SYS_PERSONALITY, 0x1ffffffff); got != retErrno(13) {
		t.Errorf("personality(0x1ffffffff): %#x", got)
	}
}

// longProfile returns a profile with one rule per x86_64 syscall number
// (more than 255 rules), each conditioned on a magic arg5 and returning a
// distinct errno.
func longProfile() (*specs.LinuxSeccomp, map[string]uint) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	errnos := map[string]uint{}
	names := sortedNames(syscallsX86_64())
	for i, name := range names {
		e := uint(100 + i)
		errnos[name] = e
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{
			Names: []string{name}, Action: specs.ActErrno, ErrnoRet: uintp(e),
			Args: []specs.LinuxSeccompArg{{Index: 5, Op: specs.OpEqualTo, Value: longMagic}},
		})
	}
	return cfg, errnos
}

const longMagic = 0x5eccdeadbeef

func sortedNames(tbl map[string]uint32) []string {
	names := make([]string, 0, len(tbl))
	for n := range tbl {
		names = append(names, n)
	}
	// Sort by number so that the first and last entries are the first and
	// last in the generated program.
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && (tbl[names[j]] < tbl[names[j-1]] || tbl[names[j]] == tbl[names[j-1]] && names[j] < names[j-1]); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

func TestLongProfileJumps(t *testing.T) {
	cfg, errnos := longProfile()
	if len(cfg.Syscalls) <= 255 {
		t.Fatalf("only %d rules", len(cfg.Syscalls))
	}
	p := mustCompile(t, cfg)
	if len(p) <= 256 {
		t.Fatalf("program unexpectedly short: %d", len(p))
	}
	hasJA := false
	for _, in := range p {
		if in.Code == unix.BPF_JMP|unix.BPF_JA {
			hasJA = true
		}
	}
	if !hasJA {
		t.Errorf("expected trampolines in a %d-instruction program", len(p))
	}
	for name, e := range errnos {
		nr := syscallsX86_64()[name]
		if got := eval(t, p, auditX86_64, nr, 0, 0, 0, 0, 0, longMagic); got != retErrno(uint32(e)) {
			// Several names can share a number (aliases); accept the first rule's errno.
			if got&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_ERRNO {
				t.Errorf("%s (%d): got %#x want errno %d", name, nr, got, e)
			}
		}
		if got := eval(t, p, auditX86_64, nr, 0, 0, 0, 0, 0, longMagic+1); got != retAllow {
			t.Errorf("%s (%d) without magic: got %#x", name, nr, got)
		}
	}
	// Unconditional long allowlist with a denying default.
	cfg = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
	for _, name := range sortedNames(syscallsX86_64()) {
		if name == "getcwd" {
			continue
		}
		cfg.Syscalls = append(cfg.Syscalls, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow})
	}
	p = mustCompile(t, cfg)
	for name, nr := range syscallsX86_64() {
		want := uint32(retAllow)
		if name == "getcwd" {
			want = retErrno(1)
		}
		if got := eval(t, p, auditX86_64, nr); got != want {
			t.Errorf("%s: got %#x want %#x", name, got, want)
		}
	}
	if got := eval(t, p, auditX86_64, 5000); got != retErrno(1) {
		t.Errorf("unknown nr: %#x", got)
	}
}

func TestTablesSane(t *testing.T) {
	for name, nr := range map[string]uint32{"read": 0, "getpid": 39, "clone3": 435, "openat": 257} {
		if syscallsX86_64()[name] != nr {
			t.Errorf("x86_64 %s = %d, want %d", name, syscallsX86_64()[name], nr)
		}
	}
	for name, nr := range map[string]uint32{"exit": 1, "getpid": 20, "socketcall": 102, "clone3": 435, "_llseek": 140} {
		if syscallsX86()[name] != nr {
			t.Errorf("i386 %s = %d, want %d", name, syscallsX86()[name], nr)
		}
	}
	if syscallsX32()["ioctl"] != x32SyscallBit|514 || syscallsX32()["getpid"] != x32SyscallBit|39 {
		t.Errorf("x32 table wrong")
	}
	if _, ok := syscallsX32()["uselib"]; ok {
		t.Errorf("x32 must not have uselib")
	}
}
