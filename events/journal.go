// Package events is berth's event journal: every berth process (CLI,
// monitor, foreground run) appends what it did to containers, images,
// volumes and networks to one file under the data root, and `berth
// events` reads it back and follows it. There is no daemon to hold events
// in memory, so the journal is the only place they meet.
//
//	<data-root>/events/events.log    the current journal, one JSON event a line
//	<data-root>/events/events.log.1  the one before, after a rotation
//	<data-root>/events/lock          writers hold it shared, rotation exclusive
//
// Each event is one write(2) of one line to a file opened O_APPEND, so
// lines from concurrent writers never interleave. Writers hold the lock
// shared while they write; rotation renames the journal under the lock
// held exclusive, so once a reader sees the journal's inode change, the
// old file will grow no more and can be drained before moving on.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/lockfile"
)

// Event types, as Docker names them.
const (
	TypeContainer = "container"
	TypeImage     = "image"
	TypeVolume    = "volume"
	TypeNetwork   = "network"
)

// Actor is what an event is about: its id (container id, image name or
// id, volume or network name) and attributes (name, image, labels,
// exitCode ...).
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// Event is one journal line, in the shape of Docker's events API:
// Status, ID and From repeat Action, Actor.ID and the image for
// containers, as Docker's older clients expect.
type Event struct {
	Status   string `json:"status,omitempty"`
	ID       string `json:"id,omitempty"`
	From     string `json:"from,omitempty"`
	Type     string `json:"Type"`
	Action   string `json:"Action"`
	Actor    Actor  `json:"Actor"`
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// When is the event's time.
func (e Event) When() time.Time { return time.Unix(0, e.TimeNano) }

// DefaultMaxSize is the size past which the journal is rotated; with the
// one older file kept, the journal takes at most about twice this.
const DefaultMaxSize = 4 << 20

// Journal is the event journal of one data root.
type Journal struct {
	dir string
	// MaxSize is the size past which a write rotates the journal.
	MaxSize int64
}

// Open names the journal of dataRoot; it touches nothing on disk.
func Open(dataRoot string) *Journal {
	if abs, err := filepath.Abs(dataRoot); err == nil {
		dataRoot = abs
	}
	return &Journal{dir: filepath.Join(dataRoot, "events"), MaxSize: DefaultMaxSize}
}

func (j *Journal) path() string     { return filepath.Join(j.dir, "events.log") }
func (j *Journal) oldPath() string  { return j.path() + ".1" }
func (j *Journal) lockPath() string { return filepath.Join(j.dir, "lock") }

// Emit records an event of typ about id now. It is what the engine and
// the stores call: a journal that cannot be written is logged and never
// fails the operation that happened. For containers Docker's Status, ID
// and From are filled in (From from attrs["image"]).
func Emit(dataRoot, typ, action, id string, attrs map[string]string) {
	if dataRoot == "" {
		return
	}
	if err := Open(dataRoot).Append(New(typ, action, id, attrs)); err != nil {
		logrus.Warnf("event %s %s: %v", typ, action, err)
	}
}

// New is an event of typ about id, stamped now.
func New(typ, action, id string, attrs map[string]string) Event {
	if attrs == nil {
		attrs = map[string]string{}
	}
	now := time.Now()
	e := Event{Type: typ, Action: action, Actor: Actor{ID: id, Attributes: attrs}, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano()}
	if typ == TypeContainer {
		e.Status, e.ID, e.From = action, id, attrs["image"]
	}
	return e
}

// Append writes e to the journal as one line, and rotates the journal
// when it has grown past MaxSize.
func (j *Journal) Append(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	lk, err := lockfile.Open(j.lockPath(), unix.LOCK_SH)
	if err != nil {
		return fmt.Errorf("event journal: %w", err)
	}
	size, err := appendLine(j.path(), line)
	lk.Close()
	if err != nil {
		return err
	}
	if j.MaxSize > 0 && size > j.MaxSize {
		return j.rotate()
	}
	return nil
}

func appendLine(path string, line []byte) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("event journal: %w", err)
	}
	defer f.Close()
	// One write: O_APPEND places it whole at the end.
	if _, err := f.Write(line); err != nil {
		return 0, fmt.Errorf("event journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("event journal: %w", err)
	}
	return st.Size(), nil
}

// rotate moves the journal to events.log.1 (dropping the one there) when
// it is still past MaxSize under the exclusive lock: of writers that all
// saw it too big, one rotates.
func (j *Journal) rotate() error {
	lk, err := lockfile.Open(j.lockPath(), unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("rotate event journal: %w", err)
	}
	defer lk.Close()
	st, err := os.Stat(j.path())
	if err != nil || st.Size() <= j.MaxSize {
		return nil
	}
	if err := os.Rename(j.path(), j.oldPath()); err != nil {
		return fmt.Errorf("rotate event journal: %w", err)
	}
	return nil
}

// openBoth opens the old and current journal files at one instant (under
// the shared lock, so no rotation falls between): either may be nil.
func (j *Journal) openBoth() (old, cur *os.File, err error) {
	if _, err := os.Stat(j.dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(j.dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("event journal: %w", err)
		}
	}
	lk, err := lockfile.Open(j.lockPath(), unix.LOCK_SH)
	if err != nil {
		return nil, nil, fmt.Errorf("event journal: %w", err)
	}
	defer lk.Close()
	old, err = openIfExists(j.oldPath())
	if err != nil {
		return nil, nil, err
	}
	// The current file is created so that a follower has an inode to
	// watch from the start.
	cur, err = os.OpenFile(j.path(), os.O_RDONLY|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if old != nil {
			old.Close()
		}
		return nil, nil, fmt.Errorf("event journal: %w", err)
	}
	return old, cur, nil
}

func openIfExists(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	return f, nil
}
