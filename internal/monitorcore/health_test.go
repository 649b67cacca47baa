package monitorcore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// With Health.Ready the loop tells systemd READY=1, with its own pid as
// MAINPID, once: when the first check passes, never while they fail.
func TestRunHealthReady(t *testing.T) {
	for _, tc := range []struct {
		name, check string
		want        int
	}{{"passes from the third", `[ "$n" -ge 2 ]`, 1}, {"never passes", "false", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, checks := runReady(t, tc.check)
			want := "READY=1\nMAINPID=" + strconv.Itoa(os.Getpid()) + "\n"
			if len(msgs) != tc.want || tc.want == 1 && msgs[0] != want {
				t.Errorf("systemd got %q, want %d of %q", msgs, tc.want, want)
			}
			if checks < 4 {
				t.Errorf("only %d checks ran in 2 s", checks)
			}
		})
	}
}

// runReady runs a container of 2 s whose checks count themselves ($n
// before this one) and then run check, and returns what systemd got.
func runReady(t *testing.T, check string) ([]string, int) {
	dir := t.TempDir()
	marks := filepath.Join(dir, "marks")
	script := `n=$(wc -l < ` + marks + ` 2>/dev/null || echo 0); echo x >> ` + marks + `; ` + check
	if err := os.WriteFile(marks, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sd := pair[0]
	defer syscall.Close(sd)
	cmd := exec.Command("/bin/sleep", "2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := Config{Pid: cmd.Process.Pid, Log: -1, Out: -1, Err: -1, In: -1, Console: -1, Listen: -1, Notify: -1, NotifyTo: pair[1],
		Health: Health{Path: "/bin/sh", Argv: []string{"sh", "-c", script}, Ready: true,
			Interval: int64(100 * time.Millisecond)}}
	if code, _, err := Run(c); err != nil || code != 0 {
		t.Fatalf("Run: %d, %v", code, err)
	}
	var msgs []string
	buf := make([]byte, 256)
	for {
		n, _, err := syscall.Recvfrom(sd, buf, syscall.MSG_DONTWAIT)
		if err != nil {
			break
		}
		msgs = append(msgs, string(buf[:n]))
	}
	b, _ := os.ReadFile(marks)
	return msgs, len(strings.Fields(string(b)))
}
