// Command berth-monitor is the lean half of a detached container's monitor.
//
// berth run -d starts this program first, in serve mode (serve.go): it
// forks the container's init when berth asks, so it is the container's
// parent, and once berth has started the container it execve()s itself
// into the loop below with the descriptors berth sent. Other starts
// (start, restarts, a container this mode does not fit) run under
// berth's own monitor process, which execve()s into this program once
// the container runs. Either way the pid stays the container's parent
// and the record's MonitorPid, without berth's few MiB of heap, data and
// runtime: this program only copies the container's output to the
// json-file log and to attached clients, feeds their input to the
// container and waits for it. When the container ends it execve()s back
// into berth, which records the exit, removes what the container used
// and applies --rm and the restart policy.
//
// The Makefile builds it and embeds it into berth (internal/helperbin). The
// loop is package monitorcore, which berth's own monitor runs too when this
// program cannot run; this file only reads the arguments and hands back.
//
// Usage (berth makes the words; nobody types them):
//
//	berth-monitor __monitor serve ID    (descriptor 3: berth's socket; see monitorproto.ServeCommand)
//	berth-monitor __monitor lean ID pid=N log=FD out=FD err=FD in=FD console=FD listen=FD [client=FD] [notify=FD notifyto=FD] berth=PATH
//	    [hint=MS hperiod=MS hstart=MS [hready=1]] [logpath=PATH maxsize=BYTES maxfile=N compress=1] [attrs=JSON]
//	    [journal=KEY=VALUE... journalsock=PATH] -- BERTH-ARGV...
//
// A descriptor of -1 is absent (log=-1: no json-file log); client is a
// connection accepted before (the client a start waited for); notify and
// notifyto, both or neither, are the relay of --sdnotify=container: the
// socket in the container and a connection to systemd's; notifyto alone,
// with hready=1, is where the first passed check's READY=1 goes
// (--sdnotify=healthy). With hint (the
// interval of the container's healthcheck) the program also has the
// checks run, with hperiod and hstart as the start period and start
// interval: berth's health command, with BERTH-ARGV's global flags (see
// monitorcore.Health). The log keys are monitorcore.Logging's. On exit it
// runs BERTH-ARGV with BERTH_MONITOR_EXIT (the exit status in the shell's
// convention) and BERTH_MONITOR_FINISHED (Unix nanoseconds) added to its
// environment.
package main

import (
	"runtime"
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/internal/leanproc"
	"github.com/berth-project/berth/internal/monitorcore"
	proto "github.com/berth-project/berth/internal/monitorproto"
)

func init() {
	// Keep main, which execs berth in the end, on the first thread. An
	// exec from another thread makes the kernel move the process onto
	// it, and while it waits for the first thread to die /proc shows the
	// pid as a zombie: berth would take its monitor for dead.
	runtime.LockOSThread()
}

func main() {
	// berth ignored these; Go's runtime put back handlers that exit.
	// Set with the raw call: os/signal alone would add a fifth to this
	// program's size.
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGQUIT} {
		ignore(sig)
	}
	// One buffer serves the start-up reads and then the container's
	// output: each new size of allocation costs the Go heap a span of
	// its own, 8 KiB or more.
	buf := make([]byte, 32*1024)
	args, err := cmdline(buf)
	if err == nil && len(args) > 2 && args[2] == proto.ServeCommand {
		err = serve(buf)
	} else if err == nil {
		err = run(args, buf)
	}
	complain(err)
	syscall.Exit(1)
}

// complain writes err to stderr, which berth points at the container's
// monitor.log.
func complain(err error) {
	if err != nil {
		_, _ = syscall.Write(2, []byte("berth-monitor: "+err.Error()+"\n"))
	}
}

