package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/internal/liveness"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/nsfork"
	"github.com/berth-project/berth/state"
)

// IO is the stdio a container's process gets: the very files, not copies.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

func (o IO) orStd() IO {
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	return o
}

// CreateOpts are the options of create and run.
type CreateOpts struct {
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	PreserveFDs   int
	IO            IO
	// Spec, when set, is used instead of bundle/config.json.
	Spec *specs.Spec
	// Foreground is set when the caller stays the parent and, for a
	// terminal without a console socket, relays the pty itself.
	Foreground bool
	// NoCgroup: the container gets no cgroup of its own and stays in the
	// caller's (berth run --cgroups=disabled); spec.Linux.CgroupsPath and
	// the resources are not applied.
	NoCgroup bool
	// Complete, with Spec, gives the whole spec once the init runs:
	// Spec then only starts the init, so that the caller's own set-up
	// (root mount, network) runs while the init's program starts. What
	// the start took from Spec (namespaces, cgroup, resources, terminal,
	// id maps, time offsets) must not change; that is checked.
	Complete func() (*specs.Spec, error)
	// Fork, when set, has another process fork the init and become its
	// parent: a detached container's lean monitor, started ahead, so
	// that no second berth has to start and hand the container over.
	// Only for an init that joins no namespace before its fork and makes
	// no user or time namespace: those are forked from this process.
	Fork func(*ForkRequest) (pid int, err error)
}

// ForkRequest is the init's fork for CreateOpts.Fork: the program, its
// arguments and environment, Files as its descriptors 0, 1, 2, ..., the
// namespaces to clone and the cgroup2 directory to be born in (nil: the
// forking process's own).
type ForkRequest struct {
	Path       string
	Args, Env  []string
	Files      []*os.File
	Cloneflags uintptr
	CgroupDir  *os.File
}

// Proc is a process berth started and is the parent of, or (ProcOf) one
// another berth process waits for.
type Proc struct {
	proc    *os.Process
	wait    func() (int, error)
	Pid     int
	Console *os.File // pty master, for a terminal without a console socket
}

// ProcOf is process pid, whose parent is another process: wait reports
// its exit status as Wait does.
func ProcOf(pid int, console *os.File, wait func() (int, error)) *Proc {
	return &Proc{Pid: pid, Console: console, wait: wait}
}

