package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLine is where a line without a newline is cut into a partial entry,
// as Docker's json-file driver does.
const maxLine = 16 * 1024

// LogWriter appends Docker json-file entries:
// {"log":"hello\n","stream":"stdout","time":"2026-11-23T01:02:03.000000001Z"}
type LogWriter struct {
	mu  sync.Mutex
	f   *os.File
	out []byte
}

// OpenLog opens (appends to) a json-file log.
func OpenLog(path string) (*LogWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &LogWriter{f: f}, nil
}

// Close closes the log file.
func (w *LogWriter) Close() error { return w.f.Close() }

func (w *LogWriter) entry(stream string, line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := append(w.out[:0], `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	w.out = b
	_, _ = w.f.Write(b) // a full disk must not stop the container's output
}

// lineSplitter cuts a stream into log entries.
type lineSplitter struct {
	w      *LogWriter
	stream string
	buf    []byte
}

func (l *lineSplitter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.w.entry(l.stream, l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	for len(l.buf) >= maxLine {
		l.w.entry(l.stream, l.buf[:maxLine])
		l.buf = l.buf[maxLine:]
	}
	if len(l.buf) == 0 {
		l.buf = nil
	}
	return len(p), nil
}

func (l *lineSplitter) flush() {
	if len(l.buf) > 0 {
		l.w.entry(l.stream, l.buf)
		l.buf = nil
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string without the reflection of
// encoding/json: the monitor writes every line through it.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// LogEntry is one decoded json-file line.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogOpts select and shape what ReadLogs prints.
type LogOpts struct {
	Tail       int // -1: all
	Since      time.Time
	Until      time.Time
	Timestamps bool
	Follow     bool
	// Running tells a follower whether more output can come.
	Running func() bool
}

// ReadLogs copies a container's log to stdout and stderr by stream.
func ReadLogs(path string, o LogOpts, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		if !o.Follow {
			return nil
		}
		for os.IsNotExist(err) && o.Running() {
			time.Sleep(100 * time.Millisecond)
			f, err = os.Open(path)
		}
		if os.IsNotExist(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	print := func(line []byte) error {
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil // a torn last line (crash while writing) is skipped
		}
		if !o.Since.IsZero() && e.Time.Before(o.Since) || !o.Until.IsZero() && e.Time.After(o.Until) {
			return nil
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			if _, err := io.WriteString(w, e.Time.Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, e.Log)
		return err
	}
	rd := bufio.NewReaderSize(f, 64*1024)
	var lines [][]byte
	var partial []byte
	for {
		line, err := rd.ReadBytes('\n')
		if err == io.EOF {
			partial = line
			break
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if o.Tail >= 0 {
			lines = append(lines, line)
			if len(lines) > o.Tail {
				lines = lines[1:]
			}
			continue
		}
		if err := print(line); err != nil {
			return err
		}
	}
	for _, l := range lines {
		if err := print(l); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		line, err := rd.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			if err := print(partial); err != nil {
				return err
			}
			partial = nil
			continue
		}
		if err != io.EOF {
			return fmt.Errorf("read log: %w", err)
		}
		if !o.Running() {
			// One more look: the monitor may have written its last
			// lines just before it recorded the exit.
			rest, _ := io.ReadAll(rd)
			for _, l := range bytes.SplitAfter(append(partial, rest...), []byte("\n")) {
				if len(l) > 0 {
					if err := print(l); err != nil {
						return err
					}
				}
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
