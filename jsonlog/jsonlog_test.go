package jsonlog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAppendEntryIsDockerJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 1, 2, 3, 4, time.FixedZone("x", 3600))
	for _, line := range []string{"hello\n", "quote \" back \\ tab \t cr \r", "ctl \x01\x7f", "bad \xff utf8 é", ""} {
		b := AppendEntry(nil, "stderr", []byte(line), at)
		if !strings.HasSuffix(string(b), "\n") {
			t.Fatalf("entry %q does not end in a newline", b)
		}
		var e struct {
			Log    string    `json:"log"`
			Stream string    `json:"stream"`
			Time   time.Time `json:"time"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("entry %q is not JSON: %v", b, err)
		}
		// encoding/json is the reference for what a reader gets back.
		want := strings.ToValidUTF8(line, "\ufffd")
		if e.Log != want || e.Stream != "stderr" || !e.Time.Equal(at) {
			t.Errorf("entry %q decodes to %+v, want log %q", b, e, want)
		}
		if !strings.Contains(string(b), `"time":"2026-11-23T00:02:03.000000004Z"`) {
			t.Errorf("entry %q: time not in UTC RFC 3339 with nanoseconds", b)
		}
	}
}

func TestSplitter(t *testing.T) {
	var got []string
	s := Splitter{Emit: func(l []byte) { got = append(got, string(l)) }}
	s.Write([]byte("a\nb"))
	s.Write([]byte("c\n\nd"))
	long := strings.Repeat("x", MaxLine)
	s.Write([]byte(long + "yz"))
	s.Flush()
	s.Flush()
	want := []string{"a\n", "bc\n", "\n", "d" + long[:MaxLine-1], "xyz"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries %q, want %q", got, want)
	}
}