// Wait waits for the process and returns its exit status in the shell's
// convention (128+n when killed by signal n).
func (p *Proc) Wait() (int, error) {
	if p.wait != nil {
		return p.wait()
	}
	st, err := p.proc.Wait()
	if err != nil {
		return 125, fmt.Errorf("wait: %w", err)
	}
	ws := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// Create creates a container from a bundle and leaves its init waiting
// for Start.
func (r *Runtime) Create(id string, o CreateOpts) (*state.Container, *Proc, error) {
	warmCodec()
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	if o.Spec == nil {
		if early, plan, ok := earlyStart(id, bundle, o); ok {
			return r.createEarly(id, bundle, early, plan, o)
		}
	}
	if o.Spec != nil && o.Complete != nil {
		return r.createLate(id, bundle, o)
	}
	spec := o.Spec
	if spec == nil {
		if spec, err = LoadSpec(bundle); err != nil {
			return nil, nil, err
		}
	} else if err := Validate(spec, bundle); err != nil {
		return nil, nil, err
	}
	if err := state.ValidateID(id); err != nil {
		return nil, nil, err
	}
	plan, err := namespaces.PlanFor(spec.Linux.Namespaces)
	if err != nil {
		return nil, nil, err
	}
	if err := checkSpec(spec, plan); err != nil {
		return nil, nil, err
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && !o.Foreground {
		return nil, nil, errors.New("process.terminal needs --console-socket")
	}
	return r.createLocked(id, bundle, launchOf(spec), func() (*specs.Spec, error) { return spec, nil }, plan, o)
}

// createEarly starts the init before the whole spec is decoded and
// checked: a Go process takes milliseconds to start, and the cold decode
// and checks of config.json take over one of them, so they are done
// while the init starts. Any error then ends the init and leaves nothing
// behind, as before.
func (r *Runtime) createEarly(id, bundle string, early *earlyConfig, plan *namespaces.Plan, o CreateOpts) (*state.Container, *Proc, error) {
	full := func() (*specs.Spec, error) {
		spec, err := parseSpec(early.data, bundle)
		if err != nil {
			return nil, err
		}
		if err := checkSpec(spec, plan); err != nil {
			return nil, err
		}
		return spec, nil
	}
	// The pids limit only: the init writes it (see prepareCgroup).
	ls := launchSpec{cgroupsPath: early.Linux.CgroupsPath, terminal: early.Process.Terminal}
	if early.Linux.Resources.Pids != nil {
		ls.resources = &specs.LinuxResources{Pids: early.Linux.Resources.Pids}
	}
	return r.createLocked(id, bundle, ls, full, plan, o)
}

// createLate starts the init from o.Spec, then takes the whole spec from
// o.Complete (see CreateOpts.Complete).
func (r *Runtime) createLate(id, bundle string, o CreateOpts) (*state.Container, *Proc, error) {
	if err := state.ValidateID(id); err != nil {
		return nil, nil, err
	}
	if o.Spec.Linux == nil || o.Spec.Process == nil {
		return nil, nil, errors.New("spec: linux or process is missing")
	}
	// The network namespace's file may be made by Complete; the init
	// joins it (see create), and the full spec's plan must be this one.
	plan, err := namespaces.PlanBefore(o.Spec.Linux.Namespaces, specs.NetworkNamespace)
	if err != nil {
		return nil, nil, err
	}
	if plan.Has(specs.UserNamespace) || plan.Clone&unix.CLONE_NEWNS == 0 {
		// The root is passed to the init's own mount namespace, and
		// only a host's network namespace may be joined by the init.
		return nil, nil, errors.New("a late spec needs a new mount namespace and no user namespace")
	}
	if o.Spec.Process.Terminal && o.ConsoleSocket == "" && !o.Foreground {
		return nil, nil, errors.New("process.terminal needs --console-socket")
	}
	ls := launchOf(o.Spec)
	ls.seccomp = compileAhead(o.Spec.Linux.Seccomp)
	full := func() (*specs.Spec, error) {
		spec, err := o.Complete()
		if err != nil {
			return nil, err
		}
		if err := Validate(spec, bundle); err != nil {
			return nil, err
		}
		got, err := namespaces.PlanFor(spec.Linux.Namespaces)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(got, plan) || !reflect.DeepEqual(launchOf(spec), launchOf(o.Spec)) {
			return nil, errors.New("the spec changed what the container's init was started with")
		}
		if err := checkSpec(spec, plan); err != nil {
			return nil, err
		}
		return spec, nil
	}
	return r.createLocked(id, bundle, ls, full, plan, o)
}

func (r *Runtime) createLocked(id, bundle string, ls launchSpec, full func() (*specs.Spec, error), plan *namespaces.Plan, o CreateOpts) (*state.Container, *Proc, error) {
	lock, err := r.Store.Create(id)
	if err != nil {
		return nil, nil, err
	}
	defer lock.Unlock()
	// Named before it is made: should this process die before the record
	// is written, delete still finds the cgroup to remove.
	note := ""
	if !o.NoCgroup {
		note = cgroupfs.SpecPath(ls.cgroupsPath, id)
	}
	if err := os.WriteFile(r.cgroupNotePath(id), []byte(note), 0o600); err != nil {
		_ = r.Store.Remove(id)
		return nil, nil, fmt.Errorf("create state of %s: %w", id, err)
	}
	c, proc, err := r.create(id, bundle, ls, full, plan, o)
	if err != nil {
		if rerr := r.Store.Remove(id); rerr != nil {
			logrus.Warnf("clean up %s: %v", id, rerr)
		}
		return nil, nil, err
	}
	return c, proc, nil
}

// checkSpec checks what the spec asks of its namespaces.
func checkSpec(spec *specs.Spec, plan *namespaces.Plan) error {
	if (spec.Hostname != "" || spec.Domainname != "") && !plan.Has(specs.UTSNamespace) {
		return errors.New("setting the hostname needs a private UTS namespace")
	}
	if !plan.Has(specs.MountNamespace) {
		// The container shares berth's mount namespace, as the spec
		// wants when it lists none: it is chrooted into its rootfs, and
		// anything mounted would be mounted on the host and outlive it.
		// (runc makes these mounts on the host; berth refuses them, as
		// runc does masked and read-only paths.)
		switch l := spec.Linux; {
		case len(spec.Mounts) > 0:
			return fmt.Errorf("mount on %s: mounts need a mount namespace of the container's own (the spec lists none)", spec.Mounts[0].Destination)
		case len(l.MaskedPaths)+len(l.ReadonlyPaths) > 0:
			return errors.New("masked and read-only paths need a mount namespace of the container's own (the spec lists none)")
		case spec.Root.Readonly:
			return errors.New("a read-only root needs a mount namespace of the container's own (the spec lists none)")
		case l.RootfsPropagation != "":
			return errors.New("rootfsPropagation needs a mount namespace of the container's own (the spec lists none)")
		}
	}
	return checkSysctls(spec, plan)
}

// launchSpec is what starting the init needs from the spec.
type launchSpec struct {
	cgroupsPath string
	terminal    bool
	resources   *specs.LinuxResources
	timeOffsets map[string]specs.LinuxTimeOffset
	linux       *specs.Linux // id mappings of a new user namespace
	// seccomp, when set, is the profile's compilation started early.
	seccomp *aheadSeccomp
}

func launchOf(spec *specs.Spec) launchSpec {
	return launchSpec{
		cgroupsPath: spec.Linux.CgroupsPath, terminal: spec.Process.Terminal,
		resources: effectiveResources(spec), timeOffsets: spec.Linux.TimeOffsets, linux: spec.Linux,
	}
}

// earlyConfig is the part of config.json that starting the init needs.
type earlyConfig struct {
	data    []byte
	Process struct {
		Terminal bool `json:"terminal"`
	} `json:"process"`
	Linux struct {
		Namespaces  []specs.LinuxNamespace `json:"namespaces"`
		CgroupsPath string                 `json:"cgroupsPath"`
		UIDMappings []json.RawMessage      `json:"uidMappings"`
		GIDMappings []json.RawMessage      `json:"gidMappings"`
		TimeOffsets map[string]any         `json:"timeOffsets"`
		Resources   struct {
			Pids *specs.LinuxPids `json:"pids"`
		} `json:"resources"`
	} `json:"linux"`
}

// earlyStart reads config.json for an early start (see createEarly). It
// declines where the start needs more of the spec (a user or time
// namespace; cgroup v2, whose init is born in a cgroup that must have its
// limits first) and wherever a check fails, so that the usual path
// reports errors exactly as before.
func earlyStart(id, bundle string, o CreateOpts) (*earlyConfig, *namespaces.Plan, bool) {
	if cgroupfs.DetectMode() == cgroupfs.Unified || state.ValidateID(id) != nil {
		return nil, nil, false
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, nil, false
	}
	e := &earlyConfig{data: data}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, nil, false
	}
	if len(e.Linux.UIDMappings)+len(e.Linux.GIDMappings)+len(e.Linux.TimeOffsets) > 0 {
		return nil, nil, false
	}
	for _, ns := range e.Linux.Namespaces {
		if ns.Type == specs.UserNamespace || ns.Type == specs.TimeNamespace {
			return nil, nil, false
		}
	}
	if e.Process.Terminal && o.ConsoleSocket == "" && !o.Foreground {
		return nil, nil, false
	}
	plan, err := namespaces.PlanFor(e.Linux.Namespaces)
	if err != nil {
		return nil, nil, false
	}
	return e, plan, true
}

func checkSysctls(spec *specs.Spec, plan *namespaces.Plan) error {
	for k := range spec.Linux.Sysctl {
		ns := namespaces.SysctlNamespace(k)
		if ns == "" {
			return fmt.Errorf("sysctl %q is not namespaced: refusing to change it for the whole host", k)
		}
		if !plan.Has(ns) {
			return fmt.Errorf("sysctl %q needs a private %s namespace", k, ns)
		}
	}
	return nil
}

// startInit starts berth's init with the namespaces of plan, from a copy
// of berth the container cannot write (see protectedExe), and returns the
// parent's end of the sync socket.
// With att the child joins its cgroup without ever being moved as a
// whole: born in the cgroup2 directory (CLONE_INTO_CGROUP), and it enters
// the v1 hierarchies itself, thread by thread (see cgroupfs.Attach).
//
// Go forks by sharing berth's memory (or, for a new user namespace, by a
// fork that writes the id maps). Joining a user namespace, or a new time
// namespace without one, needs a fork of its own: see package nsfork.
func (r *Runtime) startInit(plan *namespaces.Plan, offsets map[string]specs.LinuxTimeOffset, stdio IO, preserve int, fifo, console *os.File, att *cgroupfs.Attach, userns *specs.Linux, passed initproto.Passed, fork func(*ForkRequest) (int, error)) (*initChild, *initproto.SyncConn, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	parentEnd := os.NewFile(uintptr(pair[0]), "sync")
	childEnd := os.NewFile(uintptr(pair[1]), "sync-child")
	defer childEnd.Close()

	var extra []*os.File
	for i := 0; i < preserve; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	fds := initproto.FDs{Fifo: -1, Console: -1, Preserve: preserve, Tasks: -1, PidsMax: -1, Passed: passed}
	fds.Sync = 3 + len(extra)
	extra = append(extra, childEnd)
	if fifo != nil {
		fds.Fifo = 3 + len(extra)
		extra = append(extra, fifo)
	}
	if console != nil {
		fds.Console = 3 + len(extra)
		extra = append(extra, console)
	}
	var cgroupDir *os.File
	if att != nil {
		cgroupDir = att.Dir
		if len(att.Tasks) > 0 {
			fds.Tasks, fds.NTasks = 3+len(extra), len(att.Tasks)
			extra = append(extra, att.Tasks...)
		}
		if att.PidsMax != nil {
			fds.PidsMax = 3 + len(extra)
			extra = append(extra, att.PidsMax)
		}
	}
	cmd := &exec.Cmd{
		Args: []string{"berth", initproto.InitArg},
		// Two Ps: one sets up, the other warms the config's decoding
		// (initproto.Warm). Not more: each runtime thread counts against
		// the container's pids.max.
		Env:        []string{initproto.FDEnv + "=" + fds.String(), "GOMAXPROCS=2"},
		Stdin:      stdio.Stdin,
		Stdout:     stdio.Stdout,
		Stderr:     stdio.Stderr,
		ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: plan.Clone,
		},
	}
	if cgroupDir != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cgroupDir.Fd())
	}
	if plan.Clone&unix.CLONE_NEWUSER != 0 && userns != nil {
		cmd.SysProcAttr.UidMappings = namespaces.IDMaps(userns.UIDMappings)
		cmd.SysProcAttr.GidMappings = namespaces.IDMaps(userns.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Host root is not mapped inside: become the namespace's root
		// once the maps are written, or the init would have no
		// capabilities there after execve.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	joinUser := plan.Join[specs.UserNamespace]
	newUser := plan.Clone&unix.CLONE_NEWUSER != 0
	realFork := joinUser != "" || (plan.NewTime && !newUser)
	if fork != nil && (newUser || plan.NewTime || len(plan.Join) > 0) {
		parentEnd.Close()
		return nil, nil, errors.New("start init: an init that joins namespaces or makes a user or time namespace is forked by berth")
	}
	var proc *initChild
	prog := r.initProgram()
	start := func() error {
		exe, err := protectedExe(newUser || joinUser != "", prog)
		if err != nil {
			return err
		}
		if exe.file != nil {
			defer exe.file.Close()
			// The binary travels as an extra fd, so Go's fd shuffling in
			// the child cannot overwrite it before execve.
			cmd.ExtraFiles = append(cmd.ExtraFiles, exe.file)
			exe.path = fmt.Sprintf("/proc/self/fd/%d", 2+len(cmd.ExtraFiles))
		}
		cmd.Path = exe.path
		if plan.NewTime {
			if err := namespaces.NewTime(offsets); err != nil {
				return err
			}
		}
		if fork != nil {
			pid, err := fork(&ForkRequest{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env,
				Files:      append([]*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr}, cmd.ExtraFiles...),
				Cloneflags: plan.Clone, CgroupDir: cgroupDir})
			if err != nil {
				return err
			}
			proc, err = otherChild(pid)
			return err
		}
		if err := plan.JoinBeforeFork(offsets); err != nil {
			return err
		}
		if realFork {
			p, err := forkInit(cmd, stdio, joinUser, plan.Clone, cgroupDir)
			if err != nil {
				return err
			}
			proc = ownChild(p)
			return nil
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		proc = ownChild(cmd.Process)
		return nil
	}
	errc := make(chan error, 1)
	if plan.NewTime {
		// Time namespace offsets belong to the process, so the init is
		// forked from the main thread (locked by package main), which
		// keeps the namespaces it takes on for the rest of this command.
		if unix.Gettid() != unix.Getpid() {
			parentEnd.Close()
			return nil, nil, errors.New("a new time namespace must be created from the main thread")
		}
		errc <- start()
	} else if fork != nil {
		// Another process forks: this thread joins nothing.
		errc <- start()
	} else {
		go func() {
			// This thread takes on a private mount namespace and any
			// joined namespaces; it is never unlocked, so Go ends it when
			// this goroutine returns and nothing else runs in them.
			goruntime.LockOSThread()
			errc <- start()
		}()
	}
	if err := <-errc; err != nil {
		parentEnd.Close()
		return nil, nil, fmt.Errorf("start init: %w", err)
	}
	return proc, initproto.NewSync(parentEnd), nil
}

// forkInit starts the init through nsfork with what cmd describes.
func forkInit(cmd *exec.Cmd, stdio IO, joinUser string, cloneflags uintptr, cgroupDir *os.File) (*os.Process, error) {
	a := &nsfork.Attr{
		Path: cmd.Path, Args: cmd.Args, Env: cmd.Env,
		Files:      append([]*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr}, cmd.ExtraFiles...),
		Cloneflags: cloneflags, CgroupDir: cgroupDir,
	}
	if joinUser != "" {
		f, err := os.Open(joinUser)
		if err != nil {
			return nil, fmt.Errorf("open user namespace: %w", err)
		}
		defer f.Close()
		a.UserNS = f
	}
	return nsfork.Start(a)
}

