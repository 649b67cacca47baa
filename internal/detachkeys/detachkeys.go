// Package detachkeys parses Docker's detach key spec ("ctrl-p,ctrl-q") and
// finds the sequence in a terminal's input, for run -it, attach and exec -it.
package detachkeys

import (
	"fmt"
	"strings"
)

// Default is Docker's sequence.
const Default = "ctrl-p,ctrl-q"

// Parse turns a spec such as "ctrl-p,ctrl-q" or "ctrl-x,x" into the bytes
// typed; "" is Default.
func Parse(spec string) ([]byte, error) {
	if spec == "" {
		spec = Default
	}
	var out []byte
	for _, k := range strings.Split(spec, ",") {
		k = strings.TrimSpace(strings.ToLower(k))
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6 && k[5] >= 'a' && k[5] <= 'z':
			out = append(out, k[5]-'a'+1)
		case k == "ctrl-@":
			out = append(out, 0)
		case k == "ctrl-[":
			out = append(out, 27)
		case k == "ctrl-\\":
			out = append(out, 28)
		case k == "ctrl-]":
			out = append(out, 29)
		case k == "ctrl-^":
			out = append(out, 30)
		case k == "ctrl-_":
			out = append(out, 31)
		default:
			return nil, fmt.Errorf("--detach-keys: invalid key %q", k)
		}
	}
	return out, nil
}

// Scanner finds the key sequence in input that comes in pieces. The keys
// of a partial match are held back, and passed on when the match fails.
type Scanner struct {
	Keys    []byte // empty: never detaches
	matched int
}

// Filter returns what of in goes on to the program, and whether the whole
// sequence has now been typed (what follows it is dropped).
func (s *Scanner) Filter(in []byte) (out []byte, detach bool) {
	if len(s.Keys) == 0 {
		return in, false
	}
	for _, c := range in {
		if c == s.Keys[s.matched] {
			s.matched++
			if s.matched == len(s.Keys) {
				s.matched = 0
				return out, true
			}
			continue
		}
		if s.matched > 0 {
			out = append(out, s.Keys[:s.matched]...)
			s.matched = 0
			// The key that broke a match may start a new one.
			if c == s.Keys[0] {
				s.matched = 1
				continue
			}
		}
		out = append(out, c)
	}
	return out, false
}
