// Package filter installs a compiled seccomp filter. It is apart from
// package seccomp, which compiles profiles (with its syscall tables and
// logging), so that the container init (cmd/berth-init) links only this.
package filter

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxInsns is BPF_MAXINSNS, the kernel's limit on a classic BPF program.
const MaxInsns = 4096

// Filter is a compiled profile, ready to be installed.
type Filter struct {
	prog  []unix.SockFilter
	flags uint
}

// Program returns the compiled BPF program and seccomp flags, to hand to
// another process (see FromProgram).
func (f *Filter) Program() ([]unix.SockFilter, uint) { return f.prog, f.flags }

// FromProgram rebuilds a Filter from Program's output.
func FromProgram(prog []unix.SockFilter, flags uint) (*Filter, error) {
	if len(prog) == 0 || len(prog) > MaxInsns {
		return nil, fmt.Errorf("seccomp: invalid program length %d", len(prog))
	}
	return &Filter{prog: prog, flags: flags}, nil
}

// Install loads the filter on the calling thread; see seccomp.Load for the rules.
func (f *Filter) Install() error { return loadFilter(f.prog, f.flags) }

func loadFilter(prog []unix.SockFilter, flags uint) error {
	if len(prog) == 0 || len(prog) > MaxInsns {
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