// initProgram installs the program that runs the init (berth's init code
// without the rest of berth: cmd/berth-init) and returns its path, or ""
// to run berth itself, which works the same, only slower to start.
func (r *Runtime) initProgram() string {
	p, err := r.Helpers.Install(helperbin.Init)
	if err != nil {
		if !errors.Is(err, helperbin.ErrNotBuilt) {
			logrus.Debugf("container init program: %v", err)
		}
		return ""
	}
	return p
}

type initExe struct {
	path string
	// file, when set, is what the init is exec'd from, as
	// /proc/self/fd/N: a read-only clone of the binary's mount or a
	// sealed memfd copy.
	file *os.File
}

// protectedExe makes the binary that the init runs from (prog, or berth
// itself if prog is "") unwritable by the container (CVE-2019-5736): a
// container that reaches /proc/<pid>/exe of the init, and keeps it open
// across the init's execve, must not be able to write the host's binary
// through it.
//
// The init is exec'd through a detached, read-only bind mount of the
// binary (open_tree and mount_setattr), so writes through its exe fail
// with EROFS. That costs two system calls and leaves nothing on the host:
// the mount goes with its last reference, once the init has exec'd the
// container's program. (A private mount namespace with a read-only bind
// did the same, but copying the host's mount table costs time in
// proportion to its size, one overlay per running container.) Where that
// cannot be done, a sealed memfd copy of the binary is used instead
// (slower: the whole binary is copied). A new user namespace always gets
// the memfd: its remapped root may not be able to reach the binary.
func protectedExe(userns bool, prog string) (*initExe, error) {
	var err error
	if prog == "" {
		prog, err = os.Readlink("/proc/self/exe")
		if strings.HasSuffix(prog, " (deleted)") {
			err = errors.New("berth's binary was deleted")
			prog = "/proc/self/exe"
		}
	}
	if userns {
		err = errors.New("new user namespace")
	}
	if err == nil {
		var f *os.File
		if f, err = readOnlyClone(prog); err == nil {
			return &initExe{file: f}, nil
		}
	}
	logrus.Debugf("read-only clone of %s unavailable (%v): using a sealed memfd", prog, err)
	if prog == "" {
		prog = "/proc/self/exe"
	}
	f, err := sealedExe(prog)
	if err != nil {
		return nil, err
	}
	return &initExe{file: f}, nil
}

