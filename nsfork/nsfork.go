// Package nsfork starts a program by a real fork, one that shares no
// memory with berth. Go's own fork shares it (CLONE_VM|CLONE_VFORK), and
// berth is multi-threaded, so neither can do two things the runtime needs:
//
//   - join an existing user namespace: the kernel lets only a process with
//     one thread and its own fs_struct call setns(CLONE_NEWUSER);
//   - be the first process of a new time namespace on kernels (6.1 among
//     them) that refuse a CLONE_VM clone into one.
//
// The code between fork and execve runs in a copy of berth's address
// space, so it may only make raw system calls: no allocation, no stack
// growth, no locks. The runtime's fork hooks enforce the stack rule (a
// split there aborts the child, never the parent).
package nsfork

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The fork hooks package syscall uses around its own fork: they block
// signals and poison the stack guard before, and restore both after (in
// the child: reset handlers to the default first). The runtime exports
// them for linkname use.

//go:linkname beforeFork syscall.runtime_BeforeFork
func beforeFork()

//go:linkname afterFork syscall.runtime_AfterFork
func afterFork()

//go:linkname afterForkInChild syscall.runtime_AfterForkInChild
func afterForkInChild()

// Attr says what to start and how.
type Attr struct {
	Path string
	Args []string
	Env  []string
	// Files become the child's descriptors 0, 1, 2, ... in order. Every
	// other descriptor must be close-on-exec, as all of berth's are.
	Files []*os.File
	// UserNS, when set, is joined first, and the child becomes root of
	// that namespace (uid and gid 0, no supplementary groups), so that it
	// keeps its capabilities there across execve.
	UserNS *os.File
	// Cloneflags are the namespaces to create for the child. They are
	// created after UserNS is joined, so they belong to it.
	Cloneflags uintptr
	// CgroupDir, when set, is the cgroup v2 directory the child is born in
	// (CLONE_INTO_CGROUP).
	CgroupDir *os.File
}

// cloneArgs is struct clone_args up to the cgroup field (CLONE_ARGS_SIZE_VER2).
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// What the children report on the status socket, one record each.
const (
	recError   = 1 // step, errno
	recStarted = 2 // sent by the program's process just before execve
)

// The steps a child reports a failure at.
var steps = []string{"clone", "setns user namespace", "setresgid", "setresuid", "clone", "move descriptor", "set up descriptor", "execve"}

const (
	stepClone = iota
	stepSetnsUser
	stepSetresgid
	stepSetresuid
	stepClone2
	stepDupHigh
	stepDup
	stepExec
)

type record struct {
	kind, step uint32
	val        uint64
}

// child is everything the forked code reads, prepared before the fork.
type child struct {
	argv0      *byte
	argv, envv []*byte
	fds        []int32
	userns     int
	cloneflags uintptr
	first      cloneArgs
	pipe       int
	nextfd     int
	rec        record
}

