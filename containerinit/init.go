// Package containerinit is the container side of berth's runtime, runc's
// init: the program the runtime (package runtime, the parent) starts in a
// container's new namespaces sets up the root file system, mounts,
// devices, pivot_root, rlimits, the user, capabilities and seccomp, and
// execs the container's process. It shares only package initproto with
// the parent, so the init program (cmd/berth-init) links it alone.
package containerinit

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs/hostcg"
	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/internal/rlimit"
	"github.com/berth-project/berth/namespaces"
	"github.com/berth-project/berth/passwd"
	"github.com/berth-project/berth/seccomp/filter"
)

// InitArg is the argv[1] with which berth, or its init program, runs as
// a container's init.
const InitArg = initproto.InitArg

func init() {
	if len(os.Args) > 1 && os.Args[1] == InitArg {
		// Everything the init does to itself (setns, capabilities,
		// seccomp, no_new_privs) is per thread: keep main on one thread,
		// the one that will execve.
		goruntime.LockOSThread()
	}
}

// Main is the container side of berth: it runs in the new namespaces,
// sets up the rootfs and the process, and execs the user program. It never
// returns.
func Main() {
	// The init execs within milliseconds and holds little: a collection
	// would only cost it time.
	debug.SetGCPercent(-1)
	// The config's types are made ready on the second P while this one
	// sets up and waits for it.
	go initproto.Warm()
	// Exec'd as /proc/self/fd/N, it would be listed as "N" until then.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&initComm[0])), 0, 0, 0)
	exitOnStopSignals()
	fds, err := initproto.ParseFDs(os.Getenv(initproto.FDEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
		os.Exit(125)
	}
	os.Unsetenv(initproto.FDEnv)
	// No descriptor of ours may reach the container (CVE-2024-21626):
	// everything past the preserved fds is closed at execve.
	if err := unix.CloseRange(uint(3+fds.Preserve), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "berth init: close_range: %v\n", err)
		os.Exit(125)
	}
	sync := initproto.NewSync(os.NewFile(uintptr(fds.Sync), "sync"))
	err = runInit(sync, fds)
	// Only failures come back here.
	code := 125
	var ie *initproto.InitError
	if errors.As(err, &ie) {
		code = ie.Code
	}
	if serr := sync.Send(initproto.Message{Type: initproto.MsgError, Code: code, Msg: err.Error()}); serr != nil {
		// The parent is gone (e.g. after start): tell the container's stderr.
		fmt.Fprintf(os.Stderr, "berth init: %v\n", err)
	}
	os.Exit(code)
}

// exitOnStopSignals makes a stop signal that comes before the exec end
// the init with that signal's status, 128+n, which berth (and systemd,
// through berth) take for a clean stop. As pid 1 of its namespace the init
// cannot die of the signal: the kernel drops a signal whose default
// action pid 1 would take, so Go's runtime, failing to kill itself with
// it, exits 2. The exec resets the handlers: the container's program then
// handles them as it sees fit.
func exitOnStopSignals() {
	if unix.Getpid() != 1 {
		return
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM)
	go func() {
		sig := <-c
		n := 0
		if s, ok := sig.(unix.Signal); ok {
			n = int(s)
		}
		os.Exit(128 + n)
	}()
}

// initConfig is the configuration from the parent with what the init
// keeps beside it.
type initConfig struct {
	*initproto.Config
	// placed waits until the parent has put the init in its cgroup.
	placed func() error
	// proc and caps are the host's /proc and the capability plan, taken
	// before a chroot into a rootfs without /proc.
	proc *os.File
	caps *capPlan
	// root is the container's root as a detached mount to attach at
	// Rootfs, or -1 to bind Rootfs onto itself.
	root int
}

