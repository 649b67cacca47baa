//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// The go:debug lines above keep the runtime from holding cgroup files open
// for its GOMAXPROCS updates (Go 1.25+): they would show up as the
// probe's own open fds.

// Command probe runs inside a container and reports what it sees.
//
// Without arguments it prints one JSON document (probe.Report) to stdout.
// Other behaviours, selected by the first argument, serve specific tests:
//
//	probe                  print the report
//	probe exit N           exit with code N
//	probe sleep S          print "ready", then sleep S seconds (may be fractional)
//	probe signals          print "ready", then "got SIGxxx" per signal; exit 0 on SIGTERM
//	probe write-exe PID    try to open /proc/PID/exe and /proc/self/exe for writing
//	probe cat FILE         copy FILE to stdout
//	probe touch FILE       create FILE (or update its times)
//	probe sink PORT        read every TCP connection to PORT to its end
//	probe send ADDR S      send to ADDR for S seconds; print bytes per second
//
// The probe never panics on a missing file: it records the error text
// in the report instead.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/probe"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	// Take the fd list before anything opens a file.
	startFDs = fds()
	if len(args) == 0 || args[0] == "report" {
		return printReport()
	}
	var err error
	switch args[0] {
	case "exit":
		return cmdExit(args[1:])
	case "sleep":
		err = cmdSleep(args[1:])
	case "signals":
		return cmdSignals()
	case "write-exe":
		err = cmdWriteExe(args[1:])
	case "cat":
		err = cmdCat(args[1:])
	case "touch":
		err = cmdTouch(args[1:])
	case "notify":
		err = cmdNotify(args[1:])
	case "swap":
		err = cmdSwap(args[1:])
	case "udpecho":
		err = cmdUDPEcho(args[1:])
	case "sink":
		err = cmdSink(args[1:])
	case "send":
		err = cmdSend(args[1:])
	default:
		err = fmt.Errorf("unknown command %q (want exit, sleep, signals, write-exe, cat, touch, notify, swap, udpecho or nothing)", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	return 0
}

// cmdSink accepts TCP connections on port args[0] and reads each to its
// end, for the throughput benchmark's sender.
func cmdSink(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe sink PORT")
	}
	ln, err := net.Listen("tcp", ":"+args[0])
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

// cmdSend writes to the TCP address args[0] for args[1] seconds, as fast
// as it can, and prints the bytes per second it sent.
func cmdSend(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: probe send ADDR SECONDS")
	}
	secs, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return fmt.Errorf("seconds %q: %w", args[1], err)
	}
	c, err := net.Dial("tcp", args[0])
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 128<<10)
	start := time.Now()
	end := start.Add(time.Duration(secs * float64(time.Second)))
	var n int64
	for time.Now().Before(end) {
		w, err := c.Write(buf)
		n += int64(w)
		if err != nil {
			return err
		}
	}
	fmt.Printf("%d\n", int64(float64(n)/time.Since(start).Seconds()))
	return nil
}

// cmdUDPEcho answers each datagram on UDP port args[0] with
// "probe <sender address>" (busybox has no UDP server for the network
// tests).
func cmdUDPEcho(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe udpecho PORT")
	}
	c, err := net.ListenPacket("udp", ":"+args[0])
	if err != nil {
		return err
	}
	fmt.Println("ready")
	buf := make([]byte, 2048)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(from.String())
		if _, err := c.WriteTo([]byte("probe "+host), from); err != nil {
			return err
		}
	}
}

// startFDs is the fd list taken at the start of main.
var startFDs []probe.FD

func printReport() int {
	r := collect()
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, "probe: encode report:", err)
		return 1
	}
	return 0
}

func cmdExit(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "probe: usage: probe exit N")
		return 2
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: exit code %q: %v\n", args[0], err)
		return 2
	}
	return n
}

func cmdSleep(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe sleep SECONDS")
	}
	s, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		return fmt.Errorf("sleep seconds %q: %w", args[0], err)
	}
	fmt.Println("ready")
	time.Sleep(time.Duration(s * float64(time.Second)))
	return nil
}

var signalNames = map[os.Signal]string{
	unix.SIGHUP:  "SIGHUP",
	unix.SIGINT:  "SIGINT",
	unix.SIGQUIT: "SIGQUIT",
	unix.SIGUSR1: "SIGUSR1",
	unix.SIGUSR2: "SIGUSR2",
	unix.SIGTERM: "SIGTERM",
}

