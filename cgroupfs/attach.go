package cgroupfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Attach is how a new process joins its cgroup without a migration of the
// whole process. Moving a process (a write to cgroup.procs) takes the
// kernel's cgroup_threadgroup_rwsem for writing, which waits for an RCU
// grace period (10-14 ms here, under cgroup_mutex, so every other cgroup
// operation on the host waits too). Two cheaper ways in:
//   - on cgroup2 the child is born in the cgroup (clone3 with
//     CLONE_INTO_CGROUP and Dir);
//   - on v1 the child writes "0" to each hierarchy's "tasks" file, which
//     moves only the calling thread and skips that lock. It must do so
//     from the thread that later calls execve, so that the program it
//     runs, and everything that thread forks, is in the cgroup; the
//     runtime's other threads end at execve.
//
// The files are opened by the caller, so the kernel checks the opener's
// credentials (as it does since CVE-2021-4197), not those of a child that
// may already be in a user namespace.
type Attach struct {
	// Dir is the cgroup2 directory: the whole cgroup on a Unified host,
	// the unified half on a Hybrid one, nil on Legacy.
	Dir *os.File
	// Tasks are the v1 hierarchies' "tasks" files, one per hierarchy.
	Tasks []*os.File
	// PidsMax is the pids.max of the pids controller, opened for writing
	// (see OpenPidsMax).
	PidsMax *os.File
	// pidsDir is the v1 pids hierarchy's directory, "" where the
	// controller is cgroup2's (or not mounted).
	pidsDir string
}

// OpenPidsMax opens the pids controller's pids.max (the v1 hierarchy's,
// or else Dir's) for writing, for the child to set the limit itself once
// its own work is done, before any of the container's runs. In the
// cgroup, a child that runs Go counts every thread of its runtime against
// pids.max, and the runtime dies when it cannot start one: a limit
// written by the parent while the child still works could kill it. The
// kernel checks the opener's cgroup namespace on each write, so the child
// may write after it has left for a namespace of its own.
func (a *Attach) OpenPidsMax() error {
	var fd int
	var err error
	switch {
	case a.pidsDir != "":
		fd, err = unix.Open(filepath.Join(a.pidsDir, "pids.max"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	case a.Dir != nil:
		fd, err = unix.Openat(int(a.Dir.Fd()), "pids.max", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	default:
		return errors.New("cgroupfs: no pids controller for pids.max")
	}
	if err != nil {
		return fmt.Errorf("open pids.max: %w", err)
	}
	a.PidsMax = os.NewFile(uintptr(fd), "pids.max")
	return nil
}

// PidsMaxValue is what pids.max takes for a limit: "max" for none.
func PidsMaxValue(limit int64) string {
	if limit > 0 {
		return fmtInt(limit)
	}
	return "max"
}

// Close closes the files; the child has its own copies.
func (a *Attach) Close() {
	if a == nil {
		return
	}
	if a.Dir != nil {
		a.Dir.Close()
	}
	for _, f := range a.Tasks {
		f.Close()
	}
	if a.PidsMax != nil {
		a.PidsMax.Close()
	}
}

func openDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open cgroup: %w", err)
	}
	return f, nil
}

// OpenAttach opens the cgroup directory for CLONE_INTO_CGROUP.
func (m *v2) OpenAttach() (*Attach, error) {
	f, err := openDir(m.dir)
	if err != nil {
		return nil, err
	}
	return &Attach{Dir: f}, nil
}

// OpenAttach opens every hierarchy's tasks file, and in the Hybrid layout
// the unified directory.
func (m *v1) OpenAttach() (a *Attach, err error) {
	a = &Attach{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	for _, mp := range m.hierarchies() {
		f, err := os.OpenFile(filepath.Join(mp, m.path, "tasks"), os.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
		a.Tasks = append(a.Tasks, f)
	}
	if len(a.Tasks) == 0 {
		return nil, errors.New("cgroupfs: no cgroup v1 controllers are mounted")
	}
	a.pidsDir = m.dir("pids")
	if m.unified != nil {
		if a.Dir, err = openDir(m.unified.dir); err != nil {
			return nil, err
		}
	}
	return a, nil
}