func runInit(sync *initproto.SyncConn, fds initproto.FDs) error {
	// Into the v1 cgroup first, from this thread, the one that will
	// execve (see cgroupfs.Attach).
	for i := 0; i < fds.NTasks; i++ {
		if err := hostcg.EnterThread(fds.Tasks + i); err != nil {
			return err
		}
		unix.Close(fds.Tasks + i)
	}
	netns, root := -1, -1
	if n := fds.Passed.Count(); n > 0 {
		got, err := sync.RecvFDs(n)
		if err != nil {
			return err
		}
		if fds.Passed.NetNS {
			netns, got = got[0], got[1:]
			defer unix.Close(netns)
		}
		if fds.Passed.Root {
			root = got[0]
			defer unix.Close(root)
		}
	}
	m, err := sync.Expect(initproto.MsgConfig)
	if err != nil {
		return err
	}
	if m.Config == nil || m.Config.Process == nil {
		return errors.New("init: no configuration")
	}
	cfg := &initConfig{Config: m.Config, root: root}
	// Opened before joining the mount namespace, where the host's /proc
	// path no longer resolves; joined once we are placed.
	cgroupNS := -1
	if cfg.JoinCgroup != "" {
		fd, err := unix.Open(cfg.JoinCgroup, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open cgroup namespace %s: %w", cfg.JoinCgroup, err)
		}
		defer unix.Close(fd)
		cgroupNS = fd
	}
	// This thread execs, so it alone needs to join.
	if netns >= 0 {
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join network namespace: %w", err)
		}
	}
	if cfg.JoinMount != "" {
		if err := namespaces.JoinMount(cfg.JoinMount); err != nil {
			return err
		}
	}
	// The parent moves us into our cgroup while we set up mounts (the
	// first move into a cgroup can wait ~10 ms for the kernel); we wait
	// for it before anything that needs it and before any container code.
	done := false
	cfg.placed = func() error {
		if done {
			return nil
		}
		done = true
		if _, err := sync.Expect(initproto.MsgPlaced); err != nil {
			return err
		}
		if cgroupNS >= 0 {
			if err := unix.Setns(cgroupNS, unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("join cgroup namespace: %w", err)
			}
		}
		if cfg.NewCgroup {
			// Made only now, so the namespace's root is the container's
			// cgroup.
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare cgroup namespace: %w", err)
			}
		}
		return nil
	}
	if cfg.Exec {
		if err := cfg.placed(); err != nil {
			return err
		}
		if cfg.Chroot != "" {
			// The container shares our mount namespace: its root is
			// what its init chrooted into.
			if err := cfg.chroot(cfg.Chroot); err != nil {
				return err
			}
		}
		if err := unix.Chdir("/"); err != nil {
			return fmt.Errorf("chdir /: %w", err)
		}
		return runProcess(cfg, sync, fds)
	}
	spec := cfg.Spec
	// In the mount namespace of the host (the spec lists none), nothing
	// is mounted: the container only chroots into its rootfs (checkSpec
	// refuses mounts there, which would stay on the host).
	ownMounts := cfg.NewMount || cfg.JoinMount != ""
	if ownMounts {
		if err := prepareRootfs(cfg); err != nil {
			return err
		}
	}
	if err := cfg.placed(); err != nil {
		return err
	}
	if cfg.ParentHooks {
		if err := sync.Send(initproto.Message{Type: initproto.MsgMounted}); err != nil {
			return err
		}
		if _, err := sync.Expect(initproto.MsgHooksDone); err != nil {
			return err
		}
	}
	if spec.Hooks != nil {
		if err := initproto.RunHooks("createContainer", spec.Hooks.CreateContainer, cfg.HookState); err != nil {
			return err
		}
	}
	if ownMounts {
		if err := enterRoot(cfg.Rootfs, cfg.NoPivot); err != nil {
			return err
		}
	} else if err := cfg.chroot(cfg.Rootfs); err != nil {
		return err
	}
	if err := makeCwd(cfg.Process.Cwd); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	if cfg.NewNet {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := finishRootfs(spec); err != nil {
		return err
	}
	return runProcess(cfg, sync, fds)
}

