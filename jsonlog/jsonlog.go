// Package jsonlog writes Docker's json-file log format, one entry per line:
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-23T01:02:03.000000001Z"}
//
// It is shared by berth's in-process monitor and the lean monitor program
// (cmd/berth-monitor), so it imports nothing heavier than unicode/utf8:
// no reflection, no encoding/json, not even time, whose formatting alone
// would be a twentieth of the program's code.
package jsonlog

import "unicode/utf8"

// MaxLine is where a line without a newline is cut into a partial entry,
// as Docker's json-file driver does.
const MaxLine = 16 * 1024

// AppendEntry appends the entry of one line of stream written at
// unixNano (nanoseconds since 1970 UTC, as time.Time.UnixNano gives).
func AppendEntry(b []byte, stream string, line []byte, unixNano int64) []byte {
	return AppendEntryAttrs(b, stream, line, "", unixNano)
}

// AppendEntryAttrs is AppendEntry with attrs, a JSON object already
// encoded (--log-opt labels=, env=, tag=), between stream and time as
// Docker writes it; empty for none.
func AppendEntryAttrs(b []byte, stream string, line []byte, attrs string, unixNano int64) []byte {
	b = append(b, `{"log":`...)
	b = AppendString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, stream...)
	b = append(b, '"')
	if attrs != "" {
		b = append(b, `,"attrs":`...)
		b = append(b, attrs...)
	}
	b = append(b, `,"time":"`...)
	b = AppendTime(b, unixNano)
	return append(b, "\"}\n"...)
}

// AppendTime appends unixNano in UTC as time.RFC3339Nano formats it:
// 2006-01-02T15:04:05.999999999Z, the fraction without trailing zeros
// and without the dot when it is zero. Years are 1677 to 2262, all that
// an int64 of nanoseconds holds.
func AppendTime(b []byte, unixNano int64) []byte {
	const day = 86400
	sec, nsec := unixNano/1e9, unixNano%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	days, secs := sec/day, sec%day
	if secs < 0 {
		days, secs = days-1, secs+day
	}
	y, mo, d := civil(days)
	b = appendInt(b, y, 4)
	b = append(b, '-')
	b = appendInt(b, mo, 2)
	b = append(b, '-')
	b = appendInt(b, d, 2)
	b = append(b, 'T')
	b = appendInt(b, secs/3600, 2)
	b = append(b, ':')
	b = appendInt(b, secs/60%60, 2)
	b = append(b, ':')
	b = appendInt(b, secs%60, 2)
	if nsec > 0 {
		digits := 9
		for nsec%10 == 0 {
			nsec /= 10
			digits--
		}
		b = append(b, '.')
		b = appendInt(b, nsec, digits)
	}
	return append(b, 'Z')
}

// Rotated is the name of a rotated log: path.1 is the newest, path.2
// older, and so on, with .gz when compressed (Docker's names).
func Rotated(path string, n int, gz bool) string {
	s := path + "." + string(appendInt(nil, int64(n), 1))
	if gz {
		s += ".gz"
	}
	return s
}

// civil turns days since 1970-01-01 into a proleptic Gregorian date,
// counting in 400-year eras that start on March 1st so that the leap day
// ends each year (Howard Hinnant's days_from_civil, inverted).
func civil(days int64) (year, month, day int64) {
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097                                  // day of the era, 0..146096
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of the era, 0..399
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the year from March 1st
	mp := (5*doy + 2) / 153                                // month from March, 0..11
	day = doy - (153*mp+2)/5 + 1
	month = mp + 3
	if month > 12 {
		month -= 12
	}
	year = yoe + era*400
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendInt appends n, which is not negative, in at least width digits.
func appendInt(b []byte, n int64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for n >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		width--
	}
	i--
	buf[i] = byte('0' + n)
	return append(b, buf[i:]...)
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
