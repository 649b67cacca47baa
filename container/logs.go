package container

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-project/berth/jsonlog"
)

// LogEntry is one decoded json-file line.
type LogEntry struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	Time   time.Time         `json:"time"`
}

// LogOpts select and shape what ReadLogs prints.
type LogOpts struct {
	Tail       int // -1: all
	Since      time.Time
	Until      time.Time
	Timestamps bool
	Follow     bool
	// Details prefixes each line with its attributes (--log-opt labels=,
	// env=, tag=), as docker logs --details does.
	Details bool
	// Running tells a follower whether more output can come.
	Running func() bool
}

// ErrNoLogReader is the answer of logs for a container whose log driver
// keeps nothing to read (none), in Docker's words.
var ErrNoLogReader = errors.New("configured logging driver does not support reading")

// rotatedLogs lists the rotated files of the log at path, oldest first;
// a file both plain and compressed (a compressor between its rename and
// its unlink) is read plain.
func rotatedLogs(path string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list logs: %w", err)
	}
	base := filepath.Base(path) + "."
	byNum := map[int]string{}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base)
		if !ok {
			continue
		}
		num, gz := strings.CutSuffix(rest, ".gz")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue
		}
		if _, seen := byNum[n]; !seen || !gz {
			byNum[n] = jsonlog.Rotated(path, n, gz)
		}
	}
	nums := make([]int, 0, len(byNum))
	for n := range byNum {
		nums = append(nums, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nums)))
	files := make([]string, len(nums))
	for i, n := range nums {
		files[i] = byNum[n]
	}
	return files, nil
}

// openRotated opens a rotated log, uncompressing a .gz one, and returns
// the inode it opened.
func openRotated(name string) (io.ReadCloser, uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	ino := inode(f)
	if !strings.HasSuffix(name, ".gz") {
		return f, ino, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open log %s: %w", filepath.Base(name), err)
	}
	return struct {
		io.Reader
		io.Closer
	}{z, f}, ino, nil
}

// logPrinter prints entries as LogOpts say.
type logPrinter struct {
	o              LogOpts
	stdout, stderr io.Writer
	// last is the time of the last entry read, and after skips those
	// not past it (a follower catching up after rotations).
	last, after time.Time
}

func (p *logPrinter) print(line []byte) error {
	var e LogEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil // a torn last line (crash while writing) is skipped
	}
	if !p.after.IsZero() && !e.Time.After(p.after) {
		return nil
	}
	p.last = e.Time
	o := p.o
	if !o.Since.IsZero() && e.Time.Before(o.Since) || !o.Until.IsZero() && e.Time.After(o.Until) {
		return nil
	}
	w := p.stdout
	if e.Stream == "stderr" {
		w = p.stderr
	}
	var pre []byte
	if o.Timestamps {
		pre = append(e.Time.AppendFormat(pre, time.RFC3339Nano), ' ')
	}
	if o.Details {
		pre = append(appendAttrs(pre, e.Attrs), ' ')
	}
	if len(pre) > 0 {
		if _, err := w.Write(pre); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, e.Log)
	return err
}

// appendAttrs writes attributes as docker logs --details does: sorted,
// key=value, comma-separated, query-escaped.
func appendAttrs(b []byte, attrs map[string]string) []byte {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, url.QueryEscape(k)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(attrs[k])...)
	}
	return b
}