// runProcess prepares the process (console, cwd, limits, user,
// capabilities, seccomp), reports success, waits for start and execs.
func runProcess(cfg *initConfig, sync *initproto.SyncConn, fds initproto.FDs) error {
	p := cfg.Process
	if p.Terminal {
		if fds.Console < 0 {
			return errors.New("process.terminal is set but no console socket was given")
		}
		if err := setupConsole(os.NewFile(uintptr(fds.Console), "console-socket"), p.ConsoleSize, !cfg.Exec); err != nil {
			return err
		}
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q: %w", p.Cwd, err)
	}
	// A cwd reached through a leaked host fd would be outside our root;
	// the kernel reports such a cwd as "(unreachable)".
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container's root", p.Cwd)
	}
	// Only the hard limits that go up are set here, while we still have
	// the privilege for it; the limits themselves are set just before
	// execve, since low ones (RLIMIT_AS, RLIMIT_NPROC) can break the Go
	// runtime of this init.
	if err := raiseHardLimits(p.Rlimits); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil {
		if err := cfg.writeProc("self/oom_score_adj", strconv.Itoa(*p.OOMScoreAdj)); err != nil {
			return fmt.Errorf("set oom_score_adj %d: %w", *p.OOMScoreAdj, unwrapPath(err))
		}
	}
	caps := cfg.caps
	if caps == nil {
		var err error
		if caps, err = planCaps(p.Capabilities); err != nil {
			return err
		}
	}
	var sc *filter.Filter
	var err error
	if len(cfg.Seccomp) > 0 {
		if sc, err = filter.FromProgram(cfg.Seccomp, cfg.SeccompFlags); err != nil {
			return err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	if err := caps.dropBounding(); err != nil {
		return err
	}
	if sc != nil && !p.NoNewPrivileges {
		// Without no_new_privs loading a filter needs CAP_SYS_ADMIN, which
		// may be gone once we switch user: load it first.
		if err := sc.Install(); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	if err := switchUser(p.User); err != nil {
		return err
	}
	if err := caps.apply(); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	env := withHome(p.Env, p.User.UID)
	argv := p.Args
	path, err := lookPath(argv[0], env)
	if err != nil {
		return err
	}
	// All our work is done. As with runc, the limit is in place once
	// create returns; but while this thread waits for start, Go's runtime
	// may hand its P to another thread, which it may have to create: a
	// limit that leaves it no room is written once the wait is over,
	// right before the exec.
	pidsLate := fds.PidsMax >= 0 && fds.Fifo >= 0 && !roomForThreads(cfg.PidsMax, cfg.threads())
	if fds.PidsMax >= 0 && !pidsLate {
		if err := writePidsMax(fds.PidsMax, cfg.PidsMax); err != nil {
			return err
		}
	}
	if err := sync.Send(initproto.Message{Type: initproto.MsgCreated}); err != nil {
		return err
	}
	sync.Close()
	if fds.Fifo >= 0 {
		if err := waitStart(fds.Fifo, cfg.proc); err != nil {
			return err
		}
		if cfg.Spec.Hooks != nil {
			if err := initproto.RunHooks("startContainer", cfg.Spec.Hooks.StartContainer, cfg.HookState); err != nil {
				return err
			}
		}
	}
	if pidsLate {
		if err := writePidsMax(fds.PidsMax, cfg.PidsMax); err != nil {
			return err
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if sc != nil && p.NoNewPrivileges {
		// Last, so berth's own syscalls above are not filtered.
		if err := sc.Install(); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	err = syscall.Exec(path, argv, env)
	return execError(argv[0], err)
}

func execError(name string, err error) error {
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	return &initproto.InitError{Code: code, Msg: fmt.Sprintf("exec %q: %v", name, err)}
}

func writePidsMax(fd int, value string) error {
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return fmt.Errorf("set pids.max to %s: %w", value, err)
	}
	return nil
}

// threadSpare is how many more threads than it has the init leaves room
// for while it waits for start.
const threadSpare = 8

// roomForThreads says whether pids.max value leaves threadSpare threads
// beside the init's n (0: unknown, no room).
func roomForThreads(value string, n int) bool {
	limit, err := strconv.Atoi(value)
	if err != nil {
		return value == "max"
	}
	return n > 0 && limit >= n+threadSpare
}

// threads is how many threads the init has, 0 when /proc does not say.
func (cfg *initConfig) threads() int {
	fd, err := openProc(cfg.proc, "self/status", unix.O_RDONLY)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			t, _ := strconv.Atoi(strings.TrimSpace(v))
			return t
		}
	}
	return 0
}

// waitStart blocks until `start` opens the exec fifo for reading. proc,
// when set, is the host's /proc (see initConfig.chroot).
func waitStart(fifo int, proc *os.File) error {
	// Changing uid made us non-dumpable, which gives /proc/self to the
	// host's root; reopening our own fd needs it back for a moment.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set dumpable: %w", err)
	}
	fd, err := openProc(proc, fmt.Sprintf("self/fd/%d", fifo), unix.O_WRONLY)
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	f := os.NewFile(uintptr(fd), "exec.fifo")
	unix.Close(fifo)
	if _, err := f.Write([]byte{0}); err != nil {
		return fmt.Errorf("write exec fifo: %w", err)
	}
	return f.Close()
}

// raiseHardLimits raises the hard limits of rls that are above the
// current ones, keeping the soft limits, so that setRlimits later only
// lowers hard limits, which needs no privilege.
func raiseHardLimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		res, ok := rlimit.Resource(rl.Type)
		if !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		var cur unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &cur); err != nil {
			return fmt.Errorf("getrlimit %s: %w", rl.Type, err)
		}
		if rl.Hard <= cur.Max {
			continue
		}
		lim := unix.Rlimit{Cur: cur.Cur, Max: rl.Hard}
		if err := unix.Prlimit(0, res, &lim, nil); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("setrlimit %s to soft=%d hard=%d: raising the hard limit above %d needs CAP_SYS_RESOURCE, which berth does not have", rl.Type, rl.Soft, rl.Hard, cur.Max)
			}
			return fmt.Errorf("setrlimit %s to soft=%d hard=%d: %w", rl.Type, rl.Soft, rl.Hard, err)
		}
	}
	return nil
}

