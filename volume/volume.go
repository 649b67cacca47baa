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
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/lockfile"
)

// ErrNotFound is returned (wrapped) for a volume that does not exist.
var ErrNotFound = errors.New("no such volume")

// ErrInUse is returned (wrapped, as an *InUseError) when removing a volume
// a container uses.
var ErrInUse = errors.New("volume is in use")

// InUseError names the containers that keep a volume from being removed.
type InUseError struct {
	Name  string
	Users []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("volume %s is in use by container %s", e.Name, strings.Join(e.Users, ", "))
}

// Is makes errors.Is(err, ErrInUse) hold.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

const (
	// Entries of the volumes directory that are not volumes start with a
	// dot, which no volume name can.
	lockName   = ".lock"
	newPrefix  = ".new-"  // a volume being created, renamed into place when whole
	gonePrefix = ".gone-" // a removed volume whose files are being deleted
	metaName   = "volume.json"
	dataName   = "_data"
)

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Volume is one volume. It marshals to Docker's inspect shape.
type Volume struct {
	Name       string
	Driver     string // always "local"
	Mountpoint string
	CreatedAt  time.Time
	Labels     map[string]string
	Options    map[string]string
	Scope      string // always "local"
	// Anonymous volumes (made without a name) are what plain prune removes.
	Anonymous bool
}

// MarshalJSON gives Docker's `volume inspect` object: CreatedAt is RFC 3339
// in local time to the second, and Anonymous is not shown.
func (v Volume) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CreatedAt  string
		Driver     string
		Labels     map[string]string
		Mountpoint string
		Name       string
		Options    map[string]string
		Scope      string
	}{v.CreatedAt.Local().Format(time.RFC3339), v.Driver, v.Labels, v.Mountpoint, v.Name, v.Options, v.Scope})
}

// meta is volume.json.
type meta struct {
	CreatedAt time.Time         `json:"CreatedAt"`
	Labels    map[string]string `json:"Labels,omitempty"`
	Options   map[string]string `json:"Options,omitempty"`
	Anonymous bool              `json:"Anonymous,omitempty"`
	// Volumes made by the first berth builds spelled it created_at.
	LegacyCreatedAt time.Time `json:"created_at,omitzero"`
}

// Store is the volumes under <data-root>/volumes.
type Store struct {
	root string
	// users names the containers that use a volume; rm and prune leave
	// used volumes alone. Nil means none is used.
	users Users
}

// Users names the containers that use a volume. The container layer
// implements it on its records, which it reads without a volume store.
type Users interface {
	VolumeUsers(name string) ([]string, error)
}

// Open opens (and creates) the volume store; users (nil: none) tells
// which volumes containers use.
func Open(dataRoot string, users Users) (*Store, error) {
	root := filepath.Join(dataRoot, "volumes")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	return &Store{root: root, users: users}, nil
}

// Root is the directory that holds the volumes.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(name string) string { return filepath.Join(s.root, name) }

// lock takes the store's flock, which serialises creation and removal
// across berth processes.
func (s *Store) lock() (func(), error) {
	f, err := lockfile.Open(filepath.Join(s.root, lockName), unix.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	return func() { f.Close() }, nil
}

// ValidateName checks a volume name as Docker's local driver does (one
// character is enough here); the length cap is the filesystem's.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) || len(name) > 255 {
		return fmt.Errorf("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at most 255 characters", name)
	}
	return nil
}

// ValidateOptions checks driver options. The local driver's options
// (type, device, o) mount a filesystem as the volume; berth's volumes are
// plain directories, so it takes none rather than ignore them.
func ValidateOptions(opts map[string]string) error {
	if len(opts) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(opts))
	return fmt.Errorf("driver option %q is not supported: berth's local volumes are plain directories", keys[0])
}

// Create makes a volume, or returns the existing one of that name as
// Docker does (labels and options of the call are then ignored). An empty
// name makes an anonymous volume with a random 64-hex name.
func (s *Store) Create(name string, labels, opts map[string]string) (*Volume, error) {
	v, _, err := s.create(name, labels, opts)
	return v, err
}

// Ensure returns the named volume's name and mountpoint, creating it when
// missing; "" makes an anonymous volume. created says whether it is new.
func (s *Store) Ensure(name string) (vname, path string, created bool, err error) {
	v, created, err := s.create(name, nil, nil)
	if err != nil {
		return "", "", false, err
	}
	return v.Name, v.Mountpoint, created, nil
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
	if err := ValidateOptions(opts); err != nil {
		return nil, false, fmt.Errorf("volume %s: %w", name, err)
	}
	// Most calls find the volume; they need no lock.
	if v, err := s.Get(name); err == nil || !errors.Is(err, ErrNotFound) {
		return v, false, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	s.sweep()
	// Another process may have made it while this one waited for the lock.
	if v, err := s.Get(name); err == nil || !errors.Is(err, ErrNotFound) {
		return v, false, err
	}
	if err := s.build(name, meta{CreatedAt: time.Now().UTC(), Labels: labels, Options: opts, Anonymous: anonymous}); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	s.emit("create", name)
	v, err := s.Get(name)
	return v, err == nil, err
}

// build makes the volume in a temporary directory and renames it into
// place, so no one ever sees half a volume; the caller holds the lock.
func (s *Store) build(name string, m meta) (err error) {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.root, newPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(tmp); rerr != nil {
				logrus.Warnf("volume %s: remove %s: %v", name, tmp, rerr)
			}
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, dataName), 0o755); err != nil {
		return err
	}
	// Mkdir's mode is masked by the umask; Docker's _data is 0755.
	if err := os.Chmod(filepath.Join(tmp, dataName), 0o755); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, metaName), b, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.dir(name)); err != nil {
		return err
	}
	return syncDir(s.root)
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// sweep deletes what crashed berth processes left: volumes half made
// (their makers hold the lock throughout, so with it held any is stale),
// and removed volumes whose deletion stopped (a live deleter holds an flock
// on its directory). The caller holds the lock.
func (s *Store) sweep() {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		logrus.Warnf("volumes: %v", err)
		return
	}
	for _, e := range ents {
		p := filepath.Join(s.root, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), newPrefix):
			if err := os.RemoveAll(p); err != nil {
				logrus.Warnf("volumes: remove %s: %v", p, err)
			}
		case strings.HasPrefix(e.Name(), gonePrefix):
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			if lockfile.Flock(f, unix.LOCK_EX|unix.LOCK_NB) == nil {
				if err := os.RemoveAll(p); err != nil {
					logrus.Warnf("volumes: remove %s: %v", p, err)
				}
			}
			f.Close()
		}
	}
}

