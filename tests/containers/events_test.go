package containers

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/events"
	"github.com/berth-project/berth/tests/rig"
)

// A follower in one process sees the life of a container that other
// processes (the CLI, the container's monitor) go through, in order, with
// Docker's fields; it stops on SIGINT.
func TestEventsFollowAnotherProcess(t *testing.T) {
	c := rig.NewContainerEnv(t)
	follow := c.Cmd("events", "--format", "json", "--filter", "type=container", "--filter", "container=ev1")
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = follow.Process.Kill()
		_ = follow.Wait()
	}()
	got := make(chan events.Event, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e events.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("follower printed %q: %v", sc.Text(), err)
				continue
			}
			got <- e
		}
		close(got)
	}()
	// The follower reads from when it starts: give it a moment, then act.
	time.Sleep(300 * time.Millisecond)
	c.Must("run", "-d", "--name", "ev1", "--label", "tier=front", rig.TestImage, "sh", "-c", "sleep 0.2; exit 3")
	c.Must("run", "-d", "--name", "other", rig.TestImage, "true") // filtered out
	if code := strings.TrimSpace(c.Must("wait", "ev1")); code != "3" {
		t.Fatalf("wait: %s", code)
	}
	c.Must("rm", "ev1")
	want := []string{"create", "start", "die", "destroy"}
	var seen []events.Event
	timeout := time.After(15 * time.Second)
	for len(seen) < len(want) {
		select {
		case e, ok := <-got:
			if !ok {
				t.Fatalf("follower ended after %v", actions(seen))
			}
			seen = append(seen, e)
		case <-timeout:
			t.Fatalf("follower saw %v, want %v", actions(seen), want)
		}
	}
	if fmt.Sprint(actions(seen)) != fmt.Sprint(want) {
		t.Fatalf("follower saw %v, want %v", actions(seen), want)
	}
	for _, e := range seen {
		a := e.Actor.Attributes
		if e.Type != "container" || e.Status != e.Action || e.ID != e.Actor.ID || len(e.ID) != 64 ||
			a["name"] != "ev1" || a["image"] != rig.TestImage || e.From != rig.TestImage || a["tier"] != "front" || e.TimeNano/1e9 != e.Time {
			t.Errorf("event %+v lacks Docker's fields", e)
		}
	}
	if code := seen[2].Actor.Attributes["exitCode"]; code != "3" {
		t.Errorf("die has exitCode %q, want 3", code)
	}
	// SIGINT ends a follower with status 0.
	if err := follow.Process.Signal(unix.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range got {
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("follower after SIGINT: %v", err)
	}
	c.Must("rm", "-f", "other")
}

func actions(es []events.Event) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Action)
	}
	return s
}

// Past events come back in a --since/--until window (and the command
// ends); filters, templates and Docker's default line; image and volume
// events; bad input is a usage error.
func TestEventsPastFiltersFormat(t *testing.T) {
	c := rig.NewContainerEnv(t)
	before := time.Now()
	time.Sleep(20 * time.Millisecond)
	c.Must("volume", "create", "evvol")
	c.Must("tag", rig.TestImage, "evimg:1")
	c.Must("run", "--name", "ev2", rig.TestImage, "true")
	c.Must("rmi", "evimg:1")
	c.Must("volume", "rm", "evvol")
	mid := time.Now()
	time.Sleep(20 * time.Millisecond)
	c.Must("rm", "ev2")
	after := time.Now()
	ts := func(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

	all := c.Must("events", "--since", ts(before), "--until", ts(after), "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	// A volume event has no name attribute: Go templates say so, as Docker's.
	want := "volume create <no value>\nimage tag evimg:1\ncontainer create ev2\ncontainer start ev2\ncontainer die ev2\n" +
		"image untag evimg:1\nvolume destroy <no value>\ncontainer destroy ev2\n"
	if all != want {
		t.Errorf("events in the window:\n%s\nwant:\n%s", all, want)
	}
	// --until cuts before the rm.
	if got := c.Must("events", "--since", ts(before), "--until", ts(mid), "--filter", "type=container", "--format", "{{.Action}}"); got != "create\nstart\ndie\n" {
		t.Errorf("--until: %q", got)
	}
	if got := c.Must("events", "--since", ts(before), "--until", ts(after), "--filter", "event=die", "--filter", "event=destroy", "--filter", "type=container", "--format", "{{.Action}}"); got != "die\ndestroy\n" {
		t.Errorf("event filter: %q", got)
	}
	if got := c.Must("events", "--since", ts(before), "--until", ts(after), "--filter", "volume=evvol", "--format", "{{.Action}} {{.Actor.ID}}"); got != "create evvol\ndestroy evvol\n" {
		t.Errorf("volume filter: %q", got)
	}
	if got := c.Must("system", "events", "--since", ts(before), "--until", ts(after), "--filter", "image=evimg:1", "--filter", "type=image", "--format", "{{.Action}}"); got != "tag\nuntag\n" {
		t.Errorf("image filter: %q", got)
	}
	line := c.Must("events", "--since", ts(before), "--until", ts(after), "--filter", "event=die")
	if f := strings.Fields(line); len(f) < 5 || f[1] != "container" || f[2] != "die" || len(f[3]) != 64 ||
		!strings.Contains(line, "(exitCode=0, image="+rig.TestImage+", name=ev2)") {
		t.Errorf("default line: %q", line)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(line)[0]); err != nil {
		t.Errorf("default line's time: %v", err)
	}
	for _, bad := range [][]string{{"--filter", "colour=red"}, {"--since", "yesterday"}, {"--format", "{{.Nope"}, {"extra"}} {
		if r := c.Berth(append([]string{"events"}, bad...)...); !rig.UsageError(r) {
			t.Errorf("events %v: %+v", bad, r)
		}
	}
}
