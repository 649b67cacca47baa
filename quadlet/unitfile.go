// Package quadlet turns Quadlet's *.container files (systemd unit syntax
// with a [Container] section) into service units that run the container
// with berth in the foreground; berth does this as a systemd generator
// (berth-generator), so the units appear on daemon-reload.
package quadlet

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Entry is one Key=Value line of a section, with its line number for
// messages.
type Entry struct {
	Key, Value string
	Line       int
}

// Section is a [Name] and its entries in file order (keys may repeat).
type Section struct {
	Name    string
	Entries []Entry
}

// File is a parsed unit file.
type File struct {
	Sections []*Section
}

// Section returns the named section, nil when the file has none.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Parse reads systemd's unit file syntax: [Section] headers, Key=Value
// lines, comments starting with # or ;, and a backslash at a line's end
// continuing it on the next (joined with a space, as systemd does).
func Parse(r io.Reader) (*File, error) {
	f := &File{}
	var cur *Section
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line, start := strings.TrimSpace(sc.Text()), n
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			n++
			next := strings.TrimSpace(sc.Text())
			if next != "" && (next[0] == '#' || next[0] == ';') {
				// systemd skips comment lines inside a continuation.
				continue
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("line %d: bad section header %q", start, line)
			}
			cur = &Section{Name: line[1 : len(line)-1]}
			f.Sections = append(f.Sections, cur)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: %q is not Key=Value", start, line)
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %s= outside any section", start, k)
		}
		cur.Entries = append(cur.Entries, Entry{Key: k, Value: strings.TrimSpace(v), Line: start})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// Words splits a value into words the way systemd does for command lines
// and lists (Exec=, Environment=, WantedBy=): blanks separate words,
// double or single quotes group, and a backslash escapes the next
// character (\n, \t and \\ as in C).
func Words(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("%q ends in a lone backslash", s)
			}
			i++
			switch e := rs[i]; e {
			case 'n':
				w.WriteRune('\n')
			case 't':
				w.WriteRune('\t')
			default:
				w.WriteRune(e)
			}
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				w.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q has an unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