// readOnlyClone opens prog on a detached read-only, nosuid, nodev bind
// mount of its own.
func readOnlyClone(prog string) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, prog, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree %s: %w", prog, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make clone of %s read-only: %w", prog, err)
	}
	return os.NewFile(uintptr(fd), prog), nil
}

// sealedExe copies the init's binary into a sealed memfd, so that a
// container that reaches /proc/<pid>/exe of its init can never write the
// host's binary (CVE-2019-5736).
func sealedExe(prog string) (*os.File, error) {
	self, err := os.Open(prog)
	if err != nil {
		return nil, fmt.Errorf("open init binary: %w", err)
	}
	defer self.Close()
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-memfd")
	// sendfile copies in the kernel; io.Copy would fall back to a 32 KiB
	// read/write loop here (copy_file_range cannot reach a memfd).
	st, err := self.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat init binary: %w", err)
	}
	for left := st.Size(); left > 0; {
		n, err := unix.Sendfile(fd, int(self.Fd()), nil, int(left))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("copy init binary: %w", err)
		}
		if n == 0 {
			f.Close()
			return nil, fmt.Errorf("copy init binary: short copy")
		}
		left -= int64(n)
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal binary copy: %w", err)
	}
	return f, nil
}

// create starts the init, then completes the spec with full (which may
// still decode and check it) and sets the container up.
func (r *Runtime) create(id, bundle string, ls launchSpec, full func() (*specs.Spec, error), plan *namespaces.Plan, o CreateOpts) (c *state.Container, proc *Proc, err error) {
	dir := r.Store.Dir(id)
	fifoPath := filepath.Join(dir, "exec.fifo")
	if err := unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, nil, fmt.Errorf("create exec fifo: %w", err)
	}
	// Writable by the container's user whoever that is (mkfifo obeys umask).
	if err := os.Chmod(fifoPath, 0o622); err != nil {
		return nil, nil, fmt.Errorf("chmod exec fifo: %w", err)
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	cgPath, mgr, err := createManager(ls.cgroupsPath, id, o.NoCgroup)
	if err != nil {
		return nil, nil, err
	}
	console, internalConsole, err := consoleSocket(ls.terminal, o.ConsoleSocket)
	if err != nil {
		return nil, nil, err
	}
	if console != nil {
		defer console.Close()
	}
	if internalConsole != nil {
		defer func() {
			if err != nil {
				internalConsole.Close()
			}
		}()
	}
	stdio := o.IO.orStd()
	// A cgroup namespace given by path is joined by the init once placed
	// (see Exec).
	// A mount namespace given by path is joined by the init too, so that
	// berth's binary is exec'd from the host's. (A copy: full may still
	// check the spec against the whole plan.)
	joinCgroup, joinMount := plan.Join[specs.CgroupNamespace], plan.Join[specs.MountNamespace]
	launch := *plan
	launch.Join = maps.Clone(plan.Join)
	delete(launch.Join, specs.CgroupNamespace)
	delete(launch.Join, specs.MountNamespace)
	// A network namespace is joined by the init too, from a descriptor
	// sent before its config, so that the file may be made while the init
	// starts (CreateOpts.Complete). Not into a user namespace: there the
	// init would lack the rights over the host's network namespace.
	// With Complete the root is mounted after the init's mount namespace
	// was copied: it is sent too.
	joinNet := ""
	if !plan.Has(specs.UserNamespace) {
		joinNet = plan.Join[specs.NetworkNamespace]
		delete(launch.Join, specs.NetworkNamespace)
	}
	passed := initproto.Passed{NetNS: joinNet != "", Root: o.Complete != nil}
	// The cgroup is made before the fork, and on cgroup v2 limited too;
	// on v1 the limits are written while the init starts, before it may
	// run anything of the container. On both, pids.max is the init's to
	// write once set up.
	att, pidsMax, err := prepareCgroup(mgr, ls.resources, o.NoCgroup)
	if err != nil {
		if mgr.Exists() {
			_ = mgr.Destroy()
		}
		return nil, nil, err
	}
	initProc, sync, err := r.startInit(&launch, ls.timeOffsets, stdio, o.PreserveFDs, fifo, console, att, ls.linux, passed, o.Fork)
	att.Close()
	if err != nil {
		if mgr.Exists() {
			_ = mgr.Destroy()
		}
		return nil, nil, err
	}
	defer sync.Close()
	crashpoint.At("runtime-state")
	pid := initProc.Pid
	defer func() {
		if err != nil {
			_ = initProc.Kill()
			_, _ = initProc.Wait()
			initProc.release()
			if mgr.Exists() {
				if derr := mgr.Destroy(); derr != nil {
					logrus.Warnf("remove cgroup %s: %v", cgPath, derr)
				}
			}
		}
	}()
	spec, err := full()
	if err != nil {
		return nil, nil, err
	}
	start, _, err := liveness.StartTime(pid)
	if err != nil {
		return nil, nil, fmt.Errorf("init exited early: %w", err)
	}
	c = &state.Container{
		ID: id, Bundle: bundle, Rootfs: RootfsPath(spec, bundle), Pid: pid, PidStart: start,
		Created: time.Now().UTC(), CgroupPath: cgPath, Config: spec,
	}
	hookState := specs.State{Version: specs.Version, ID: id, Status: StatusCreating, Pid: pid, Bundle: bundle, Annotations: spec.Annotations}
	cfg := &initproto.Config{
		ID: id, Spec: spec, Process: spec.Process, Rootfs: c.Rootfs, Bundle: bundle, NoPivot: o.NoPivot,
		CgroupNS: plan.Has(specs.CgroupNamespace) || joinCgroup != "", NewCgroup: plan.NewCgroup, NewUTS: plan.Has(specs.UTSNamespace),
		NewNet: plan.Has(specs.NetworkNamespace) && plan.Join[specs.NetworkNamespace] == "",
		UserNS: plan.Has(specs.UserNamespace), CgroupMode: int(cgroupfs.DetectMode()), CgroupPath: initCgroupPath(cgPath),
		HookState: hookState, JoinCgroup: joinCgroup, JoinMount: joinMount, PidsMax: pidsMax,
		NewMount: plan.Clone&unix.CLONE_NEWNS != 0,
		//lint:ignore SA1019 runtime-spec 1.0 bundles still use prestart hooks
		ParentHooks: spec.Hooks != nil && len(spec.Hooks.Prestart)+len(spec.Hooks.CreateRuntime) > 0,
	}
	if cfg.CgroupMode != int(cgroupfs.Unified) {
		if cfg.CgroupMounts, err = cgroupfs.Mounts(); err != nil {
			return nil, nil, err
		}
	}
	if err := setSpec(cfg, spec, ls.seccomp); err != nil {
		return nil, nil, err
	}
	if err := sendPassed(sync, passed, joinNet, c.Rootfs); err != nil {
		return nil, nil, initFailed(initProc, err)
	}
	if err := sync.Send(initproto.Message{Type: initproto.MsgConfig, Config: cfg}); err != nil {
		return nil, nil, initFailed(initProc, err)
	}
	// The init sets up its mounts while we limit its cgroup; it waits
	// for msgPlaced before its cgroup namespace, the cgroup mount and any
	// code of the container.
	if !o.NoCgroup && cgroupfs.DetectMode() != cgroupfs.Unified {
		res := effectiveResources(spec)
		if pidsMax != "" {
			res = withoutPidsLimit(res) // the init's to write
		}
		if err := mgr.Set(res); err != nil {
			return nil, nil, err
		}
	}
	if err := sync.Send(initproto.Message{Type: initproto.MsgPlaced}); err != nil {
		return nil, nil, initFailed(initProc, err)
	}
	// Record the container while the init mounts: the first encoding of
	// the spec is the slow one, and here nobody waits for it. A marker
	// says it is still being created; removing it at the end is cheaper
	// than writing the record again.
	marker, err := os.OpenFile(r.creatingPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("mark %s creating: %w", id, err)
	}
	marker.Close()
	if err := r.Store.Save(c); err != nil {
		return nil, nil, err
	}
	if cfg.ParentHooks {
		if _, err := sync.Expect(initproto.MsgMounted); err != nil {
			return nil, nil, initFailed(initProc, err)
		}
		//lint:ignore SA1019 runtime-spec 1.0 bundles still use prestart hooks
		if err := initproto.RunHooks("prestart", spec.Hooks.Prestart, hookState); err != nil {
			return nil, nil, err
		}
		if err := initproto.RunHooks("createRuntime", spec.Hooks.CreateRuntime, hookState); err != nil {
			return nil, nil, err
		}
		if err := sync.Send(initproto.Message{Type: initproto.MsgHooksDone}); err != nil {
			return nil, nil, initFailed(initProc, err)
		}
	}
	if _, err := sync.Expect(initproto.MsgCreated); err != nil {
		return nil, nil, initFailed(initProc, err)
	}
	proc = initProc.proc()
	if internalConsole != nil {
		if proc.Console, err = RecvConsole(internalConsole); err != nil {
			return nil, nil, err
		}
		internalConsole.Close()
	}
	if err := os.Remove(r.creatingPath(id)); err != nil {
		return nil, nil, fmt.Errorf("mark %s created: %w", id, err)
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, nil, err
		}
	}
	return c, proc, nil
}

