// Package volume keeps named volumes as Docker's local driver does:
// <data-root>/volumes/<name>/_data with its metadata beside it.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/state"
)

// ErrNotFound is returned for a volume that does not exist.
var ErrNotFound = errors.New("no such volume")

// ErrInUse is returned when removing a volume a container uses.
var ErrInUse = errors.New("volume is in use")

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Volume is one volume, in Docker's inspect shape.
type Volume struct {
	CreatedAt  time.Time         `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	Anonymous  bool              `json:"-"`
}

type meta struct {
	CreatedAt time.Time         `json:"created_at"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"`
}

// Store is the volumes under <data-root>/volumes.
type Store struct {
	root string
	// InUse, set by the container layer, names the containers that use a
	// volume; rm and prune leave used volumes alone.
	InUse func(name string) ([]string, error)
}

// Open opens (and creates) the volume store.
func Open(dataRoot string) (*Store, error) {
	root := filepath.Join(dataRoot, "volumes")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	return &Store{root: root}, nil
}

func (s *Store) dir(name string) string { return filepath.Join(s.root, name) }

func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.root, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock volumes: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock volumes: %w", err)
	}
	return func() { f.Close() }, nil
}

// ValidateName checks a volume name.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) || len(name) > 255 {
		return fmt.Errorf("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// Create makes a volume, or returns the existing one of that name, as
// Docker does. An empty name makes an anonymous volume with a random name.
func (s *Store) Create(name string, labels, opts map[string]string) (*Volume, error) {
	v, _, err := s.create(name, labels, opts)
	return v, err
}

func (s *Store) create(name string, labels, opts map[string]string) (*Volume, bool, error) {
	anonymous := name == ""
	if anonymous {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, false, fmt.Errorf("volume name: %w", err)
		}
		name = hex.EncodeToString(b[:])
	}
	if err := ValidateName(name); err != nil {
		return nil, false, err
	}
	for k := range opts {
		// The local driver's options mount filesystems; berth keeps plain
		// directories only.
		return nil, false, fmt.Errorf("volume %s: driver option %q is not supported", name, k)
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	if v, err := s.Get(name); err == nil {
		return v, false, nil
	}
	tmp, err := os.MkdirTemp(s.root, ".new-")
	if err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	m := meta{CreatedAt: time.Now().UTC(), Labels: labels, Anonymous: anonymous}
	b, _ := json.Marshal(m)
	if err := os.Mkdir(filepath.Join(tmp, "_data"), 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := state.WriteFileAtomic(filepath.Join(tmp, "volume.json"), b, 0o600); err != nil {
		os.RemoveAll(tmp)
		return nil, false, err
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Rename(tmp, s.dir(name)); err != nil {
		os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	v, err := s.Get(name)
	return v, err == nil, err
}

// Ensure returns the named volume's mountpoint, creating it when missing;
// "" makes an anonymous volume. created says whether it is new.
func (s *Store) Ensure(name string) (string, string, bool, error) {
	v, created, err := s.create(name, nil, nil)
	if err != nil {
		return "", "", false, err
	}
	return v.Name, v.Mountpoint, created, nil
}

// Get reads one volume.
func (s *Store) Get(name string) (*Volume, error) {
	if ValidateName(name) != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(name), "volume.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	labels, opts := m.Labels, m.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return &Volume{CreatedAt: m.CreatedAt, Driver: "local", Labels: labels, Mountpoint: filepath.Join(s.dir(name), "_data"),
		Name: name, Options: opts, Scope: "local", Anonymous: m.Anonymous}, nil
}

// List returns every volume, by name.
func (s *Store) List() ([]*Volume, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*Volume
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if v, err := s.Get(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Users names the containers that use a volume.
func (s *Store) Users(name string) ([]string, error) {
	if s.InUse == nil {
		return nil, nil
	}
	return s.InUse(name)
}

// Remove deletes a volume; one in use only with force.
func (s *Store) Remove(name string, force bool) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	if !force {
		users, err := s.Users(name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: remove %s: volume is in use by container %s", ErrInUse, name, strings.Join(users, ", "))
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Rename first so a half-removed volume is never seen as a volume.
	gone := filepath.Join(s.root, ".gone-"+name)
	if err := os.Rename(s.dir(name), gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

// Prune removes unused volumes: anonymous ones, or all with all.
func (s *Store) Prune(all bool) ([]string, int64, error) {
	vols, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var removed []string
	var size int64
	for _, v := range vols {
		if !all && !v.Anonymous {
			continue
		}
		users, err := s.Users(v.Name)
		if err != nil {
			return removed, size, err
		}
		if len(users) > 0 {
			continue
		}
		n, _ := s.Size(v.Name)
		if err := s.Remove(v.Name, false); err != nil {
			return removed, size, err
		}
		removed = append(removed, v.Name)
		size += n
	}
	return removed, size, nil
}

// Size is the disk usage of a volume's files.
func (s *Store) Size(name string) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(s.dir(name), "_data"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}
