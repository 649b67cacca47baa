// Package state keeps the records of containers under the state root
// (/run/berth by default): one directory per container holding its JSON
// record, written atomically and guarded by a per-container lock.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/liveness"
	"github.com/berth-project/berth/internal/lockfile"
)

const recordFile = "state.json"

// ErrNotExist is returned when a container has no record.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is returned when creating a container whose id is taken.
var ErrExist = errors.New("container already exists")

// validID is ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ without a regexp, whose
// compilation every berth process, the container init too, paid at start.
func validID(id string) bool {
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '+' && c != '-') {
			return false
		}
	}
	return id != ""
}

// ValidateID rejects ids that could escape the state root or confuse tools.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("invalid container id: empty")
	}
	if len(id) > 1024 || !validID(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: use letters, digits and _ . + - only", id)
	}
	return nil
}

// Container is the record of one container.
type Container struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	Pid    int    `json:"pid"`
	// PidStart is the start time of Pid (field 22 of /proc/PID/stat), so a
	// reused pid is never mistaken for the container.
	PidStart   uint64            `json:"pid_start"`
	Created    time.Time         `json:"created"`
	CgroupPath string            `json:"cgroup_path"`
	Config     *specs.Spec       `json:"config"`
	Owner      string            `json:"owner,omitempty"`
	Deleted    bool              `json:"-"`
	Extra      map[string]string `json:"extra,omitempty"`
}

// Store is the state root.
type Store struct {
	Root string
}

// New opens (and creates) the state root.
func New(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("state root %s: %w", root, err)
	}
	return &Store{Root: root}, nil
}

// Dir is the directory of a container's live state.
func (s *Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// Exists reports whether a container has a record, without reading it.
func (s *Store) Exists(id string) bool {
	if ValidateID(id) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.Dir(id), recordFile))
	return err == nil
}

// Lock is an exclusive flock on a container directory.
type Lock struct{ f *os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		_ = l.f.Close() // closing releases the flock
		l.f = nil
	}
}

func lockDir(dir string) (*Lock, error) {
	f, err := lockfile.OpenDir(dir, unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	return &Lock{f: f}, nil
}

// Create makes the directory of a new container and returns it locked. It
// fails with ErrExist when the id is taken.
func (s *Store) Create(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	l, err := CreateDir(s.Dir(id), 0o711)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	return l, nil
}

// HalfMade reports whether id's directory exists without a record: its
// creator died, or is still at work (see CreateDir).
func (s *Store) HalfMade(id string) bool {
	if ValidateID(id) != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(s.Dir(id), recordFile)); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	fi, err := os.Stat(s.Dir(id))
	return err == nil && fi.IsDir()
}

// Lock locks an existing container's directory.
func (s *Store) Lock(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	l, err := lockDir(s.Dir(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	return l, err
}

// Save writes a record atomically (temp file, rename).
func (s *Store) Save(c *Container) error {
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode state of %s: %w", c.ID, err)
	}
	return atomicfile.Write(filepath.Join(s.Dir(c.ID), recordFile), data, 0o600)
}

// Load reads a record.
func (s *Store) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), recordFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parse state of %s: %w", id, err)
	}
	return &c, nil
}

// Remove deletes a container's directory.
func (s *Store) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove state of %s: %w", id, err)
	}
	return nil
}

// List returns the ids of all containers that have a record, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", s.Root, err)
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, e.Name(), recordFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Alive reports whether the container's init process is still the one
// recorded and not a zombie.
func (c *Container) Alive() bool {
	return liveness.Alive(c.Pid, c.PidStart)
}