// sendPassed sends the init what passed says: the network namespace at
// netns and a detached copy of the mounts at rootfs.
func sendPassed(sync *initproto.SyncConn, passed initproto.Passed, netns, rootfs string) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if passed.NetNS {
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open network namespace %s: %w", netns, err)
		}
		fds = append(fds, fd)
	}
	if passed.Root {
		fd, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("open_tree %s: %w", rootfs, err)
		}
		fds = append(fds, fd)
	}
	if len(fds) == 0 {
		return nil
	}
	return sync.SendFDs(fds...)
}

// prepareCgroup creates the cgroup, on cgroup v2 writes its limits (res
// may be nil), and opens what the init needs to join it. It also returns
// the pids.max the init is to write, "" for none.
func prepareCgroup(mgr cgroupfs.Manager, res *specs.LinuxResources, noCgroup bool) (*cgroupfs.Attach, string, error) {
	if noCgroup {
		// The init stays where it is forked: in the caller's cgroup.
		return nil, "", nil
	}
	if err := mgr.Apply(-1); err != nil {
		return nil, "", err
	}
	// The pids limit is the init's to write, once set up (see
	// cgroupfs.Attach.OpenPidsMax): every thread of its Go runtime counts
	// against pids.max, which a small --pids-limit would make it exceed
	// before it ran any of the container.
	pidsMax := ""
	if res != nil && res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit > 0 {
		pidsMax = cgroupfs.PidsMaxValue(*res.Pids.Limit)
	}
	if res != nil && cgroupfs.DetectMode() == cgroupfs.Unified {
		// The rest is in place before the init is born in the cgroup;
		// "max" here enables the pids controller.
		if err := mgr.Set(withoutPidsLimit(res)); err != nil {
			return nil, "", err
		}
	}
	att, err := mgr.OpenAttach()
	if err != nil {
		return nil, "", err
	}
	if pidsMax != "" {
		if err := att.OpenPidsMax(); err != nil {
			att.Close()
			return nil, "", err
		}
	}
	return att, pidsMax, nil
}

