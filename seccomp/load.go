package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/seccomp/filter"
)

// Load compiles cfg and installs the filter with
// seccomp(SECCOMP_SET_MODE_FILTER, flags).
//
// Seccomp filters are per thread (unless SECCOMP_FILTER_FLAG_TSYNC is set),
// so Load must be called on a goroutine locked to its OS thread with
// runtime.LockOSThread, and that same thread must then execve the container
// process. Load does not set no_new_privs; the caller must do so first
// (prctl(PR_SET_NO_NEW_PRIVS, 1)) unless it has CAP_SYS_ADMIN.
//
// After Load returns, every syscall of the thread is filtered, including the
// Go runtime's own: make sure the profile allows what the caller still needs
// before execve (the Docker default profile does).
func Load(cfg *specs.LinuxSeccomp) error {
	flags, err := Flags(cfg)
	if err != nil {
		return err
	}
	prog, err := Compile(cfg)
	if err != nil {
		return err
	}
	return loadFilter(prog, flags)
}

func loadFilter(prog []unix.SockFilter, flags uint) error {
	f, err := filter.FromProgram(prog, flags)
	if err != nil {
		return err
	}
	return f.Install()
}

// Filter is a compiled profile, ready to be installed.
type Filter = filter.Filter

// Prepare compiles cfg once, so that a bad profile fails early and the
// install right before execve does no work but the syscall.
func Prepare(cfg *specs.LinuxSeccomp) (*Filter, error) {
	flags, err := Flags(cfg)
	if err != nil {
		return nil, err
	}
	prog, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	return filter.FromProgram(prog, flags)
}