func cmdSignals() int {
	ch := make(chan os.Signal, 16)
	sigs := make([]os.Signal, 0, len(signalNames))
	for s := range signalNames {
		sigs = append(sigs, s)
	}
	signal.Notify(ch, sigs...)
	fmt.Println("ready")
	for s := range ch {
		fmt.Println("got", signalNames[s])
		if s == unix.SIGTERM {
			return 0
		}
	}
	return 0
}

func cmdWriteExe(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe write-exe PID")
	}
	paths := []string{"/proc/" + args[0] + "/exe", "/proc/self/exe"}
	for _, p := range paths {
		fmt.Printf("%s: %s\n", p, tryOpenWrite(p))
	}
	return nil
}

// tryOpenWrite opens p write-only without truncating or writing anything
// and returns "ok" or the error text.
func tryOpenWrite(p string) string {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return errText(err)
	}
	_ = f.Close()
	return "ok"
}

func cmdCat(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe cat FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("cat: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(os.Stdout, f); err != nil {
		return fmt.Errorf("cat %s: %w", args[0], err)
	}
	return nil
}

func cmdTouch(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: probe touch FILE")
	}
	f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("touch %s: %w", args[0], err)
	}
	now := time.Now()
	if err := os.Chtimes(args[0], now, now); err != nil {
		return fmt.Errorf("touch: %w", err)
	}
	return nil
}

// cmdSwap exchanges two paths atomically, over and over, as a hostile
// container racing host-side file operations does (CVE-2018-15664).
func cmdSwap(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: probe swap PATH1 PATH2")
	}
	for {
		if err := unix.Renameat2(unix.AT_FDCWD, args[0], unix.AT_FDCWD, args[1], unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("swap: %w", err)
		}
	}
}

// errText returns the innermost error text (without the "open PATH:"
// prefix os adds) so tests can compare against e.g. "permission denied".
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

func collect() probe.Report {
	r := probe.Report{
		Pid:        os.Getpid(),
		PPid:       os.Getppid(),
		UID:        os.Getuid(),
		GID:        os.Getgid(),
		EUID:       os.Geteuid(),
		EGID:       os.Getegid(),
		Env:        os.Environ(),
		Args:       os.Args,
		Groups:     []int{},
		Namespaces: map[string]string{},
		Mounts:     []probe.Mount{},
		Rlimits:    map[string]probe.Rlimit{},
		FDs:        []probe.FD{},
		Cgroup:     map[string]string{},
		Writable:   map[string]string{},
		Readable:   map[string]string{},
		Devices:    []string{},
		Sysctls:    map[string]string{},
	}
	r.FDs = startFDs

	if g, err := os.Getgroups(); err == nil {
		r.Groups = append(r.Groups, g...)
	}
	old := unix.Umask(0)
	unix.Umask(old)
	r.Umask = old
	if wd, err := os.Getwd(); err == nil {
		r.Cwd = wd
	} else {
		r.Cwd = "error: " + errText(err)
	}

	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		r.Hostname = unix.ByteSliceToString(uts.Nodename[:])
		r.Domain = unix.ByteSliceToString(uts.Domainname[:])
	} else if h, herr := os.Hostname(); herr == nil {
		r.Hostname = h
	}

	status := readStatus()
	r.CapInh = status["CapInh"]
	r.CapPrm = status["CapPrm"]
	r.CapEff = status["CapEff"]
	r.CapBnd = status["CapBnd"]
	r.CapAmb = status["CapAmb"]
	r.NoNewPrivs = atoiOr(status["NoNewPrivs"], -1)
	r.Seccomp = atoiOr(status["Seccomp"], -1)
	r.OOMScoreAdj = atoiOr(readTrim("/proc/self/oom_score_adj"), 0)

	for _, ns := range []string{"pid", "net", "mnt", "uts", "ipc", "user", "cgroup", "time"} {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			l = "error: " + errText(err)
		}
		r.Namespaces[ns] = l
	}
	r.UIDMap = readTrim("/proc/self/uid_map")
	r.GIDMap = readTrim("/proc/self/gid_map")

	r.Mounts = mounts()
	r.Rlimits = rlimits()
	r.Cgroup = cgroupLimits()
	r.CgroupFile = readTrim("/proc/self/cgroup")

	for _, p := range writablePaths {
		r.Writable[p] = tryWrite(p)
	}
	for _, p := range maskedPaths {
		r.Readable[p] = tryRead(p)
	}
	r.Devices = devices()
	for _, k := range sysctls {
		r.Sysctls[k] = readTrim("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
	}
	return r
}

// readTrim returns the trimmed content of p, or "error: <text>".
func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "error: " + errText(err)
	}
	return strings.TrimSpace(string(b))
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

