package monitorcore

import (
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/internal/journal"
	"github.com/berth-project/berth/jsonlog"
)

// Logging is where the container's output is logged besides the clients,
// and how: the json-file log (Config.Log) with rotation, the journal, or
// nowhere (Config.Log -1 and no Journal).
type Logging struct {
	// Path is the json-file log's path, which rotation renames.
	Path string
	// MaxSize rotates the log before an entry would take it past this
	// many bytes (an entry bigger than that alone gets a file of its
	// own); 0 never rotates.
	MaxSize int64
	// MaxFile is how many files are kept, the live one included: with 1
	// the log is emptied when full, as Docker's json-file does.
	MaxFile int
	// Compress gzips the rotated files, in a process of its own (Berth
	// CompressArg FILE), so that this program links no compressor.
	Compress bool
	Berth    string
	// Attrs is the JSON object (--log-opt labels=, env=, tag=) each
	// json-file entry carries, "" for none.
	Attrs string
	// Journal, when set, are the fixed fields (KEY=VALUE) of journal
	// entries: the output goes to journald (JournalSocket, "" for
	// journald's own) instead of a file.
	Journal       []string
	JournalSocket string
}

// CompressArg is berth's hidden command that gzips a rotated log: FILE
// becomes FILE.gz.
const CompressArg = "__compress-log"

// logState is what the writing of the log keeps.
type logState struct {
	Logging
	// size is the live file's, read from the file at the first entry;
	// -1 until then.
	size int64
	// compressor is the pid of the compressing process, 0 for none.
	compressor int
	journal    *journal.Writer
	// names are two buffers for NUL-terminated file names, made once:
	// a rotation allocates nothing, as the heap of this program grows
	// by a span of 8 KiB for each new size of allocation.
	names [2][]byte
	// rotated is how many rotated files there are (path.1 ..
	// path.rotated), so that a rotation renames only those: -1 until
	// the first rotation looks.
	rotated int
}

// atFdcwd is AT_FDCWD (-100) for the *at system calls.
const atFdcwd = ^uintptr(99)

// name writes path.n (.gz) into buffer i and returns it, NUL-terminated,
// for a system call; n 0 is the live file.
func (l *logState) name(i, n int, gz bool) *byte {
	b := append(l.names[i][:0], l.Path...)
	if n > 0 {
		b = append(b, '.')
		var d [20]byte
		k := len(d)
		for {
			k--
			d[k] = byte('0' + n%10)
			n /= 10
			if n == 0 {
				break
			}
		}
		b = append(b, d[k:]...)
	}
	if gz {
		b = append(b, ".gz"...)
	}
	b = append(b, 0)
	l.names[i] = b
	return &b[0]
}

// The file calls of a rotation, on names from logState.name.
func unlinkName(p *byte) error {
	_, _, errno := syscall.Syscall(syscall.SYS_UNLINKAT, atFdcwd, uintptr(unsafe.Pointer(p)), 0)
	return errnoErr(errno)
}

func renameName(from, to *byte) error {
	_, _, errno := syscall.Syscall6(syscall.SYS_RENAMEAT, atFdcwd, uintptr(unsafe.Pointer(from)), atFdcwd, uintptr(unsafe.Pointer(to)), 0, 0)
	return errnoErr(errno)
}

func existsName(p *byte) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_FACCESSAT, atFdcwd, uintptr(unsafe.Pointer(p)), 0 /* F_OK */, 0, 0, 0)
	return errno == 0
}

