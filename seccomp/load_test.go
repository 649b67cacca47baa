package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The real tests re-execute the test binary in a helper mode selected by
// helperEnv. The child locks its thread, sets no_new_privs, loads the
// profile passed in profileEnv and then either makes the raw syscalls listed
// in callsEnv (printing the results as JSON) or execs a shell.
const (
	helperEnv  = "BERTH_SECCOMP_HELPER"
	profileEnv = "BERTH_SECCOMP_PROFILE"
	callsEnv   = "BERTH_SECCOMP_CALLS"
)

type call struct {
	Nr   uintptr    `json:"nr"`
	Args [6]uintptr `json:"args"`
}

type result struct {
	R1    uintptr `json:"r1"`
	Errno int     `json:"errno"`
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

func helperMain(mode string) int {
	runtime.LockOSThread()
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(profileEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper: bad profile:", err)
		return 90
	}
	var calls []call
	if s := os.Getenv(callsEnv); s != "" {
		if err := json.Unmarshal([]byte(s), &calls); err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad calls:", err)
			return 91
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "helper: no_new_privs:", err)
		return 92
	}
	if err := Load(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "helper: load:", err)
		return 93
	}
	switch mode {
	case "exec":
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", os.Getenv("BERTH_SECCOMP_SCRIPT")}, os.Environ())
		fmt.Fprintln(os.Stderr, "helper: exec:", err)
		return 94
	}
	res := make([]result, len(calls))
	for i, c := range calls {
		r1, _, errno := unix.RawSyscall6(c.Nr, c.Args[0], c.Args[1], c.Args[2], c.Args[3], c.Args[4], c.Args[5])
		res[i] = result{R1: r1, Errno: int(errno)}
	}
	out, _ := json.Marshal(res)
	os.Stdout.Write(out)
	return 0
}

// runHelper runs the helper and returns its stdout and wait error.
func runHelper(t *testing.T, mode string, cfg *specs.LinuxSeccomp, calls []call, extraEnv ...string) ([]byte, error) {
	t.Helper()
	out, _, err := runHelper2(t, mode, cfg, calls, extraEnv...)
	return out, err
}

// runHelper2 is runHelper that also returns the helper's stderr.
func runHelper2(t *testing.T, mode string, cfg *specs.LinuxSeccomp, calls []call, extraEnv ...string) ([]byte, string, error) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skip("loader tests use x86_64 syscall numbers")
	}
	pj, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cj, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, profileEnv+"="+string(pj), callsEnv+"="+string(cj))
	cmd.Env = append(cmd.Env, extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil && mode != "trap" {
		t.Logf("helper stderr: %s", stderr.String())
	}
	return stdout.Bytes(), stderr.String(), err
}

func probe(t *testing.T, cfg *specs.LinuxSeccomp, calls ...call) []result {
	t.Helper()
	out, err := runHelper(t, "probe", cfg, calls)
	if err != nil {
		t.Fatalf("helper failed: %v", err)
	}
	var res []result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if len(res) != len(calls) {
		t.Fatalf("got %d results for %d calls", len(res), len(calls))
	}
	return res
}

func sc(nr uintptr, args ...uintptr) call {
	c := call{Nr: nr}
	copy(c.Args[:], args)
	return c
}

func TestLoadErrnoAndAllow(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
			{Names: []string{"mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"uname"}, Action: specs.ActLog},
		},
	}
	res := probe(t, cfg,
		sc(unix.SYS_GETCWD, 0, 0),
		sc(unix.SYS_MKDIRAT, ^uintptr(0), 0, 0), // would be EBADF/EFAULT if allowed
		sc(unix.SYS_GETPPID),
		sc(unix.SYS_UNAME, 0), // LOG allows: kernel sees NULL -> EFAULT
	)
	if res[0].Errno != 38 {
		t.Errorf("getcwd errno = %d, want 38", res[0].Errno)
	}
	if res[1].Errno != int(unix.EPERM) {
		t.Errorf("mkdirat errno = %d, want EPERM", res[1].Errno)
	}
	if res[2].Errno != 0 || int(res[2].R1) != os.Getpid() {
		t.Errorf("getppid = %d errno %d, want %d", res[2].R1, res[2].Errno, os.Getpid())
	}
	if res[3].Errno != int(unix.EFAULT) {
		t.Errorf("uname(NULL) with LOG errno = %d, want EFAULT (allowed)", res[3].Errno)
	}
}

