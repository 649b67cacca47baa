package seccomp

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const afVsockTest = 40

func TestDefaultProfileShape(t *testing.T) {
	p := DefaultProfile(nil)
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Fatalf("default action %s/%v", p.DefaultAction, p.DefaultErrnoRet)
	}
	n := 0
	for _, s := range p.Syscalls {
		n += len(s.Names)
	}
	if n < 300 {
		t.Errorf("only %d syscall names in the default profile", n)
	}
	// Every name should be known on at least one architecture.
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_MODULE", "CAP_SYS_BOOT",
		"CAP_SYS_CHROOT", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO", "CAP_SYS_TIME",
		"CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"}} {
		for _, s := range DefaultProfile(caps).Syscalls {
			for _, name := range s.Names {
				_, a := syscallsX86_64()[name]
				_, b := syscallsX86()[name]
				if !a && !b && name != "send" && name != "recv" { // only on other arches
					t.Errorf("%s is unknown on x86_64 and i386", name)
				}
			}
		}
	}
}

func TestDefaultProfileCompiled(t *testing.T) {
	eperm := retErrno(uint32(unix.EPERM))
	enosys := retErrno(uint32(unix.ENOSYS))
	type check struct {
		nr   uint32
		args []uint64
		want uint32
	}
	common := []check{
		{unix.SYS_READ, nil, retAllow},
		{unix.SYS_EXECVE, nil, retAllow},
		{unix.SYS_ARCH_PRCTL, nil, retAllow},
		{unix.SYS_KEYCTL, nil, eperm},
		{unix.SYS_ADD_KEY, nil, eperm},
		{unix.SYS_KEXEC_LOAD, nil, eperm},
		{unix.SYS_IO_URING_SETUP, nil, eperm},
		{unix.SYS_PERSONALITY, []uint64{0}, retAllow},
		{unix.SYS_PERSONALITY, []uint64{0x20008}, retAllow},
		{unix.SYS_PERSONALITY, []uint64{0xffffffff}, retAllow},
		{unix.SYS_PERSONALITY, []uint64{0x0040000}, eperm},
		{unix.SYS_PERSONALITY, []uint64{0x1_00000000}, eperm},
		{unix.SYS_SOCKET, []uint64{unix.AF_INET}, retAllow},
		{unix.SYS_SOCKET, []uint64{unix.AF_UNIX}, retAllow},
		{unix.SYS_SOCKET, []uint64{afVsockTest}, eperm},
		{unix.SYS_CLONE, []uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND}, retAllow},
	}
	noAdmin := slices.Concat(common, []check{
		check{unix.SYS_CLONE, []uint64{unix.CLONE_NEWUSER}, eperm},
		check{unix.SYS_CLONE, []uint64{unix.CLONE_NEWNET | unix.CLONE_VM}, eperm},
		check{unix.SYS_CLONE3, nil, enosys},
		check{unix.SYS_UNSHARE, nil, eperm},
		check{unix.SYS_MOUNT, nil, eperm},
		check{unix.SYS_SETNS, nil, eperm},
		check{unix.SYS_PTRACE, nil, retAllow},
		check{unix.SYS_REBOOT, nil, eperm},
		check{unix.SYS_CHROOT, nil, eperm},
		check{unix.SYS_SYSLOG, nil, eperm},
		check{unix.SYS_BPF, nil, eperm},
	})
	admin := slices.Concat(common, []check{
		check{unix.SYS_CLONE, []uint64{unix.CLONE_NEWUSER}, retAllow},
		check{unix.SYS_CLONE3, nil, retAllow},
		check{unix.SYS_UNSHARE, nil, retAllow},
		check{unix.SYS_MOUNT, nil, retAllow},
		check{unix.SYS_UMOUNT2, nil, retAllow},
		check{unix.SYS_SETNS, nil, retAllow},
		check{unix.SYS_SYSLOG, nil, retAllow},
		check{unix.SYS_BPF, nil, retAllow},
		check{unix.SYS_REBOOT, nil, eperm},
		check{unix.SYS_CHROOT, []uint64{}, retAllow}, // CAP_SYS_CHROOT given below
	})
	for name, tc := range map[string]struct {
		caps   []string
		checks []check
	}{
		"nocaps": {nil, noAdmin},
		"admin":  {[]string{"CAP_SYS_ADMIN", "sys_chroot"}, admin},
	} {
		t.Run(name, func(t *testing.T) {
			p := mustCompile(t, DefaultProfile(tc.caps))
			for _, c := range tc.checks {
				if got := eval(t, p, auditX86_64, c.nr, c.args...); got != c.want {
					t.Errorf("nr %d args %#x: got %#x want %#x", c.nr, c.args, got, c.want)
				}
			}
			// i386 and x32 are covered too.
			if got := eval(t, p, auditI386, syscallsX86()["socketcall"]); got != retAllow {
				t.Errorf("i386 socketcall: %#x", got)
			}
			if got := eval(t, p, auditI386, syscallsX86()["keyctl"]); got != eperm {
				t.Errorf("i386 keyctl: %#x", got)
			}
			if got := eval(t, p, auditX86_64, syscallsX32()["execve"]); got != retAllow {
				t.Errorf("x32 execve: %#x", got)
			}
			if got := eval(t, p, unix.AUDIT_ARCH_AARCH64, 63); got != eperm {
				t.Errorf("aarch64 read: %#x", got)
			}
		})
	}
}