// ignore sets sig's disposition to SIG_IGN. The kernel's struct
// sigaction is handler, flags, restorer, mask on amd64 and arm64 alike.
func ignore(sig syscall.Signal) {
	act := [4]uintptr{1 /* SIG_IGN */}
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

// cmdline reads this process's arguments, using buf: package os would
// cost more memory than the rest of the program. They are substrings of
// one string, in one slice.
func cmdline(buf []byte) ([]string, error) {
	all, err := leanproc.ReadFile("/proc/self/cmdline", buf)
	if err != nil {
		return nil, err
	}
	line := string(all)
	if n := len(line); n > 0 && line[n-1] == 0 {
		line = line[:n-1]
	}
	return split(line), nil
}

// atoi reads a decimal int of at most 18 digits (a pid, a descriptor or
// a size), with an optional minus sign.
func atoi(s string) (int, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	if s == "" || len(s) > 18 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// itoa writes n in decimal.
func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	u := uint64(n)
	if n < 0 {
		u = -u
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if n < 0 {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// cut is strings.Cut for one byte.
func cut(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// healthArgv is berth's command line that runs one healthcheck: berth's
// own as a monitor (BERTH-ARGV, whose global flags it keeps) up to the
// monitor's command, then the health command and the container's ID (the
// word after "lean").
func healthArgv(berthArgv, args []string) []string {
	id := ""
	for i, a := range args {
		if a == "lean" && i+1 < len(args) {
			id = args[i+1]
			break
		}
	}
	for i, a := range berthArgv {
		if a == proto.MonitorCommand {
			out := make([]string, 0, i+3)
			out = append(out, berthArgv[:i]...)
			return append(out, proto.HealthCommand, "--monitor", id)
		}
	}
	return nil
}

type usageError string

func (e usageError) Error() string { return string(e) }

// param is one KEY=VALUE word of the command line: where its value goes
// (exactly one of the pointers) and whether the word must be there.
type param struct {
	k    string
	n    *int      // a decimal number, -1 allowed (an absent descriptor)
	ms   *int64    // milliseconds, at least 0, kept as nanoseconds
	s    *string   // a string
	list *[]string // a string that may come more than once
	need bool
	set  bool
}

// read stores the value v where p says; false: v is not a valid one.
func (p *param) read(v string) bool {
	p.set = true
	switch {
	case p.n != nil:
		n, ok := atoi(v)
		*p.n = n
		return ok
	case p.ms != nil:
		n, ok := atoi(v)
		*p.ms = int64(n) * 1_000_000
		return ok && n >= 0
	case p.s != nil:
		*p.s = v
	case p.list != nil:
		*p.list = append(*p.list, v)
	}
	return true
}

func run(args []string, buf []byte) error {
	sep := -1
	for i, a := range args {
		if a == "--" {
			sep = i
			break
		}
	}
	if sep < 0 || sep+1 >= len(args) {
		return usageError("usage: berth-monitor __monitor lean ID KEY=VALUE... -- BERTH-ARGV...")
	}
	c := monitorcore.Config{Buf: buf, Complain: complain, Notify: -1, NotifyTo: -1}
	client, maxSize, maxFile := -1, 0, 1
	var berth, compress, hready string
	lg := &c.Logging
	params := [...]param{
		{k: "pid", n: &c.Pid, need: true}, {k: "log", n: &c.Log, need: true}, {k: "out", n: &c.Out, need: true},
		{k: "err", n: &c.Err, need: true}, {k: "in", n: &c.In, need: true}, {k: "console", n: &c.Console, need: true},
		{k: "listen", n: &c.Listen, need: true}, {k: "client", n: &client},
		{k: "notify", n: &c.Notify}, {k: "notifyto", n: &c.NotifyTo},
		{k: "hint", ms: &c.Health.Interval}, {k: "hperiod", ms: &c.Health.StartPeriod}, {k: "hstart", ms: &c.Health.StartInterval},
		{k: "hready", s: &hready},
		{k: "berth", s: &berth}, {k: "logpath", s: &lg.Path}, {k: "maxsize", n: &maxSize}, {k: "maxfile", n: &maxFile},
		{k: "compress", s: &compress}, {k: "attrs", s: &lg.Attrs}, {k: "journal", list: &lg.Journal}, {k: "journalsock", s: &lg.JournalSocket},
	}
	for _, a := range args[1:sep] {
		k, v, ok := cut(a, '=')
		if !ok {
			continue
		}
		for i := range params {
			if params[i].k == k && !params[i].read(v) {
				return usageError("bad " + a)
			}
		}
	}
	for _, p := range params {
		if p.need && !p.set {
			return usageError("needs " + p.k + "=")
		}
	}
	if berth == "" || c.Pid <= 0 {
		return usageError("needs berth= and pid=")
	}
	lg.MaxSize, lg.MaxFile, lg.Berth, lg.Compress = int64(maxSize), maxFile, berth, compress == "1"
	if client >= 0 {
		c.Clients = []int{client}
	}
	if c.Health.Interval > 0 {
		c.Health.Path, c.Health.Argv = berth, healthArgv(args[sep+1:], args)
		c.Health.Ready = hready == "1"
	}
	// Run closes every descriptor it was given: berth gets only stdin,
	// stdout and stderr.
	code, finished, err := monitorcore.Run(c)
	complain(err)
	env := append(syscall.Environ(), proto.EnvExit+"="+itoa(int64(code)), proto.EnvFinished+"="+itoa(finished))
	return syscall.Exec(berth, args[sep+1:], env)
}