func TestLoadArgConditions(t *testing.T) {
	const deny = 77
	rule := func(op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSyscall {
		// getppid ignores its arguments, so any value is safe to pass.
		return specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(deny),
			Args: []specs.LinuxSeccompArg{{Index: 2, Op: op, Value: v, ValueTwo: v2}}}
	}
	type probeCase struct {
		arg    uint64
		denied bool
	}
	cases := []struct {
		op     specs.LinuxSeccompOperator
		v, v2  uint64
		probes []probeCase
	}{
		{specs.OpEqualTo, 0x500000007, 0, []probeCase{{0x500000007, true}, {7, false}, {0x500000000, false}, {0x400000007, false}}},
		{specs.OpNotEqual, 0x500000007, 0, []probeCase{{0x500000007, false}, {7, true}, {0x600000007, true}}},
		{specs.OpGreaterThan, 0x500000007, 0, []probeCase{{0x500000008, true}, {0x500000007, false}, {0x600000000, true}, {0x4ffffffff, false}, {0xffffffff, false}}},
		{specs.OpGreaterEqual, 0x500000007, 0, []probeCase{{0x500000007, true}, {0x500000006, false}, {0x600000000, true}, {0x400000009, false}}},
		{specs.OpLessThan, 0x500000007, 0, []probeCase{{0x500000006, true}, {0x500000007, false}, {0x4ffffffff, true}, {0x600000000, false}, {0x500000008, false}}},
		{specs.OpLessEqual, 0x500000007, 0, []probeCase{{0x500000007, true}, {0x500000008, false}, {0x400000009, true}, {0x600000000, false}}},
		{specs.OpMaskedEqual, 0xff000000_0000ff00, 0x12000000_00003400, []probeCase{{0x12abcdef_00003456, true}, {0x12000000_00003300, false}, {0x13000000_00003400, false}, {0x00003400, false}}},
	}
	for _, c := range cases {
		t.Run(string(c.op), func(t *testing.T) {
			cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{rule(c.op, c.v, c.v2)}}
			var calls []call
			for _, p := range c.probes {
				calls = append(calls, sc(unix.SYS_GETPPID, 0, 0, uintptr(p.arg)))
			}
			res := probe(t, cfg, calls...)
			for i, p := range c.probes {
				want := 0
				if p.denied {
					want = deny
				}
				if res[i].Errno != want {
					t.Errorf("%s %#x: arg %#x errno %d, want %d", c.op, c.v, p.arg, res[i].Errno, want)
				}
			}
		})
	}
}

func TestLoadPersonalityAndSocket(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}}},
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES))},
			// socket: only AF_UNIX (1); everything else EAFNOSUPPORT.
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: unix.AF_UNIX}}},
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EAFNOSUPPORT))},
		},
	}
	res := probe(t, cfg,
		sc(unix.SYS_PERSONALITY, 0xffffffff),
		sc(unix.SYS_PERSONALITY, 0x0040000 /* ADDR_NO_RANDOMIZE */),
		sc(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0),
		sc(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0),
	)
	if res[0].Errno != 0 {
		t.Errorf("personality(query) errno %d", res[0].Errno)
	}
	if res[1].Errno != int(unix.EACCES) {
		t.Errorf("personality(ADDR_NO_RANDOMIZE) errno %d, want EACCES", res[1].Errno)
	}
	if res[2].Errno != 0 {
		t.Errorf("socket(AF_UNIX) errno %d", res[2].Errno)
	}
	if res[3].Errno != int(unix.EAFNOSUPPORT) {
		t.Errorf("socket(AF_INET) errno %d, want EAFNOSUPPORT", res[3].Errno)
	}
}

func TestLoadKillProcess(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xdead}}},
	}}
	_, err := runHelper(t, "probe", cfg, []call{sc(unix.SYS_GETPPID, 0xdead)})
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper not killed: %v", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("helper status %v, want killed by SIGSYS", ws)
	}
}

func TestLoadTrap(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xbeef}}},
	}}
	// Go turns a seccomp SIGSYS (si_code SYS_SECCOMP == 1) into a fatal
	// "bad system call" throw, which is proof enough that SIGSYS came from
	// the filter rather than a kill.
	_, stderr, err := runHelper2(t, "trap", cfg, []call{sc(unix.SYS_GETPPID, 0xbeef)})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("trap: err %v, want exit status 2", err)
	}
	if !strings.Contains(stderr, "SIGSYS: bad system call") || !strings.Contains(stderr, "sigcode=1") {
		t.Fatalf("trap: stderr does not show a seccomp SIGSYS:\n%s", stderr)
	}
}

func TestLoadFlags(t *testing.T) {
	cfg := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, "SECCOMP_FILTER_FLAG_TSYNC"},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(38)},
		}}
	res := probe(t, cfg, sc(unix.SYS_GETCWD, 0, 0))
	if res[0].Errno != 38 {
		t.Errorf("getcwd errno %d", res[0].Errno)
	}
}

func TestLoadLongProfile(t *testing.T) {
	cfg, errnos := longProfile()
	names := sortedNames(syscallsX86_64())
	first, last := names[0], names[len(names)-1]
	mid := "getppid"
	res := probe(t, cfg,
		sc(uintptr(syscallsX86_64()[first]), ^uintptr(0), 0, 0, 0, 0, longMagic),
		sc(uintptr(syscallsX86_64()[last]), ^uintptr(0), 0, 0, 0, 0, longMagic),
		sc(uintptr(syscallsX86_64()[mid]), 0, 0, 0, 0, 0, longMagic),
		sc(uintptr(syscallsX86_64()[mid])),
		sc(uintptr(syscallsX86_64()[first]), ^uintptr(0), 0, 0),
	)
	for i, name := range []string{first, last, mid} {
		if res[i].Errno != int(errnos[name]) {
			t.Errorf("%s: errno %d, want %d", name, res[i].Errno, errnos[name])
		}
	}
	if res[3].Errno != 0 {
		t.Errorf("getppid without magic: errno %d", res[3].Errno)
	}
	if first == "read" && res[4].Errno != int(unix.EBADF) {
		t.Errorf("read(-1) without magic: errno %d, want EBADF", res[4].Errno)
	}
}

func TestLoadInvalidProgram(t *testing.T) {
	// Sanity check of the error path: an invalid program is refused by the
	// kernel with a wrapped error (run in-process: nothing is installed).
	err := loadFilter([]unix.SockFilter{{Code: 0xffff}}, 0)
	if err == nil {
		t.Fatal("kernel accepted an invalid filter")
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EACCES) {
		t.Errorf("unexpected error %v", err)
	}
}
