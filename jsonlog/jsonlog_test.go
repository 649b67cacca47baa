package jsonlog

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestAppendEntryIsDockerJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 1, 2, 3, 4, time.FixedZone("x", 3600))
	for _, line := range []string{"hello\n", "quote \" back \\ tab \t cr \r", "ctl \x01\x7f", "bad \xff utf8 é", ""} {
		b := AppendEntry(nil, "stderr", []byte(line), at.UnixNano())
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

// AppendTime must write what package time writes, which readers of the
// log (berth's own, Docker's tools) parse.
func TestAppendTimeIsRFC3339Nano(t *testing.T) {
	ns := []int64{
		0, 1, -1, 999999999, 1e9, -1e9, 1e9 + 1000, 123456789,
		math.MinInt64, math.MaxInt64,
		time.Date(2000, 2, 29, 23, 59, 59, 5e8, time.UTC).UnixNano(), // leap day of a 400th year
		time.Date(2100, 2, 28, 12, 0, 0, 0, time.UTC).UnixNano(),     // 2100 has none
		time.Date(2100, 3, 1, 0, 0, 0, 10, time.UTC).UnixNano(),
		time.Date(1900, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC).UnixNano(),
		time.Date(2026, 12, 31, 23, 59, 59, 120000000, time.UTC).UnixNano(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		ns = append(ns, r.Int64())
		ns = append(ns, -r.Int64())
	}
	for _, n := range ns {
		got := string(AppendTime([]byte("x"), n))
		want := "x" + time.Unix(0, n).UTC().Format(time.RFC3339Nano)
		if got != want {
			t.Fatalf("AppendTime(%d) = %q, want %q", n, got, want)
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
