// Package jsonlog writes Docker's json-file log format, one entry per line:
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-23T01:02:03.000000001Z"}
//
// It is shared by berth's in-process monitor and the lean monitor program
// (cmd/berth-monitor), so it imports nothing heavier than time: no
// reflection, no encoding/json.
package jsonlog

import (
	"time"
	"unicode/utf8"
)

// MaxLine is where a line without a newline is cut into a partial entry,
// as Docker's json-file driver does.
const MaxLine = 16 * 1024

// AppendEntry appends the entry of one line of stream written at t.
func AppendEntry(b []byte, stream string, line []byte, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = AppendString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, `","time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// AppendString quotes s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func AppendString(b, s []byte) []byte {
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

// Splitter cuts one stream of output into entries: at each newline, and
// every MaxLine bytes of a line that has none yet.
type Splitter struct {
	// Emit gets each entry's bytes; they are only valid during the call.
	Emit func(line []byte)
	buf  []byte
}

// Write splits p onto what is left over from earlier writes.
func (s *Splitter) Write(p []byte) {
	s.buf = append(s.buf, p...)
	rest := s.buf
	for {
		i := indexNewline(rest)
		if i < 0 {
			break
		}
		s.Emit(rest[:i+1])
		rest = rest[i+1:]
	}
	for len(rest) >= MaxLine {
		s.Emit(rest[:MaxLine])
		rest = rest[MaxLine:]
	}
	// Keep the partial line at the front of the buffer, so that a
	// long-lived stream does not keep growing new arrays.
	s.buf = append(s.buf[:0], rest...)
	if cap(s.buf) > 4*MaxLine && len(s.buf) < MaxLine {
		s.buf = append([]byte(nil), s.buf...)
	}
}

// Flush emits a partial last line (the stream ended).
func (s *Splitter) Flush() {
	if len(s.buf) > 0 {
		s.Emit(s.buf)
	}
	s.buf = s.buf[:0]
}

// indexNewline is bytes.IndexByte(b, '\n'). Package bytes would bring the
// unicode tables into the lean monitor's memory.
func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
