package monitorcore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The loop runs the check on schedule, one at a time, with the start
// interval until one passed and the interval after, reaps each, and stops
// with the container, leaving no descriptor of its own open.
func TestRunHealthSchedule(t *testing.T) {
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	// Each check appends the uptime in centiseconds (busybox's date,
	// which the test VMs have, has no %N); the first two fail, the rest
	// pass.
	script := `n=$(wc -l < ` + marks + ` 2>/dev/null || echo 0); read up rest < /proc/uptime; echo ${up%.*}${up#*.} >> ` + marks + `; [ "$n" -ge 2 ]`
	if err := os.WriteFile(marks, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("/bin/sleep", "3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	c := Config{Pid: cmd.Process.Pid, Log: rawFD(t, logf), Out: -1, Err: -1, In: -1, Console: -1, Listen: -1,
		Health: Health{Path: "/bin/sh", Argv: []string{"sh", "-c", script},
			Interval: int64(700 * time.Millisecond), StartPeriod: int64(time.Minute), StartInterval: int64(100 * time.Millisecond)}}
	start := time.Now()
	code, _, err := Run(c)
	if err != nil || code != 0 {
		t.Fatalf("Run: %d, %v", code, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v for a container of 3 s", d)
	}
	b, _ := os.ReadFile(marks)
	lines := strings.Fields(string(b))
	// 3 quick ones (two failing, one passing) in the first ~0.5 s, then
	// one every 0.7 s: about 6 in 3 s, never dozens.
	if len(lines) < 4 || len(lines) > 9 {
		t.Fatalf("%d checks in 3 s: %q", len(lines), lines)
	}
	// After the first pass (the third), the interval: never sooner.
	for i := 3; i < len(lines); i++ {
		a, _ := strconv.ParseInt(lines[i-1], 10, 64)
		b, _ := strconv.ParseInt(lines[i], 10, 64)
		if gap := time.Duration(b-a) * 10 * time.Millisecond; gap < 650*time.Millisecond {
			t.Errorf("check %d came %v after the last, inside the interval of 700ms", i+1, gap)
		}
	}
	n := len(lines)
	time.Sleep(time.Second)
	if b, _ := os.ReadFile(marks); len(strings.Fields(string(b))) != n {
		t.Errorf("checks went on after the container ended")
	}
	after := openFDs(t)
	for fd := range after {
		if !before[fd] {
			t.Errorf("descriptor %s opened by Run is still open", fd)
		}
	}
}
