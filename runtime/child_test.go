package runtime

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/initproto"
	"github.com/berth-project/berth/namespaces"
)

// TestForkRefusedWhereBerthMustFork: an init that joins a namespace, or
// makes a user or time namespace, is never handed to another process to
// fork (that process would fork it outside what was joined or made).
func TestForkRefusedWhereBerthMustFork(t *testing.T) {
	for name, plan := range map[string]*namespaces.Plan{
		"join": {Clone: unix.CLONE_NEWNS, Join: map[specs.LinuxNamespaceType]string{specs.IPCNamespace: "/proc/1/ns/ipc"}},
		"user": {Clone: unix.CLONE_NEWNS | unix.CLONE_NEWUSER},
		"time": {Clone: unix.CLONE_NEWNS, NewTime: true},
	} {
		forked := false
		fork := func(*ForkRequest) (int, error) { forked = true; return 0, os.ErrInvalid }
		_, _, err := (&Runtime{}).startInit(plan, nil, IO{}, 0, nil, nil, nil, nil, initproto.Passed{}, fork)
		if err == nil || forked || !strings.Contains(err.Error(), "forked by berth") {
			t.Errorf("%s: err %v, forked %v; want a refusal before any fork", name, err, forked)
		}
	}
}

// TestOtherChild: an init another process forked is killed and seen gone
// through a pidfd; its status stays its parent's.
func TestOtherChild(t *testing.T) {
	// This process is the parent here; the handle must not need that.
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "100"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	c, err := otherChild(p.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer c.release()
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(); err != errNotOurs {
		t.Errorf("Wait: %v, want errNotOurs", err)
	}
	if err := unix.Kill(p.Pid, 0); err != nil {
		t.Errorf("the zombie was reaped by the handle: %v", err)
	}
}
