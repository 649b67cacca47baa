package containers

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// execEvents is the journal of container name's execs: for each execID,
// its actions as "action|exitCode", in order.
func execEvents(c *rig.ContainerEnv, name string) map[string][]string {
	c.T.Helper()
	ev := c.Must("events", "--since", "1", "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "container="+name, "--format", "{{.Actor.Attributes.execID}}|{{.Action}}|{{.Actor.Attributes.exitCode}}")
	byExec := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
		id, rest, ok := strings.Cut(l, "|")
		if ok && id != "" && id != "<no value>" {
			byExec[id] = append(byExec[id], rest)
		}
	}
	return byExec
}

// execDied waits until the exec whose exec_create action is create has
// been journalled in full, and returns its events.
func execDied(c *rig.ContainerEnv, name, create string) []string {
	c.T.Helper()
	var got []string
	rig.WaitFor(c.T, "exec_die of "+create, 20*time.Second, func() bool {
		for _, evs := range execEvents(c, name) {
			if len(evs) > 0 && evs[0] == "exec_create: "+create+"|<no value>" {
				got = evs
				return len(evs) >= 3
			}
		}
		return false
	})
	return got
}

// A detached exec (-d, or -it detached by the keys) journals exec_die with
// its status when it ends, as Docker does; one that berth waits for
// journals it once.
func TestDetachedExecDie(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")

	c.Must("exec", "-d", "box", "sh", "-c", "sleep 1; exit 7")
	want := []string{"exec_create: sh -c sleep 1; exit 7|<no value>", "exec_start: sh -c sleep 1; exit 7|<no value>", "exec_die|7"}
	if got := execDied(c, "box", "sh -c sleep 1; exit 7"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("exec -d events: %q, want %q", got, want)
	}
	// A failed detached exec is still an error, with Docker's status.
	if r := c.Berth("exec", "-d", "box", "/no/such/program"); r.Code != 127 {
		t.Errorf("exec -d of a missing program: %+v, want status 127", r)
	}

	c.Must("rm", "-f", "box")
}

// exec -it: detached by the keys, its exec_die comes when its shell ends;
// waited for, its status is berth's and journalled once.
func TestDetachedTTYExecDie(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "-d", "--name", "box", rig.TestImage, "sleep", "1000")
	p := rig.OpenPty(t)
	cmd := c.Cmd("exec", "-it", "box", "sh")
	p.Start(t, cmd)
	_, _ = p.Master.Write([]byte("echo started; sleep 2; exit 5\n"))
	waitOutput(t, p, "started\r\n")
	_, _ = p.Master.Write([]byte("\x10\x11"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("detach: berth exited %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the keys did not detach")
	}
	if got := execDied(c, "box", "sh"); len(got) != 3 || got[2] != "exec_die|5" {
		t.Errorf("exec -it detached: events %q, want exec_die|5 last", got)
	}

	// -it that berth waits for to the end: its status, journalled once.
	p2 := rig.OpenPty(t)
	cmd = c.Cmd("exec", "-it", "box", "sh", "-c", "echo ran; exit 4")
	p2.Start(t, cmd)
	err := cmd.Wait()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 4 {
		t.Errorf("exec -it exit 4: berth ended %v (%q)", err, p2.Output())
	}
	waitOutput(t, p2, "ran")
	want := []string{"exec_create: sh -c echo ran; exit 4|<no value>", "exec_start: sh -c echo ran; exit 4|<no value>", "exec_die|4"}
	if got := execDied(c, "box", "sh -c echo ran; exit 4"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("exec -it events: %q, want %q", got, want)
	}
	c.Must("rm", "-f", "box")
}

// inspect shows a container's id maps as podman does: HostConfig.UsernsMode
// "private" and HostConfig.IDMappings; a container without shows neither.
func TestInspectIDMaps(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "m", "--uidmap", "0:200000:65536", "--gidmap", "0:300000:1000", "--gidmap", "1000:400000:10", rig.TestImage, "true")
	if got := c.Field("m", "{{.HostConfig.UsernsMode}}|{{.HostConfig.IDMappings.UidMap}}|{{.HostConfig.IDMappings.GidMap}}"); got != "private|[0:200000:65536]|[0:300000:1000 1000:400000:10]" {
		t.Errorf("inspect of a container with id maps: %s", got)
	}
	c.Must("create", "--name", "one", "--userns", "0:100000:65536", rig.TestImage, "true")
	if got := c.Field("one", "{{.HostConfig.UsernsMode}}|{{.HostConfig.IDMappings.UidMap}}|{{.HostConfig.IDMappings.GidMap}}"); got != "private|[0:100000:65536]|[0:100000:65536]" {
		t.Errorf("inspect of --userns with maps: %s", got)
	}
	c.Must("create", "--name", "plain", rig.TestImage, "true")
	c.Must("create", "--name", "host", "--userns", "host", rig.TestImage, "true")
	for name, mode := range map[string]string{"plain": "", "host": "host"} {
		if got := c.Field(name, "{{.HostConfig.UsernsMode}}"); got != mode {
			t.Errorf("%s: UsernsMode %q, want %q", name, got, mode)
		}
		if out := c.Must("inspect", name); strings.Contains(out, "IDMappings") {
			t.Errorf("%s: inspect shows IDMappings:\n%s", name, out)
		}
	}
	c.Must("rm", "m", "one", "plain", "host")
}
