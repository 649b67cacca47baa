package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

func collect(t *testing.T, j *Journal, o ReadOpts) []Event {
	t.Helper()
	var got []Event
	if err := j.Read(o, func(e Event) error { got = append(got, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// Writers that each open the journal for every event (as separate berth
// processes do) never interleave or lose lines, and a bounded journal
// keeps the newest events across rotations.
func TestConcurrentAppendsStayWholeAndBounded(t *testing.T) {
	j := Open(t.TempDir())
	j.MaxSize = 8 << 10
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			jw := Open(j.dir[:len(j.dir)-len("/events")])
			jw.MaxSize = j.MaxSize
			for i := 0; i < each; i++ {
				if err := jw.Append(New(TypeContainer, "start", fmt.Sprintf("%d-%d", w, i), nil)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	var total int64
	for _, p := range []string{j.path(), j.oldPath()} {
		st, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue // the last write rotated the journal
		}
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	// Each file is rotated once past MaxSize: the last line may go over.
	if total > 2*j.MaxSize+2*512 {
		t.Fatalf("journal takes %d bytes, bound is about %d", total, 2*j.MaxSize)
	}
	if err := j.Append(New(TypeContainer, "destroy", "final", nil)); err != nil {
		t.Fatal(err)
	}
	// Every line on disk is one whole event.
	lines := 0
	for _, p := range []string{j.oldPath(), j.path()} {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue // the final line rotated the journal
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			var e Event
			if err := json.Unmarshal(l, &e); err != nil {
				t.Fatalf("%s: damaged line %q: %v", p, l, err)
			}
			lines++
		}
	}
	got := collect(t, j, ReadOpts{})
	if len(got) != lines || lines >= writers*each {
		t.Fatalf("read %d events of %d lines after rotation (of %d written)", len(got), lines, writers*each)
	}
	if e := got[len(got)-1]; e.Actor.ID != "final" {
		t.Fatalf("newest event is %s, want final", e.Actor.ID)
	}
}

func TestSinceUntil(t *testing.T) {
	j := Open(t.TempDir())
	base := time.Now()
	for i := 0; i < 5; i++ {
		e := New(TypeVolume, "create", fmt.Sprint(i), nil)
		e.TimeNano = base.Add(time.Duration(i) * time.Second).UnixNano()
		e.Time = e.TimeNano / 1e9
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, j, ReadOpts{Since: base.Add(time.Second), Until: base.Add(3 * time.Second)})
	var ids []string
	for _, e := range got {
		ids = append(ids, e.Actor.ID)
	}
	if fmt.Sprint(ids) != "[1 2 3]" {
		t.Fatalf("since/until gave %v, want [1 2 3]", ids)
	}
}

// A follower sees every event written while it follows, across
// rotations of the journal under it.
func TestFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	j := Open(dir)
	j.MaxSize = 2 << 10
	stop := make(chan struct{})
	seen := make(chan string, 1000)
	done := make(chan error, 1)
	go func() {
		done <- j.Read(ReadOpts{Follow: true, Stop: stop, Poll: 5 * time.Millisecond}, func(e Event) error {
			seen <- e.Actor.ID
			return nil
		})
	}()
	const n = 300
	w := Open(dir)
	w.MaxSize = j.MaxSize
	for i := 0; i < n; i++ {
		if err := w.Append(New(TypeImage, "tag", fmt.Sprint(i), nil)); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(10 * time.Millisecond) // let the follower keep up with rotations
		}
	}
	deadline := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case id := <-seen:
			if id != fmt.Sprint(i) {
				t.Fatalf("event %d: got %s", i, id)
			}
		case <-deadline:
			t.Fatalf("follower saw only %d of %d events", i, n)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFilter(t *testing.T) {
	c := New(TypeContainer, "die", "abcdef0123", map[string]string{"name": "web", "image": "busybox", "exitCode": "3", "tier": "front"})
	i := New(TypeImage, "tag", "sha256:1234", map[string]string{"name": "docker.io/library/busybox:latest"})
	x := New(TypeContainer, "exec_start: sh -c true", "abcdef0123", map[string]string{"name": "web"})
	cases := []struct {
		f    []string
		e    Event
		want bool
	}{
		{[]string{"type=container"}, c, true},
		{[]string{"type=image"}, c, false},
		{[]string{"container=web"}, c, true},
		{[]string{"container=abcdef"}, c, true},
		{[]string{"container=other"}, c, false},
		{[]string{"event=die", "event=start"}, c, true},
		{[]string{"event=start"}, c, false},
		{[]string{"event=exec_start"}, x, true},
		{[]string{"label=tier"}, c, true},
		{[]string{"label=tier=front"}, c, true},
		{[]string{"label=tier=back"}, c, false},
		{[]string{"image=busybox"}, c, true},
		{[]string{"image=busybox:latest"}, i, true},
		{[]string{"image=alpine"}, i, false},
		{[]string{"type=container", "container=web", "event=tag"}, c, false},
	}
	for _, tc := range cases {
		f, err := ParseFilter(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(tc.e); got != tc.want {
			t.Errorf("%v on %s %s: got %v, want %v", tc.f, tc.e.Type, tc.e.Action, got, tc.want)
		}
	}
	for _, bad := range []string{"nokey", "colour=red", "type=plugin", "event="} {
		if _, err := ParseFilter([]string{bad}); err == nil {
			t.Errorf("filter %q accepted", bad)
		}
	}
}