// readStatus parses /proc/self/status into key -> value.
func readStatus() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// fds lists /proc/self/fd without the descriptor used to read it. It uses
// raw system calls, not package os, so that Go's poller (an epoll fd and an
// eventfd) is not created before the list is taken: main calls it first.
func fds() []probe.FD {
	out := []probe.FD{}
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return out
	}
	var names []string
	buf := make([]byte, 16*1024)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == dfd {
			continue
		}
		t, err := readlinkRaw("/proc/self/fd/" + n)
		if err != nil {
			// Closed between listing and readlink: not really open.
			if err == unix.ENOENT {
				continue
			}
			t = "error: " + err.Error()
		}
		out = append(out, probe.FD{FD: fd, Target: t})
	}
	_ = unix.Close(dfd)
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

func readlinkRaw(p string) (string, error) {
	for size := 256; size <= 64*1024; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlink(p, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// unescapeMountinfo undoes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mounts parses /proc/self/mountinfo:
// id parent maj:min root target options [optional...] - fstype source superopts
func mounts() []probe.Mount {
	out := []probe.Mount{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, probe.Mount{
			Target:  unescapeMountinfo(fields[4]),
			Options: fields[5],
			FSType:  fields[sep+1],
			Source:  unescapeMountinfo(fields[sep+2]),
		})
	}
	return out
}

var rlimitNames = []struct {
	name string
	res  int
}{
	{"cpu", unix.RLIMIT_CPU},
	{"fsize", unix.RLIMIT_FSIZE},
	{"data", unix.RLIMIT_DATA},
	{"stack", unix.RLIMIT_STACK},
	{"core", unix.RLIMIT_CORE},
	{"rss", unix.RLIMIT_RSS},
	{"nproc", unix.RLIMIT_NPROC},
	{"nofile", unix.RLIMIT_NOFILE},
	{"memlock", unix.RLIMIT_MEMLOCK},
	{"as", unix.RLIMIT_AS},
	{"locks", unix.RLIMIT_LOCKS},
	{"sigpending", unix.RLIMIT_SIGPENDING},
	{"msgqueue", unix.RLIMIT_MSGQUEUE},
	{"nice", unix.RLIMIT_NICE},
	{"rtprio", unix.RLIMIT_RTPRIO},
	{"rttime", unix.RLIMIT_RTTIME},
}

// rlimits reads every limit of the probe. Go raises its own soft
// RLIMIT_NOFILE to hard-1 at start (and restores it only in children), so
// when nofile looks raised the value the container was given is read from
// a child stopped right after execve: see nofileAtExec.
func rlimits() map[string]probe.Rlimit {
	out := map[string]probe.Rlimit{}
	for _, rl := range rlimitNames {
		var l unix.Rlimit
		if err := unix.Getrlimit(rl.res, &l); err != nil {
			continue
		}
		out[rl.name] = probe.Rlimit{Soft: l.Cur, Hard: l.Max}
	}
	if n, ok := out["nofile"]; ok && n.Hard != unix.RLIM_INFINITY && n.Soft == n.Hard-1 {
		if orig, err := nofileAtExec(); err == nil {
			out["nofile"] = orig
		} else {
			fmt.Fprintln(os.Stderr, "probe: original RLIMIT_NOFILE unknown, reporting the raised one:", err)
		}
	}
	return out
}

// nofileAtExec starts the probe again under PTRACE_TRACEME: the kernel
// stops the child right after execve, before its Go runtime can raise
// RLIMIT_NOFILE, and Go's fork path has already restored the original soft
// limit there. The child's limit is read with prlimit, then it is killed.
func nofileAtExec() (probe.Rlimit, error) {
	cmd := exec.Command("/proc/self/exe", "exit", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		return probe.Rlimit{}, fmt.Errorf("start traced child: %w", err)
	}
	var l unix.Rlimit
	err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, nil, &l)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err != nil {
		return probe.Rlimit{}, fmt.Errorf("prlimit child: %w", err)
	}
	return probe.Rlimit{Soft: l.Cur, Hard: l.Max}, nil
}