// Get reads one volume.
func (s *Store) Get(name string) (*Volume, error) {
	if ValidateName(name) != nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	b, err := os.ReadFile(filepath.Join(s.dir(name), metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("volume %s: %s: %w", name, metaName, err)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = m.LegacyCreatedAt
	}
	labels, opts := m.Labels, m.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return &Volume{Name: name, Driver: "local", Mountpoint: filepath.Join(s.dir(name), dataName), CreatedAt: m.CreatedAt,
		Labels: labels, Options: opts, Scope: "local", Anonymous: m.Anonymous}, nil
}

// List returns every volume, by name. A volume whose metadata cannot be
// read is logged and left out rather than hide all the others.
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
		v, err := s.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile, or not a volume
		}
		if err != nil {
			logrus.Warnf("list volumes: %v", err)
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Users names the containers that use a volume.
func (s *Store) Users(name string) ([]string, error) {
	if s.users == nil {
		return nil, nil
	}
	users, err := s.users.VolumeUsers(name)
	if err != nil {
		return nil, fmt.Errorf("volume %s: find its containers: %w", name, err)
	}
	return users, nil
}

func (s *Store) exists(name string) error {
	if ValidateName(name) != nil {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	_, err := os.Lstat(filepath.Join(s.dir(name), metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	return nil
}

// Remove deletes a volume; one a container uses only with force. A volume
// with unreadable metadata can still be removed.
func (s *Store) Remove(name string, force bool) error {
	if err := s.exists(name); err != nil {
		return err
	}
	if !force {
		users, err := s.Users(name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return &InUseError{Name: name, Users: users}
		}
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	if err := s.exists(name); err != nil {
		unlock() // removed by another process meanwhile
		return err
	}
	// The volume leaves the store with one rename, so a deletion that
	// stops half-way never leaves half a volume; the flock tells sweep that
	// this process is still deleting it.
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		unlock()
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	// Not named after the volume: a 255-character name has no room for more.
	gone := filepath.Join(s.root, gonePrefix+hex.EncodeToString(b[:]))
	if err := os.Rename(s.dir(name), gone); err != nil {
		unlock()
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	s.emit("destroy", name)
	g, err := os.Open(gone)
	if err == nil {
		err = lockfile.Flock(g, unix.LOCK_EX|unix.LOCK_NB)
		defer g.Close()
	}
	unlock()
	if err != nil {
		// Not deleted now; a later sweep does it. The volume is gone.
		logrus.Warnf("remove volume %s: lock %s: %v", name, gone, err)
		return nil
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: delete its files: %w", name, err)
	}
	return nil
}

// Prune removes the volumes no container uses: the anonymous ones, or all
// with all (Docker ≥ 23). It returns their names and the space freed.
func (s *Store) Prune(all bool) (removed []string, reclaimed int64, err error) {
	return s.PruneMatching(all, nil)
}

// PruneMatching is Prune limited to the volumes match accepts (nil: all).
// It goes on past a volume it cannot remove and reports the errors at the
// end; a volume taken into use meanwhile is skipped.
func (s *Store) PruneMatching(all bool, match func(*Volume) bool) (removed []string, reclaimed int64, err error) {
	vols, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, v := range vols {
		if (!all && !v.Anonymous) || (match != nil && !match(v)) {
			continue
		}
		users, err := s.Users(v.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(users) > 0 {
			continue
		}
		n, err := s.Size(v.Name)
		if err != nil {
			logrus.Warnf("prune: %v", err)
		}
		if err := s.Remove(v.Name, false); err != nil {
			if !errors.Is(err, ErrInUse) && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, v.Name)
		reclaimed += n
	}
	return removed, reclaimed, errors.Join(errs...)
}

// Size is a volume's disk usage as Docker counts it: the sizes of what is
// not a directory, each hard-linked file once.
func (s *Store) Size(name string) (int64, error) {
	if err := s.exists(name); err != nil {
		return 0, err
	}
	type devIno struct{ dev, ino uint64 }
	seen := map[devIno]bool{}
	var n int64
	err := filepath.WalkDir(filepath.Join(s.dir(name), dataName), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted by a container while walking
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		k := devIno{uint64(st.Dev), st.Ino}
		if !seen[k] {
			seen[k] = true
			n += st.Size
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("volume %s: size: %w", name, err)
	}
	return n, nil
}
