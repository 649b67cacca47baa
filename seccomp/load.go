package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	if len(prog) == 0 || len(prog) > maxInsns {
		return fmt.Errorf("seccomp: invalid program length %d", len(prog))
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		err := fmt.Errorf("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
		if errors.Is(errno, unix.EACCES) {
			err = fmt.Errorf("%w (no_new_privs is not set and the caller lacks CAP_SYS_ADMIN)", err)
		}
		return err
	}
	if r != 0 {
		// With TSYNC a positive return is the id of a thread that could not
		// be synchronised.
		return fmt.Errorf("seccomp: SECCOMP_FILTER_FLAG_TSYNC failed for thread %d", r)
	}
	return nil
}

// Filter is a compiled profile, ready to be installed.
type Filter struct {
	prog  []unix.SockFilter
	flags uint
}

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
	return &Filter{prog: prog, flags: flags}, nil
}

// Program returns the compiled BPF program and seccomp flags, to hand to
// another process (see FromProgram).
func (f *Filter) Program() ([]unix.SockFilter, uint) { return f.prog, f.flags }

// FromProgram rebuilds a Filter from Program's output.
func FromProgram(prog []unix.SockFilter, flags uint) (*Filter, error) {
	if len(prog) == 0 || len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: invalid program length %d", len(prog))
	}
	return &Filter{prog: prog, flags: flags}, nil
}

// Install loads the filter on the calling thread; see Load for the rules.
func (f *Filter) Install() error { return loadFilter(f.prog, f.flags) }