func TestLoadDefaultProfileExec(t *testing.T) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	out, err := runHelper(t, "exec", DefaultProfile(nil), nil,
		"BERTH_SECCOMP_SCRIPT=echo ok; cat /proc/self/status | grep -E '^(Seccomp|NoNewPrivs):'")
	if err != nil {
		t.Fatalf("exec under default profile: %v", err)
	}
	s := string(out)
	if !strings.HasPrefix(s, "ok\n") || !strings.Contains(s, "Seccomp:\t2") || !strings.Contains(s, "NoNewPrivs:\t1") {
		t.Fatalf("unexpected output %q", s)
	}
}

func TestLoadDefaultProfileCaps(t *testing.T) {
	calls := []call{
		sc(unix.SYS_UNSHARE, 0),
		sc(unix.SYS_MOUNT, 0, 0, 0, 0, 0),
		sc(unix.SYS_KEYCTL, 0 /* KEYCTL_GET_KEYRING_ID */, ^uintptr(0) /* thread keyring */, 0),
		// CLONE_NEWNS|CLONE_FS is rejected by the kernel with EINVAL, so
		// nothing is ever created when the filter lets it through.
		sc(unix.SYS_CLONE, unix.CLONE_NEWNS|unix.CLONE_FS),
		// CLONE_THREAD without CLONE_SIGHAND: EINVAL when allowed.
		sc(unix.SYS_CLONE, unix.CLONE_THREAD),
		// clone3(NULL, 0): EINVAL when allowed.
		sc(unix.SYS_CLONE3, 0, 0),
		sc(unix.SYS_SOCKET, afVsockTest, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0),
		sc(unix.SYS_GETPPID),
	}
	const (
		iUnshare = iota
		iMount
		iKeyctl
		iCloneNS
		iClonePlain
		iClone3
		iVsock
		iGetppid
	)
	eperm := int(unix.EPERM)

	res := probe(t, DefaultProfile(nil), calls...)
	for _, i := range []int{iUnshare, iMount, iKeyctl, iCloneNS, iVsock} {
		if res[i].Errno != eperm {
			t.Errorf("no CAP_SYS_ADMIN: call %d (nr %d) errno %d, want EPERM", i, calls[i].Nr, res[i].Errno)
		}
	}
	if res[iClone3].Errno != int(unix.ENOSYS) {
		t.Errorf("no CAP_SYS_ADMIN: clone3 errno %d, want ENOSYS", res[iClone3].Errno)
	}
	if res[iClonePlain].Errno != int(unix.EINVAL) {
		t.Errorf("no CAP_SYS_ADMIN: clone(CLONE_THREAD) errno %d, want EINVAL (allowed)", res[iClonePlain].Errno)
	}
	if res[iGetppid].Errno != 0 {
		t.Errorf("getppid errno %d", res[iGetppid].Errno)
	}

	res = probe(t, DefaultProfile([]string{"CAP_SYS_ADMIN"}), calls...)
	if res[iUnshare].Errno != 0 {
		t.Errorf("CAP_SYS_ADMIN: unshare(0) errno %d", res[iUnshare].Errno)
	}
	if res[iMount].Errno == eperm || res[iMount].Errno == 0 {
		t.Errorf("CAP_SYS_ADMIN: mount(NULL...) errno %d, want a kernel error other than EPERM", res[iMount].Errno)
	}
	if res[iKeyctl].Errno != eperm {
		t.Errorf("CAP_SYS_ADMIN: keyctl errno %d, want EPERM (never allowed by Docker's profile)", res[iKeyctl].Errno)
	}
	if res[iCloneNS].Errno != int(unix.EINVAL) {
		t.Errorf("CAP_SYS_ADMIN: clone(CLONE_NEWNS|CLONE_FS) errno %d, want EINVAL (allowed)", res[iCloneNS].Errno)
	}
	if res[iClone3].Errno != int(unix.EINVAL) {
		t.Errorf("CAP_SYS_ADMIN: clone3(NULL, 0) errno %d, want EINVAL (allowed)", res[iClone3].Errno)
	}
}

func TestLoadDefaultErrnoRet(t *testing.T) {
	cfg := DefaultProfile(nil)
	cfg.DefaultErrnoRet = uintPtr(uint(unix.EXDEV))
	res := probe(t, cfg, sc(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0), sc(unix.SYS_GETPPID))
	if res[0].Errno != int(unix.EXDEV) {
		t.Errorf("kexec_load errno = %d, want EXDEV", res[0].Errno)
	}
	if res[1].Errno != 0 {
		t.Errorf("getppid errno = %d", res[1].Errno)
	}
}