// Start starts the program and returns it; the caller is its parent and
// must wait for it. Call it on a goroutine locked to its thread: the child
// is forked from that thread and takes on its namespaces.
func Start(a *Attr) (*os.Process, error) {
	if a.Cloneflags&unix.CLONE_NEWUSER != 0 {
		return nil, errors.New("nsfork: a new user namespace is not made here")
	}
	c := &child{userns: -1, cloneflags: a.Cloneflags}
	var err error
	if c.argv0, err = syscall.BytePtrFromString(a.Path); err != nil {
		return nil, fmt.Errorf("program path: %w", err)
	}
	if c.argv, err = syscall.SlicePtrFromStrings(a.Args); err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	if c.envv, err = syscall.SlicePtrFromStrings(a.Env); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	c.nextfd = len(a.Files)
	for _, f := range a.Files {
		fd := int32(f.Fd())
		c.fds = append(c.fds, fd)
		if int(fd) >= c.nextfd {
			c.nextfd = int(fd) + 1
		}
	}
	if a.UserNS != nil {
		c.userns = int(a.UserNS.Fd())
	}
	// A datagram-like socket, not a pipe: with SO_PASSCRED the kernel
	// stamps each record with the sender's pid as seen from here, and the
	// program may have been forked in another pid namespace.
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if err := unix.SetsockoptInt(p[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, fmt.Errorf("status socket: %w", err)
	}
	c.pipe = p[1]
	if p[1] >= c.nextfd {
		c.nextfd = p[1] + 1
	}
	// Without a user namespace to join, the program is the first child;
	// with one, a first child joins it and forks the program as a
	// sibling of itself (CLONE_PARENT), since new namespaces must be made
	// after the join and a new pid namespace takes only children.
	c.first = cloneArgs{exitSignal: uint64(unix.SIGCHLD)}
	if c.userns < 0 {
		c.first.flags = uint64(c.cloneflags)
	}
	if a.CgroupDir != nil {
		c.first.flags |= unix.CLONE_INTO_CGROUP
		c.first.cgroup = uint64(a.CgroupDir.Fd())
	}
	pid, errno := forkChild(c)
	unix.Close(p[1])
	// The children have their copies of the descriptors now; until here
	// no finalizer may close the files behind the numbers in c.
	runtime.KeepAlive(a)
	if errno != 0 {
		unix.Close(p[0])
		return nil, fmt.Errorf("clone: %w", errno)
	}
	prog, err := collect(p[0], int(pid), c.userns >= 0)
	unix.Close(p[0])
	if err != nil {
		return nil, err
	}
	return os.FindProcess(prog)
}

// collect reads the children's reports until the last of them exits or
// execs (which closes its end). On failure it ends and reaps whatever was
// started.
func collect(fd, first int, twoStage bool) (int, error) {
	prog := 0
	if !twoStage {
		prog = first
	}
	started := false
	var failure error
	buf := make([]byte, unsafe.Sizeof(record{}))
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for failure == nil {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			failure = fmt.Errorf("status socket: %w", err)
			break
		}
		if n == 0 {
			break
		}
		r := (*record)(unsafe.Pointer(&buf[0]))
		switch {
		case n != len(buf):
			failure = fmt.Errorf("status socket: short record")
		case r.kind == recStarted:
			pid, err := senderPid(oob[:oobn])
			if err != nil {
				failure = err
			} else {
				prog, started = pid, true
			}
		case r.kind == recError && int(r.step) < len(steps):
			failure = fmt.Errorf("%s: %w", steps[r.step], syscall.Errno(r.val))
		default:
			failure = fmt.Errorf("status socket: bad record %+v", *r)
		}
	}
	if twoStage {
		// The first child exits once it has forked the program.
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(first, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		if failure == nil && !started {
			failure = fmt.Errorf("the forked child ended (%s) before starting the program", describe(ws))
		}
	}
	if failure == nil && !started {
		failure = errors.New("the forked child ended before starting the program")
	}
	if failure != nil && prog > 0 {
		_ = unix.Kill(prog, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(prog, &ws, 0, nil)
	}
	if failure != nil {
		return 0, failure
	}
	return prog, nil
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", ws.ExitStatus())
}

// senderPid returns the pid the kernel stamped on a record.
func senderPid(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, fmt.Errorf("status socket: %w", err)
	}
	for i := range msgs {
		if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil && cred.Pid > 0 {
			return int(cred.Pid), nil
		}
	}
	return 0, errors.New("status socket: no sender pid on the start record")
}

// forkChild forks; the parent returns the first child's pid. The children
// never return: they exec the program or report and exit. Everything after
// beforeFork must be a raw system call (see the package comment).
//
//go:noinline
//go:norace
//go:nocheckptr
func forkChild(c *child) (pid uintptr, errno syscall.Errno) {
	var (
		r1, fd uintptr
		i      int
		e1     syscall.Errno
		zero   uintptr
	)
	beforeFork()
	r1, _, e1 = syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(&c.first)), unsafe.Sizeof(c.first), 0)
	if e1 != 0 || r1 != 0 {
		afterFork()
		return r1, e1
	}
	if c.userns >= 0 {
		if _, _, e1 = syscall.RawSyscall(unix.SYS_SETNS, uintptr(c.userns), unix.CLONE_NEWUSER, 0); e1 != 0 {
			fail(c, stepSetnsUser, e1)
		}
		// Refused where the namespace has setgroups denied; then there
		// are no groups to drop that matter inside it.
		syscall.RawSyscall(unix.SYS_SETGROUPS, 0, uintptr(unsafe.Pointer(&zero)), 0)
		if _, _, e1 = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0); e1 != 0 {
			fail(c, stepSetresgid, e1)
		}
		if _, _, e1 = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); e1 != 0 {
			fail(c, stepSetresuid, e1)
		}
		r1, _, e1 = syscall.RawSyscall6(unix.SYS_CLONE, unix.CLONE_PARENT|c.cloneflags|uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
		if e1 != 0 {
			fail(c, stepClone2, e1)
		}
		if r1 != 0 {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
	}
	// The program's process: descriptors first. Those that would be
	// overwritten before they are used move above all targets.
	if c.pipe < len(c.fds) {
		if fd, _, e1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(c.pipe), unix.F_DUPFD_CLOEXEC, uintptr(c.nextfd)); e1 != 0 {
			fail(c, stepDupHigh, e1)
		}
		c.pipe = int(fd)
		c.nextfd = int(fd) + 1
	}
	for i = 0; i < len(c.fds); i++ {
		if int(c.fds[i]) < i {
			if fd, _, e1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(c.fds[i]), unix.F_DUPFD_CLOEXEC, uintptr(c.nextfd)); e1 != 0 {
				fail(c, stepDupHigh, e1)
			}
			c.fds[i] = int32(fd)
			c.nextfd = int(fd) + 1
		}
	}
	for i = 0; i < len(c.fds); i++ {
		if int(c.fds[i]) == i {
			_, _, e1 = syscall.RawSyscall(unix.SYS_FCNTL, uintptr(i), unix.F_SETFD, 0)
		} else {
			_, _, e1 = syscall.RawSyscall(unix.SYS_DUP3, uintptr(c.fds[i]), uintptr(i), 0)
		}
		if e1 != 0 {
			fail(c, stepDup, e1)
		}
	}
	c.rec = record{kind: recStarted}
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.pipe), uintptr(unsafe.Pointer(&c.rec)), unsafe.Sizeof(c.rec))
	afterForkInChild()
	_, _, e1 = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(c.argv0)), uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.envv[0])))
	fail(c, stepExec, e1)
	return 0, 0 // not reached
}

// fail reports a child's failed step and ends the child.
//
//go:nosplit
//go:norace
func fail(c *child, step int, e syscall.Errno) {
	c.rec = record{kind: recError, step: uint32(step), val: uint64(e)}
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(c.pipe), uintptr(unsafe.Pointer(&c.rec)), unsafe.Sizeof(c.rec))
	syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
}
