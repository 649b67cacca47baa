package container

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c-json.log")
	w, err := OpenLog(p)
	if err != nil {
		t.Fatal(err)
	}
	out := &lineSplitter{w: w, stream: "stdout"}
	errs := &lineSplitter{w: w, stream: "stderr"}
	_, _ = out.Write([]byte("hello\nwor"))
	_, _ = errs.Write([]byte("oops \"quoted\" \x01\xff\n"))
	_, _ = out.Write([]byte("ld\npartial"))
	out.flush()
	_, _ = out.Write(bytes.Repeat([]byte("x"), maxLine+10))
	out.flush()
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
	want := "hello\nworld\npartial" + strings.Repeat("x", maxLine+10)
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

func TestLookupUser(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1000:\nextra:x:2000:app,other\nwheel:x:10:\n"), 0o644)
	for _, tc := range []struct {
		spec       string
		extra      []string
		uid, gid   uint32
		groups     []uint32
		home, fail string
	}{
		{spec: "", home: "/root"},
		{spec: "app", uid: 1000, gid: 1000, groups: []uint32{2000}, home: "/home/app"},
		{spec: "1000", uid: 1000, gid: 1000, groups: []uint32{2000}, home: "/home/app"},
		{spec: "app:wheel", uid: 1000, gid: 10, home: "/home/app"},
		{spec: "4242:4343", uid: 4242, gid: 4343, home: "/"},
		{spec: "app", extra: []string{"wheel", "77"}, uid: 1000, gid: 1000, groups: []uint32{2000, 10, 77}, home: "/home/app"},
		{spec: "nobody", fail: "no user"},
		{spec: "app:nogroup", fail: "no group"},
	} {
		uid, gid, groups, home, err := LookupUser(root, tc.spec, tc.extra)
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%q: err %v, want %q", tc.spec, err, tc.fail)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid || home != tc.home || len(groups) != len(tc.groups) {
			t.Errorf("%q: %d %d %v %q %v", tc.spec, uid, gid, groups, home, err)
			continue
		}
		for i := range groups {
			if groups[i] != tc.groups[i] {
				t.Errorf("%q: groups %v want %v", tc.spec, groups, tc.groups)
			}
		}
	}
	// A symlinked /etc/passwd cannot point out of the root.
	os.Remove(filepath.Join(root, "etc/passwd"))
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/passwd"))
	if _, _, _, _, err := LookupUser(root, "root", nil); err == nil {
		t.Errorf("passwd symlinked out of the root was read")
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
		if got := wantRestart(r, tc.code); got != tc.want {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}