func openName(p *byte) (int, error) {
	fd, _, errno := syscall.Syscall6(syscall.SYS_OPENAT, atFdcwd, uintptr(unsafe.Pointer(p)),
		syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o640, 0, 0)
	return int(fd), errnoErr(errno)
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// openLogging readies the journal; a failure leaves the output unlogged
// but served. With Compress it keeps c's descriptors from the compressor:
// the lean program got them inheritable, and a compressor holding the
// container's stdin pipe, say, would delay its end of input.
func (m *monitor) openLogging(c Config) {
	l := c.Logging
	m.lg = logState{Logging: l, size: -1, rotated: -1}
	if l.Compress {
		for _, fd := range append([]int{c.Log, c.Out, c.Err, c.In, c.Console, c.Listen}, c.Clients...) {
			if fd >= 0 {
				_, _, _ = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
			}
		}
	}
	if l.MaxSize > 0 && l.MaxFile > 1 {
		for i := range m.lg.names {
			m.lg.names[i] = make([]byte, 0, len(l.Path)+32)
		}
	}
	if len(l.Journal) == 0 {
		return
	}
	w, err := journal.Open(l.JournalSocket, l.Journal)
	if err != nil {
		m.complain(err)
		return
	}
	m.lg.journal = w
}

// writeLog logs one line of a stream.
func (m *monitor) writeLog(stream string, line []byte) {
	if m.lg.journal != nil {
		prio := byte(journal.PriorityStdout)
		if stream == "stderr" {
			prio = journal.PriorityStderr
		}
		partial := len(line) == 0 || line[len(line)-1] != '\n'
		if err := m.lg.journal.Send(line, prio, partial); err != nil && !m.journalFailed {
			// Said once: a journal that went away would fill
			// monitor.log otherwise.
			m.complain(err)
			m.journalFailed = true
		}
		return
	}
	if m.log < 0 {
		return
	}
	m.entry = jsonlog.AppendEntryAttrs(m.entry[:0], stream, line, m.lg.Attrs, wallNow())
	if m.lg.MaxSize > 0 {
		if m.lg.size < 0 {
			var st syscall.Stat_t
			if syscall.Fstat(m.log, &st) == nil {
				m.lg.size = st.Size
			}
		}
		if m.lg.size > 0 && m.lg.size+int64(len(m.entry)) > m.lg.MaxSize {
			m.rotate()
		}
	}
	// A full disk must not stop the container's output.
	n, _ := syscall.Write(m.log, m.entry)
	m.lg.size += int64(max(n, 0))
}

// rotate moves the live log to path.1 (path.1 to path.2 ..., dropping the
// oldest) and opens a new one: between two entries, so that none is lost,
// cut or written twice.
func (m *monitor) rotate() {
	l := &m.lg
	// A compressor still at work on path.1 must be done before path.1
	// moves.
	m.reapCompressor(0)
	if l.MaxFile <= 1 {
		if err := syscall.Ftruncate(m.log, 0); err != nil {
			m.complain(logError("empty log", err))
			return
		}
		l.size = 0
		return
	}
	// Names as jsonlog.Rotated makes them, which berth's reader lists.
	last := l.MaxFile - 1
	if l.rotated < 0 {
		// Left by an earlier run of the container.
		l.rotated = 0
		for l.rotated < last && (existsName(l.name(0, l.rotated+1, false)) || existsName(l.name(0, l.rotated+1, true))) {
			l.rotated++
		}
	}
	if l.rotated >= last {
		for _, gz := range [2]bool{false, true} {
			if err := unlinkName(l.name(0, last, gz)); err != nil && err != syscall.ENOENT {
				m.complain(logError("rotate log", err))
			}
		}
		l.rotated = last - 1
	}
	for i := l.rotated; i >= 1; i-- {
		for _, gz := range [2]bool{false, true} {
			if err := renameName(l.name(0, i, gz), l.name(1, i+1, gz)); err != nil && err != syscall.ENOENT {
				m.complain(logError("rotate log", err))
			}
		}
	}
	if err := renameName(l.name(0, 0, false), l.name(1, 1, false)); err != nil {
		// Writing goes on into the full file rather than nowhere.
		m.complain(logError("rotate log", err))
		return
	}
	l.rotated++
	fd, err := openName(l.name(0, 0, false))
	if err != nil {
		// The renamed file is still open: the lines go there.
		m.complain(logError("rotate log", err))
		return
	}
	syscall.Close(m.log)
	m.log, l.size = fd, 0
	if l.Compress && l.Berth != "" {
		first := jsonlog.Rotated(l.Path, 1, false)
		pid, err := syscall.ForkExec(l.Berth, []string{"berth", CompressArg, first},
			&syscall.ProcAttr{Env: []string{}, Files: []uintptr{0, 1, 2}})
		if err != nil {
			m.complain(logError("compress log", err))
			return
		}
		l.compressor = pid
	}
}

// reapCompressor collects the compressing process, waiting for it unless
// options is WNOHANG.
func (m *monitor) reapCompressor(options int) {
	if m.lg.compressor == 0 {
		return
	}
	code, ended := collect(m.lg.compressor, options)
	if !ended {
		return
	}
	m.lg.compressor = 0
	if code != 0 {
		m.complain(logError("compress log", syscall.Errno(0)))
	}
}

// closeLogging ends what openLogging and rotate started.
func (m *monitor) closeLogging() {
	m.reapCompressor(0)
	if m.lg.journal != nil {
		m.lg.journal.Close()
		m.lg.journal = nil
	}
}

type logErr struct {
	what string
	err  error
}

func (e logErr) Error() string {
	if e.err == syscall.Errno(0) {
		return e.what + ": the compressor failed (see its complaint above)"
	}
	return e.what + ": " + e.err.Error()
}

func logError(what string, err error) error { return logErr{what, err} }
