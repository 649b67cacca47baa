package containers

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// exec -it --detach-keys: the keys end berth's session and leave the
// command running on its terminal (a hang-up would end it).
func TestExecDetachKeys(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")
	if r := c.Berth("exec", "-it", "--detach-keys", "ctrl-", "box", "true"); !rig.UsageError(r) {
		t.Errorf("--detach-keys ctrl-: %+v", r)
	}
	for _, tc := range []struct{ flag, keys string }{{"ctrl-x,x", "\x18x"}, {"", "\x10\x11"}} {
		p := rig.OpenPty(t)
		args := []string{"exec", "-it"}
		if tc.flag != "" {
			args = append(args, "--detach-keys", tc.flag)
		}
		cmd := c.Cmd(append(args, "box", "sh")...)
		p.Start(t, cmd)
		mark := "/detached" + strings.ReplaceAll(tc.flag, ",", "")
		// The command in the foreground when the user detaches finishes
		// its work afterwards; then its shell writes a second mark.
		_, _ = p.Master.Write([]byte("echo started; sleep 2; touch " + mark + "; touch " + mark + ".sh\n"))
		waitOutput(t, p, "started\r\n")
		_, _ = p.Master.Write([]byte(tc.keys))
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("detach %q: berth exited %v", tc.flag, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("detach keys %q did not detach", tc.flag)
		}
		rig.WaitFor(t, "the detached exec's mark "+mark, 15*time.Second, func() bool {
			return c.Berth("exec", "box", "test", "-f", mark+".sh").Code == 0
		})
		if out := c.Must("exec", "box", "ps", "-o", "args"); !strings.Contains(out, "sh\n") {
			t.Errorf("the detached shell is gone:\n%s", out)
		}
	}
	// Without -t there is nothing to detach from: the keys pass through.
	r := c.BerthIn([]byte("\x10\x11end\n"), "exec", "-i", "box", "cat")
	if r.Code != 0 || r.Stdout != "\x10\x11end\n" {
		t.Errorf("exec -i with the keys in its input: %+v", r)
	}
}
