package seccomp

import (
	"runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The default profile mirrors the behaviour of Docker's default seccomp
// profile: deny with EPERM by default, allow a broad list of ordinary
// syscalls, restrict personality, socket and clone by argument, and enable
// privileged syscalls only when the matching capability is in the bounding
// set. Names are grouped by purpose here; names that do not exist on an
// architecture are skipped by the compiler.
//
// Differences from Docker's profile: the io_uring syscalls are not allowed
// (newer Docker releases dropped them as well); ptrace, process_vm_readv and
// process_vm_writev are allowed unconditionally (Docker requires kernel >= 4.8,
// which every supported kernel is).

var defaultAllowed = [][]string{
	// processes, threads, exit, wait
	{"exit", "exit_group", "execve", "execveat", "fork", "vfork", "wait4", "waitid", "waitpid",
		"getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setpgid", "setsid",
		"set_tid_address", "set_robust_list", "get_robust_list", "restart_syscall", "rseq",
		"set_thread_area", "get_thread_area", "membarrier", "pidfd_open", "pidfd_send_signal",
		"process_mrelease", "prctl", "seccomp", "capget", "capset", "uname", "sysinfo", "times",
		"getrusage", "getrlimit", "setrlimit", "ugetrlimit", "prlimit64", "getpriority", "setpriority",
		"getcpu", "getrandom", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
		"ptrace", "process_vm_readv", "process_vm_writev"},
	// credentials
	{"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
		"getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
		"setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
		"setresuid", "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32",
		"setfsuid", "setfsuid32", "setfsgid", "setfsgid32"},
	// signals
	{"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
		"sigaltstack", "sigprocmask", "sigreturn", "signalfd", "signalfd4", "pause"},
	// memory
	{"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
		"mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages",
		"memfd_create", "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect"},
	// time, timers, sleeping, scheduling
	{"alarm", "getitimer", "setitimer", "time", "gettimeofday", "adjtimex", "clock_adjtime", "clock_adjtime64",
		"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
		"clock_nanosleep", "clock_nanosleep_time64", "nanosleep",
		"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
		"timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
		"timerfd_settime", "timerfd_settime64",
		"futex", "futex_time64", "futex_waitv",
		"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
		"sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
		"sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
		"sched_rr_get_interval_time64", "ioprio_get", "ioprio_set"},
	// file descriptors and I/O
	{"read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
		"close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "flock",
		"lseek", "_llseek", "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile", "sendfile64",
		"copy_file_range", "readahead", "fadvise64", "fadvise64_64", "fallocate",
		"fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "ftruncate", "ftruncate64",
		"select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
		"epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
		"io_pgetevents_time64"},
	// file system
	{"open", "openat", "openat2", "creat", "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd",
		"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
		"statfs", "statfs64", "fstatfs", "fstatfs64", "getdents", "getdents64",
		"mkdir", "mkdirat", "rmdir", "mknod", "mknodat", "link", "linkat", "unlink", "unlinkat",
		"symlink", "symlinkat", "readlink", "readlinkat", "rename", "renameat", "renameat2",
		"truncate", "truncate64", "umask", "chmod", "fchmod", "fchmodat", "chown", "chown32",
		"fchown", "fchown32", "fchownat", "lchown", "lchown32",
		"utime", "utimes", "utimensat", "utimensat_time64", "futimesat", "name_to_handle_at",
		"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
		"listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr"},
	// networking (socket itself is argument-restricted below)
	{"socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4", "getsockname",
		"getpeername", "getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg",
		"recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64", "shutdown"},
	// System V and POSIX IPC
	{"ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
		"semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
		"mq_open", "mq_unlink", "mq_getsetattr", "mq_notify", "mq_timedreceive",
		"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64"},
	// x86 specific
	{"arch_prctl", "modify_ldt"},
}

// capSyscalls lists the syscalls allowed when a capability is present.
var capSyscalls = map[string][]string{
	"CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
	"CAP_SYS_ADMIN": {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
		"fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
		"perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
		"syslog", "umount", "umount2", "unshare"},
	"CAP_SYS_BOOT":       {"reboot"},
	"CAP_SYS_CHROOT":     {"chroot"},
	"CAP_SYS_MODULE":     {"init_module", "finit_module", "delete_module"},
	"CAP_SYS_PACCT":      {"acct"},
	"CAP_SYS_PTRACE":     {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
	"CAP_SYS_RAWIO":      {"iopl", "ioperm"},
	"CAP_SYS_TIME":       {"settimeofday", "stime", "clock_settime", "clock_settime64"},
	"CAP_SYS_TTY_CONFIG": {"vhangup"},
	"CAP_SYS_NICE":       {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"},
	"CAP_SYSLOG":         {"syslog"},
	"CAP_BPF":            {"bpf"},
	"CAP_PERFMON":        {"perf_event_open"},
}

// capOrder fixes the order in which capability rules are emitted.
var capOrder = []string{"CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT",
	"CAP_SYS_MODULE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_SYS_NICE", "CAP_SYSLOG", "CAP_BPF", "CAP_PERFMON"}

// Namespace flags clone may not use without CAP_SYS_ADMIN: CLONE_NEWNS,
// CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID and
// CLONE_NEWNET (0x7E020000).
const cloneNamespaceMask = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// personality values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32
// and 0xffffffff (query).
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// afVsock is AF_VSOCK, which Docker's profile keeps out of containers.
const afVsock = 40

// DefaultProfile returns a profile equivalent to Docker's default seccomp
// profile for a container whose bounding capability set is caps (names like
// "CAP_SYS_ADMIN"; the "CAP_" prefix is optional, case-insensitive).
func DefaultProfile(caps []string) *specs.LinuxSeccomp {
	have := map[string]bool{}
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		have[c] = true
	}
	eperm := uint(unix.EPERM)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   defaultArches(),
	}
	var names []string
	for _, group := range defaultAllowed {
		names = append(names, group...)
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActAllow})

	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
		Names: []string{"socket"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: afVsock, Op: specs.OpNotEqual}},
	})
	for _, v := range allowedPersonalities {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}},
		})
	}
	for _, c := range capOrder {
		if have[c] {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
				Names: slices.Clone(capSyscalls[c]), Action: specs.ActAllow,
			})
		}
	}
	if !have["CAP_SYS_ADMIN"] {
		p.Syscalls = append(p.Syscalls,
			specs.LinuxSyscall{
				Names: []string{"clone"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: cloneNamespaceMask, ValueTwo: 0, Op: specs.OpMaskedEqual}},
			},
			// Make clone3 look absent so that libcs fall back to clone,
			// whose flags the filter can inspect.
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintPtr(uint(unix.ENOSYS))},
		)
	}
	return p
}

func uintPtr(v uint) *uint { return &v }

func defaultArches() []specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	}
	return nil
}
