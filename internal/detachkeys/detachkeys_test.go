package detachkeys

import (
	"bytes"
	"testing"
)

func TestParse(t *testing.T) {
	for spec, want := range map[string][]byte{
		"": {16, 17}, "ctrl-p,ctrl-q": {16, 17}, "ctrl-x, x": {24, 'x'}, "ctrl-@,ctrl-_": {0, 31},
	} {
		got, err := Parse(spec)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ctrl-pp", "alt-x", "xy", ","} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func TestScanner(t *testing.T) {
	s := Scanner{Keys: []byte{16, 17}}
	var got []byte
	for _, piece := range [][]byte{[]byte("ab\x10"), []byte("c\x10\x10"), []byte("d\x10")} {
		out, detach := s.Filter(piece)
		if detach {
			t.Fatalf("detached at %q", piece)
		}
		got = append(got, out...)
	}
	if want := "ab\x10c\x10\x10d"; string(got) != want {
		t.Errorf("passed %q, want %q", got, want)
	}
	out, detach := s.Filter([]byte("\x11rest"))
	if !detach || len(out) != 0 {
		t.Errorf("split sequence: %q, %v", out, detach)
	}
	none := Scanner{}
	if out, detach := none.Filter([]byte("\x10\x11")); detach || string(out) != "\x10\x11" {
		t.Errorf("no keys: %q %v", out, detach)
	}
}