// setRlimits sets the limits of rls, the last thing before execve. The
// memory limits go last of all: past them the Go runtime may fail to map
// memory.
func setRlimits(rls []specs.POSIXRlimit) error {
	for _, rl := range rls {
		if res, _ := rlimit.Resource(rl.Type); res == unix.RLIMIT_AS || res == unix.RLIMIT_DATA {
			heapRoom()
			break
		}
	}
	for _, last := range []bool{false, true} {
		for _, rl := range rls {
			res, _ := rlimit.Resource(rl.Type) // known: raiseHardLimits checked each
			if (res == unix.RLIMIT_AS || res == unix.RLIMIT_DATA) != last {
				continue
			}
			lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
			var err error
			if res == unix.RLIMIT_NOFILE {
				// Through package syscall, so that its Exec does not put
				// back the soft limit Go raised at start.
				err = syscall.Setrlimit(res, (*syscall.Rlimit)(&lim))
			} else {
				err = unix.Prlimit(0, res, &lim, nil)
			}
			if err != nil {
				return fmt.Errorf("setrlimit %s to soft=%d hard=%d: %w", rl.Type, rl.Soft, rl.Hard, err)
			}
		}
	}
	return nil
}

// heapRoom leaves the heap free pages, mapped, for what the init still
// allocates past a memory limit (seccomp, execve's copies of argv and env,
// a stack growth): with none free the runtime maps more, which the limit
// refuses, and it dies ("runtime: out of memory"), now and then, as the
// heap happens to be full or not.
func heapRoom() {
	goruntime.KeepAlive(make([]byte, 4<<20))
	goruntime.GC()
}

