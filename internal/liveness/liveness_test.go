package liveness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestAliveSelf(t *testing.T) {
	start, zombie, err := StartTime(os.Getpid())
	if err != nil || zombie || start == 0 {
		t.Fatalf("StartTime(self) = %d %v %v", start, zombie, err)
	}
	if !Alive(os.Getpid(), start) || !Alive(os.Getpid(), 0) {
		t.Fatal("self not alive")
	}
	if Alive(os.Getpid(), start+1) {
		t.Fatal("a different start time must not count as alive")
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Fatal("no pid counts as alive")
	}
}

func TestZombieAndGone(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skip("no /bin/true:", err)
	}
	pid := cmd.Process.Pid
	// Not waited for yet: once it exits it is a zombie, which is not alive.
	for i := 0; ; i++ {
		_, zombie, err := StartTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		if zombie {
			break
		}
		if i == 1000 {
			t.Fatal("child never became a zombie")
		}
		exec.Command("/bin/true").Run() // let time pass without a sleep loop on a clock
	}
	if Alive(pid, 0) {
		t.Error("a zombie counts as alive")
	}
	cmd.Wait()
	if Alive(pid, 0) {
		t.Error("a reaped process counts as alive")
	}
}

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 100 18446744073709551615\n"
	start, zombie, err := parseStat(42, []byte(line))
	if err != nil || zombie || start != 123456 {
		t.Fatalf("parseStat = %d %v %v, want 123456", start, zombie, err)
	}
	start, zombie, err = parseStat(42, []byte(strings.Replace(line, ") S ", ") Z ", 1)))
	if err != nil || !zombie || start != 123456 {
		t.Fatalf("zombie: parseStat = %d %v %v", start, zombie, err)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S 1 2 3"} {
		if _, _, err := parseStat(42, []byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}