// withoutPidsLimit is res with its pids limit, which the init writes
// itself, replaced by none.
func withoutPidsLimit(res *specs.LinuxResources) *specs.LinuxResources {
	if res == nil || res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit <= 0 {
		return res
	}
	pre := *res
	unlimited := int64(-1)
	pre.Pids = &specs.LinuxPids{Limit: &unlimited}
	return &pre
}

// initFailed keeps the init's own error; when the init died without one,
// it says how it died.
func initFailed(initProc *initChild, err error) error {
	var ie *initproto.InitError
	if errors.As(err, &ie) {
		return err
	}
	_ = initProc.Kill()
	if st, werr := initProc.Wait(); werr == nil && !st.Success() {
		return fmt.Errorf("container init failed: %v (%w)", st, err)
	}
	return fmt.Errorf("container init failed: %w", err)
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return atomicfile.Write(abs, []byte(strconv.Itoa(pid)), 0o644)
}

// consoleSocket connects to the caller's console socket, or, for a
// terminal in the foreground without one, makes a socket pair whose other
// end berth reads the pty master from.
func consoleSocket(terminal bool, path string) (child, internal *os.File, err error) {
	if !terminal {
		return nil, nil, nil
	}
	if path != "" {
		conn, err := net.Dial("unix", path)
		if err != nil {
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		defer conn.Close()
		f, err := conn.(*net.UnixConn).File()
		if err != nil {
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		return f, nil, nil
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socketpair: %w", err)
	}
	return os.NewFile(uintptr(pair[1]), "console"), os.NewFile(uintptr(pair[0]), "console-parent"), nil
}

// createManager names and opens the new container's cgroup; with noCgroup
// it has none (an empty path in its record).
func createManager(cgroupsPath, id string, noCgroup bool) (string, cgroupfs.Manager, error) {
	if noCgroup {
		return "", cgroupfs.None(), nil
	}
	p := cgroupfs.SpecPath(cgroupsPath, id)
	mgr, err := cgroupfs.New(p)
	return p, mgr, err
}

// initCgroupPath is the cgroup the init shows the container at
// /sys/fs/cgroup (without a cgroup namespace): its own, or for a container
// without one the caller's, which it shares.
func initCgroupPath(cgPath string) string {
	if cgPath != "" {
		return cgPath
	}
	own, err := cgroupfs.Own()
	if err != nil || cgroupfs.DetectMode() != cgroupfs.Unified {
		// Off cgroup v2 the init mounts the hierarchies it is in itself.
		return ""
	}
	return own
}
