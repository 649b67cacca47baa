package core

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// TestInitStopSignalBeforeExec: a SIGTERM that reaches a container's init
// while it waits to exec (after create, before start; a systemctl stop
// during a unit's start signals every process of the unit) ends it with
// the status of SIGTERM (128+15), which berth and systemd count as a
// clean stop. As pid 1 of its namespace the init cannot die of the
// signal itself; the Go runtime used to exit 2 then.
func TestInitStopSignalBeforeExec(t *testing.T) {
	e := rig.NewEnv(t)
	b := e.Bundle("/probe", "sleep", "60")
	id := e.ID("term")
	// The init outlives create, whose child it is: as the subreaper this
	// test gets it, to learn how it ended.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	e.Must("oci", "create", "--bundle", b.Dir, id)
	defer e.Berth("oci", "delete", "-f", id)
	pid := e.State(id).Pid
	if pid <= 0 {
		t.Fatalf("no init pid after create")
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		if !(ws.Exited() && ws.ExitStatus() == 128+int(unix.SIGTERM) || ws.Signaled() && ws.Signal() == unix.SIGTERM) {
			t.Errorf("the init ended with %s (status %#x), want SIGTERM's 143", describe(ws), uint32(ws))
		}
	case <-time.After(30 * time.Second):
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatal("the init did not end on SIGTERM before its exec")
	}
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "exit " + rig.Itoa(ws.ExitStatus())
}