// cgroupFiles are limit files read relative to /sys/fs/cgroup, in v2
// (unified) and v1 (per-controller) form, plus the hybrid unified mount.
var cgroupFiles = []string{
	// cgroup v2
	"cgroup.type", "cgroup.controllers", "cgroup.subtree_control",
	"memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max", "memory.oom.group",
	"pids.max", "cpu.max", "cpu.weight", "cpu.idle",
	"cpuset.cpus", "cpuset.mems", "cpuset.cpus.effective", "cpuset.mems.effective",
	"io.max", "io.weight", "io.bfq.weight",
	"hugetlb.2MB.max", "hugetlb.1GB.max",
	// cgroup v1
	"memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes",
	"memory/memory.memsw.limit_in_bytes", "memory/memory.kmem.limit_in_bytes",
	"memory/memory.swappiness", "memory/memory.oom_control",
	"pids/pids.max",
	"cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpu/cpu.shares",
	"cpu/cpu.rt_runtime_us", "cpu/cpu.rt_period_us",
	"cpu,cpuacct/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_period_us", "cpu,cpuacct/cpu.shares",
	"cpuset/cpuset.cpus", "cpuset/cpuset.mems",
	"blkio/blkio.weight", "blkio/blkio.throttle.read_bps_device",
	"blkio/blkio.throttle.write_bps_device", "blkio/blkio.throttle.read_iops_device",
	"blkio/blkio.throttle.write_iops_device",
	"devices/devices.list",
	"freezer/freezer.state",
	"hugetlb/hugetlb.2MB.limit_in_bytes", "hugetlb/hugetlb.1GB.limit_in_bytes",
	// hybrid: cgroup2 mounted at /sys/fs/cgroup/unified
	"unified/cgroup.type", "unified/cgroup.controllers",
	"unified/hugetlb.2MB.max", "unified/hugetlb.1GB.max",
}

func cgroupLimits() map[string]string {
	out := map[string]string{}
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", f))
		if err != nil {
			continue
		}
		out[f] = strings.TrimSpace(string(b))
	}
	return out
}

// writablePaths are sensitive paths a default container must not write.
var writablePaths = []string{
	"/proc/sys/kernel/hostname",
	"/proc/sys/kernel/domainname",
	"/proc/sys/kernel/core_pattern",
	"/proc/sys/vm/drop_caches",
	"/proc/sys/net/ipv4/ip_forward",
	"/proc/sysrq-trigger",
	"/proc/kcore",
	"/proc/irq",
	"/proc/bus",
	"/proc/fs",
	"/sys/kernel/mm",
	"/sys/fs/cgroup",
	"/sys/class",
	"/sys/kernel/uevent_helper",
	"/sys/power/state",
	"/",
	"/tmp",
}

// tryWrite reports whether p can be written without changing anything:
// files are opened O_WRONLY (nothing written, no truncation); directories
// are checked with access(W_OK) and statfs for a read-only mount.
func tryWrite(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return errText(err)
	}
	if !fi.IsDir() {
		return tryOpenWrite(p)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		return unix.EROFS.Error()
	}
	if err := unix.Access(p, unix.W_OK); err != nil {
		return errText(err)
	}
	return "ok"
}

// maskedPaths are the paths OCI runtimes hide by default.
var maskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// tryRead returns "empty", "data" or the error text for p.
func tryRead(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return errText(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return errText(err)
	}
	if fi.IsDir() {
		names, err := f.Readdirnames(1)
		if err != nil && !errors.Is(err, io.EOF) {
			return errText(err)
		}
		if len(names) == 0 {
			return "empty"
		}
		return "data"
	}
	buf := make([]byte, 1)
	n, err := f.Read(buf)
	if n > 0 {
		return "data"
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return errText(err)
	}
	return "empty"
}

// devices lists /dev, with one level of subdirectories ("pts/ptmx").
func devices() []string {
	out := []string{}
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return out
	}
	for _, e := range ents {
		out = append(out, e.Name())
		if !e.IsDir() {
			continue
		}
		sub, err := os.ReadDir(filepath.Join("/dev", e.Name()))
		if err != nil {
			continue
		}
		for _, s := range sub {
			out = append(out, e.Name()+"/"+s.Name())
		}
	}
	sort.Strings(out)
	return out
}

var sysctls = []string{
	"net.ipv4.ip_forward",
	"net.core.somaxconn",
	"net.ipv4.ip_unprivileged_port_start",
	"kernel.shm_rmid_forced",
	"kernel.domainname",
	"kernel.hostname",
}

// cmdNotify sends its arguments, one per line, to $NOTIFY_SOCKET as
// sd_notify(3) does.
func cmdNotify(args []string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return errors.New("NOTIFY_SOCKET is not set")
	}
	if strings.HasPrefix(sock, "@") {
		sock = "\x00" + sock[1:]
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	defer unix.Close(fd)
	msg := strings.Join(args, "\n") + "\n"
	if err := unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: sock}); err != nil {
		return fmt.Errorf("notify %s: %w", sock, err)
	}
	return nil
}