// ReadLogs copies a container's json-file log, its rotated files first
// (oldest first, compressed or not), to stdout and stderr by stream; with
// Follow it then follows the live file across rotations.
func ReadLogs(path string, o LogOpts, stdout, stderr io.Writer) error {
	p := &logPrinter{o: o, stdout: stdout, stderr: stderr}
	f, err := os.Open(path)
	for try := 0; os.IsNotExist(err) && try < 20 && hasRotatedLog(path); try++ {
		// Between a rotation's rename and its new file.
		time.Sleep(time.Millisecond)
		f, err = os.Open(path)
	}
	if os.IsNotExist(err) {
		if !o.Follow {
			return readRotated(path, p)
		}
		for os.IsNotExist(err) && o.Running() {
			time.Sleep(100 * time.Millisecond)
			f, err = os.Open(path)
		}
		if os.IsNotExist(err) {
			return readRotated(path, p)
		}
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	f, older, _, err := openStable(path, f)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	liveIno := inode(f)
	var tail [][]byte
	keep := func(line []byte) error {
		if o.Tail < 0 {
			return p.print(line)
		}
		tail = append(tail, line)
		if len(tail) > o.Tail {
			tail = tail[1:]
		}
		return nil
	}
	for i, r := range older {
		err := scanLines(r, keep)
		r.Close()
		if err != nil {
			for _, r := range older[i+1:] {
				r.Close()
			}
			return fmt.Errorf("read log: %w", err)
		}
	}
	rd := bufio.NewReaderSize(f, 64*1024)
	var off int64
	var partial []byte
	for {
		line, err := rd.ReadBytes('\n')
		off += int64(len(line))
		if err == io.EOF {
			partial = line
			break
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if err := keep(line); err != nil {
			return err
		}
	}
	for _, l := range tail {
		if err := p.print(l); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		line, err := rd.ReadBytes('\n')
		off += int64(len(line))
		partial = append(partial, line...)
		if err == nil {
			if err := p.print(partial); err != nil {
				return err
			}
			partial = nil
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("read log: %w", err)
		}
		// At the end of the file: has the log moved on?
		if st, serr := os.Stat(path); serr == nil && !sameInode(st, liveIno) {
			// Rotated: the monitor writes whole entries and renames
			// between them, so f is complete now, but it may have
			// grown since our last read.
			if err := p.printRest(partial, rd); err != nil {
				return err
			}
			nf, err := os.Open(path)
			if err == nil {
				// More than one rotation since the last look: the
				// files between are read first.
				if nf, err = p.catchUp(path, liveIno, nf); err != nil {
					return err
				}
				f.Close()
				f, rd, off, partial, liveIno = nf, bufio.NewReaderSize(nf, 64*1024), 0, nil, inode(nf)
				continue
			}
			partial = nil
		} else if serr == nil && st.Size() < off {
			// Emptied (max-file=1): start over.
			if _, err := f.Seek(0, io.SeekStart); err == nil {
				rd.Reset(f)
				off, partial = 0, nil
				continue
			}
		}
		if !o.Running() {
			// One more look: the monitor may have written its last
			// lines just before it recorded the exit.
			return p.printRest(partial, rd)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// printRest prints partial and the rest of rd, whose last line may be
// unfinished: the end of a file nothing will add to any more.
func (p *logPrinter) printRest(partial []byte, rd io.Reader) error {
	rest, err := io.ReadAll(rd)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	for _, l := range bytes.SplitAfter(append(partial, rest...), []byte("\n")) {
		if len(l) > 0 {
			if err := p.print(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// catchUp prints the rotated files newer than the one a follower read to
// its end (inode old), taken with the live file nf as one consistent set
// (see openStable): those after old, when it is still there uncompressed;
// otherwise every entry past the last one printed. It returns the live
// file to follow next, nf or, rotated meanwhile, its successor.
func (p *logPrinter) catchUp(path string, old uint64, nf *os.File) (*os.File, error) {
	nf, older, inos, err := openStable(path, nf)
	if err != nil {
		return nil, err
	}
	from := -1
	for i, ino := range inos {
		if ino == old {
			from = i + 1
		}
	}
	if from < 0 {
		p.after, from = p.last, 0
		defer func() { p.after = time.Time{} }()
	}
	for i, r := range older {
		if i >= from && err == nil {
			err = scanLines(r, p.print)
		}
		r.Close()
	}
	if err != nil {
		nf.Close()
		return nil, fmt.Errorf("read log: %w", err)
	}
	return nf, nil
}

// openStable opens the rotated files of the log at path, oldest first,
// beside its live file f, as one consistent set: the monitor renames them
// one by one while it rotates, so the set is taken as whole only if the
// files (names and inodes) are the same after the opening as before and
// path is still the live file; otherwise it looks again. It returns the
// inodes of the rotated files with them.
func openStable(path string, f *os.File) (*os.File, []io.ReadCloser, []uint64, error) {
	for try := 0; ; try++ {
		live := inode(f)
		before, err := logInodes(path)
		if err != nil {
			f.Close()
			return nil, nil, nil, err
		}
		var older []io.ReadCloser
		var inos []uint64
		closeAll := func() {
			for _, r := range older {
				r.Close()
			}
			older, inos = nil, nil
		}
		stable := true
		for _, fi := range before {
			if fi.ino == live {
				break // f, rotated meanwhile: read as the live file
			}
			r, ino, err := openRotated(fi.name)
			if err != nil && !os.IsNotExist(err) {
				closeAll()
				f.Close()
				return nil, nil, nil, err
			}
			if err != nil || ino != fi.ino {
				stable = false
				break
			}
			older, inos = append(older, r), append(inos, ino)
		}
		if stable {
			after, err := logInodes(path)
			st, serr := os.Stat(path)
			stable = err == nil && serr == nil && sameInode(st, live) && equalInodes(before, after)
		}
		if stable || try == 200 {
			return f, older, inos, nil
		}
		closeAll()
		// A log rotating faster than it can be listed: wait longer
		// each time, for a pause in its output.
		time.Sleep(time.Duration(min(try+1, 50)) * time.Millisecond)
		if nf, err := os.Open(path); err == nil {
			f.Close()
			f = nf
		}
	}
}

// fileIno is a rotated log's name and inode.
type fileIno struct {
	name string
	ino  uint64
}

// logInodes lists the rotated files of path with their inodes (0 for
// one gone meanwhile).
func logInodes(path string) ([]fileIno, error) {
	names, err := rotatedLogs(path)
	if err != nil {
		return nil, err
	}
	out := make([]fileIno, len(names))
	for i, n := range names {
		out[i].name = n
		if st, err := os.Stat(n); err == nil {
			out[i].ino = st.Sys().(*syscall.Stat_t).Ino
		}
	}
	return out, nil
}

func equalInodes(a, b []fileIno) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hasRotatedLog tells whether the log at path has a rotated file.
func hasRotatedLog(path string) bool {
	for _, gz := range []bool{false, true} {
		if _, err := os.Stat(jsonlog.Rotated(path, 1, gz)); err == nil {
			return true
		}
	}
	return false
}

// readRotated prints the rotated files of a log whose live file is gone.
func readRotated(path string, p *logPrinter) error {
	rotated, err := rotatedLogs(path)
	if err != nil {
		return err
	}
	var tail [][]byte
	for _, name := range rotated {
		if err := readLines(name, func(l []byte) error {
			if p.o.Tail < 0 {
				return p.print(l)
			}
			tail = append(tail, l)
			if len(tail) > p.o.Tail {
				tail = tail[1:]
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for _, l := range tail {
		if err := p.print(l); err != nil {
			return err
		}
	}
	return nil
}

// readLines calls fn with each whole line of a rotated log.
func readLines(name string, fn func([]byte) error) error {
	r, _, err := openRotated(name)
	if os.IsNotExist(err) && !strings.HasSuffix(name, ".gz") {
		// Compressed meanwhile.
		r, _, err = openRotated(name + ".gz")
	}
	if os.IsNotExist(err) {
		return nil // rotated out meanwhile
	}
	if err != nil {
		return err
	}
	defer r.Close()
	if err := scanLines(r, fn); err != nil {
		return fmt.Errorf("read log %s: %w", filepath.Base(name), err)
	}
	return nil
}

// scanLines calls fn with each whole line of r.
func scanLines(r io.Reader, fn func([]byte) error) error {
	rd := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 && err == nil {
			if err := fn(line); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func inode(f *os.File) uint64 {
	if st, err := f.Stat(); err == nil {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			return s.Ino
		}
	}
	return 0
}

func sameInode(st os.FileInfo, ino uint64) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && s.Ino == ino
}
