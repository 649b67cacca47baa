package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// ReadOpts say which events Read passes on.
type ReadOpts struct {
	// Since and Until bound the events' times; zero is no bound.
	Since, Until time.Time
	// Follow goes on with new events until Stop is closed or Until
	// passes.
	Follow bool
	Stop   <-chan struct{}
	// Poll is how often a follower looks for new events (default 100ms).
	Poll time.Duration
}

// Read passes the journal's events in range to fn, oldest first, and with
// Follow the new ones as they are written. An error from fn ends it.
func (j *Journal) Read(o ReadOpts, fn func(Event) error) error {
	old, cur, err := j.openBoth()
	if err != nil {
		return err
	}
	defer func() { cur.Close() }()
	if old != nil {
		err := (&tail{f: old}).drain(o, fn)
		old.Close()
		if err != nil {
			return err
		}
	}
	t := &tail{f: cur}
	poll := o.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	for {
		if err := t.drain(o, fn); err != nil {
			return err
		}
		if !o.Follow || !o.Until.IsZero() && time.Now().After(o.Until) {
			return nil
		}
		rotated, err := j.rotatedFrom(t.f)
		if err != nil {
			return err
		}
		if rotated {
			// No writer writes to the old file once it is renamed (see
			// the package doc): what is left in it is all there is.
			if err := t.drain(o, fn); err != nil {
				return err
			}
			old, next, err := j.openBoth()
			if err != nil {
				return err
			}
			if old != nil && !sameFile(old, cur) {
				// Rotated twice since the last look: the file between
				// is events.log.1 now.
				err = (&tail{f: old}).drain(o, fn)
			}
			if old != nil {
				old.Close()
			}
			cur.Close()
			cur = next
			t = &tail{f: cur}
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-o.Stop:
			return nil
		case <-time.After(poll):
		}
	}
}

// rotatedFrom says whether the journal's path no longer names f.
func (j *Journal) rotatedFrom(f *os.File) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, fmt.Errorf("event journal: %w", err)
	}
	if err := unix.Stat(j.path(), &b); err != nil {
		if err == unix.ENOENT {
			return true, nil
		}
		return false, fmt.Errorf("event journal: %w", err)
	}
	return a.Ino != b.Ino || a.Dev != b.Dev, nil
}

func sameFile(a, b *os.File) bool {
	x, err1 := a.Stat()
	y, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(x, y)
}

// tail reads whole lines from a growing file; a line still being written
// waits in partial for its end.
type tail struct {
	f       *os.File
	partial []byte
}

func (t *tail) drain(o ReadOpts, fn func(Event) error) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := t.f.Read(buf)
		if n > 0 {
			data := append(t.partial, buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if err := pass(data[:i], o, fn); err != nil {
					return err
				}
				data = data[i+1:]
			}
			t.partial = append([]byte(nil), data...)
		}
		if err == io.EOF || n == 0 && err == nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read event journal: %w", err)
		}
	}
}

func pass(line []byte, o ReadOpts, fn func(Event) error) error {
	if len(line) == 0 {
		return nil
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		logrus.Debugf("event journal: skip a damaged line: %v", err)
		return nil
	}
	at := e.When()
	if !o.Since.IsZero() && at.Before(o.Since) || !o.Until.IsZero() && at.After(o.Until) {
		return nil
	}
	return fn(e)
}