// chroot makes dir the root, for a container that shares the host's
// mount namespace and so must not pivot_root it. Its rootfs has no /proc
// of its own: what the init still needs of /proc is read or opened
// first, and the handle is closed at execve.
func (cfg *initConfig) chroot(dir string) error {
	proc, err := os.OpenFile("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	cfg.proc = proc
	if cfg.caps, err = planCaps(cfg.Process.Capabilities); err != nil {
		return err
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot %s: %w", dir, err)
	}
	return unix.Chdir("/")
}

// openProc opens name (as "self/status") under /proc, or under proc,
// the handle on the host's /proc in a chroot, when it is set.
func openProc(proc *os.File, name string, flags int) (int, error) {
	if proc != nil {
		return unix.Openat(int(proc.Fd()), name, flags|unix.O_CLOEXEC, 0)
	}
	return unix.Open("/proc/"+name, flags|unix.O_CLOEXEC, 0)
}

// writeProc writes a file under /proc, or under the handle on the host's
// /proc in a chroot.
func (cfg *initConfig) writeProc(name, value string) error {
	fd, err := openProc(cfg.proc, name, unix.O_WRONLY)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// makeCwd creates the process's working directory when the image lacks
// it, as runc does (containerd and Kubernetes rely on it): owned by the
// container's root, mode 0755, resolved inside the root we are in.
func makeCwd(cwd string) error {
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer root.Close()
	dir, err := mkdirAllInRoot(root, cwd, 0o755)
	if err != nil {
		return fmt.Errorf("create cwd %q: %w", cwd, err)
	}
	return dir.Close()
}

// switchUser changes the credentials of this thread only. The syscall
// package's Setresuid and friends change every thread of the process in
// turn (signalling each and spinning until it has), which costs the init
// about a millisecond; only this thread goes on to execve, and the
// runtime's other threads end there.
func switchUser(u specs.User) error {
	// Keep the permitted set across setuid; capabilities are set right after.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := u.AdditionalGids
	var list unsafe.Pointer
	if len(groups) > 0 {
		list = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(list), 0); e != 0 && !(e == unix.EPERM && len(groups) == 0) {
		return fmt.Errorf("setgroups %v: %w", groups, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0)
}

// withHome adds HOME from the container's /etc/passwd when the
// environment lacks it, as Docker and runc do.
func withHome(env []string, uid uint32) []string {
	if passwd.HasHome(env) {
		return env
	}
	// No /etc/passwd (or none readable by the user) means HOME=/.
	data, _ := os.ReadFile("/etc/passwd")
	return passwd.WithHome(env, passwd.HomeOf(data, uid))
}

// lookPath resolves the program in the container with the PATH of its own
// environment, failing with 127 (not found) or 126 (cannot run).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, checkExecutable(name, name)
	}
	pathEnv := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := checkExecutable(name, p)
		if err == nil {
			return p, nil
		}
		var ie *initproto.InitError
		if errors.As(err, &ie) && ie.Code == 126 && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &initproto.InitError{Code: 127, Msg: fmt.Sprintf("exec %q: executable file not found in $PATH", name)}
}

func checkExecutable(name, p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &initproto.InitError{Code: 127, Msg: fmt.Sprintf("exec %q: no such file or directory", name)}
		}
		return &initproto.InitError{Code: 126, Msg: fmt.Sprintf("exec %q: %v", name, unwrapPath(err))}
	}
	if st.IsDir() {
		return &initproto.InitError{Code: 126, Msg: fmt.Sprintf("exec %q: is a directory", name)}
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return &initproto.InitError{Code: 126, Msg: fmt.Sprintf("exec %q: permission denied", name)}
	}
	return nil
}

// loopbackUp brings up lo in a new network namespace, where the kernel
// leaves it down; programs expect 127.0.0.1 to work, as runc and Docker
// make it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bring up: %w", err)
	}
	return nil
}

// initComm is the init's name in /proc/PID/comm, NUL-terminated.
var initComm = []byte("berth-init\x00")
