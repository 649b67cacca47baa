package container

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/jsonlog"
)

func TestLogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	// Written as the monitor writes it (monitorcore).
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	splitter := func(stream string) *jsonlog.Splitter {
		return &jsonlog.Splitter{Emit: func(line []byte) {
			_, _ = w.Write(jsonlog.AppendEntry(nil, stream, line, time.Now().UnixNano()))
		}}
	}
	out := splitter("stdout")
	errs := splitter("stderr")
	out.Write([]byte("hello\nwor"))
	errs.Write([]byte("oops \"quoted\" \x01\xff\n"))
	out.Write([]byte("ld\npartial"))
	out.Flush()
	out.Write(bytes.Repeat([]byte("x"), jsonlog.MaxLine+10))
	out.Flush()
	w.Close()
	raw, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d entries: %q", len(lines), raw)
	}
	for _, l := range lines {
		var e LogEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("entry %q is not JSON: %v", l, err)
		}
		if e.Time.IsZero() || time.Since(e.Time) > time.Minute {
			t.Errorf("entry time %v", e.Time)
		}
	}
	if !strings.HasPrefix(lines[0], `{"log":"hello\n","stream":"stdout","time":"`) {
		t.Errorf("first entry %s", lines[0])
	}
	var so, se bytes.Buffer
	if err := ReadLogs(p, LogOpts{Tail: -1}, &so, &se); err != nil {
		t.Fatal(err)
	}
	want := "hello\nworld\npartial" + strings.Repeat("x", jsonlog.MaxLine+10)
	if so.String() != want {
		t.Errorf("stdout %.80q", so.String())
	}
	if se.String() != "oops \"quoted\" \x01\ufffd\n" {
		t.Errorf("stderr %q", se.String())
	}
	so.Reset()
	if err := ReadLogs(p, LogOpts{Tail: 1}, &so, &se); err != nil {
		t.Fatal(err)
	}
	if so.String() != strings.Repeat("x", 10) {
		t.Errorf("tail 1: %q", so.String())
	}
}

func TestRestartOnBoot(t *testing.T) {
	ran := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		policy  string
		stopped bool
		started time.Time
		running bool
		rm      bool
		status  string
		want    bool
	}{
		{"always", "always", false, ran, false, false, StatusExited, true},
		{"always, stopped by the user", "always", true, ran, false, false, StatusExited, true},
		{"unless-stopped", "unless-stopped", false, ran, false, false, StatusExited, true},
		{"unless-stopped, stopped by the user", "unless-stopped", true, ran, false, false, StatusExited, false},
		{"on-failure", "on-failure", false, ran, false, false, StatusExited, false},
		{"no policy", "", false, ran, false, false, StatusExited, false},
		{"never started", "always", false, time.Time{}, false, false, StatusCreated, false},
		{"running", "always", false, ran, true, false, StatusRunning, false},
		{"--rm", "always", false, ran, false, true, StatusExited, false},
		{"being removed", "always", false, ran, false, false, StatusRemoving, false},
	} {
		r := &Record{}
		r.HostConfig.RestartPolicy = RestartPolicy{Name: tc.policy}
		r.HostConfig.AutoRemove = tc.rm
		r.ManuallyStopped = tc.stopped
		r.State.StartedAt, r.State.Running, r.State.Status = tc.started, tc.running, tc.status
		if got := RestartOnBoot(r); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWantRestart(t *testing.T) {
	r := &Record{}
	for _, tc := range []struct {
		policy  string
		max     int
		count   int
		code    int
		stopped bool
		want    bool
	}{
		{"no", 0, 0, 1, false, false},
		{"always", 0, 5, 0, false, true},
		{"always", 0, 0, 0, true, false},
		{"unless-stopped", 0, 0, 1, false, true},
		{"on-failure", 0, 9, 1, false, true},
		{"on-failure", 0, 0, 0, false, false},
		{"on-failure", 2, 1, 1, false, true},
		{"on-failure", 2, 2, 1, false, false},
	} {
		r.HostConfig.RestartPolicy = RestartPolicy{Name: tc.policy, MaximumRetryCount: tc.max}
		r.RestartCount, r.ManuallyStopped = tc.count, tc.stopped
		if got := WantRestart(r, tc.code); got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}
