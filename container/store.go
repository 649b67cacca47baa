package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/helperbin"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/state"
)

// ErrNotFound is returned for a name or id that matches no container.
var ErrNotFound = errors.New("no such container")

// ErrNameInUse is returned when a container name is taken.
var ErrNameInUse = errors.New("name is already in use")

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Store is the container records under <data-root>/containers and the live
// runtime state under the state root.
//
//	<data-root>/containers/<id>/container.json   the Record
//	<data-root>/containers/<id>/lock             flock for record updates
//	<data-root>/containers/<id>/{upper,work,merged}  the overlay root
//	<data-root>/containers/<id>/<id>-json.log    the json-file log
//	<data-root>/container-names/<name> -> <id>   names; symlink creation is
//	                                              atomic, so names are unique
type Store struct {
	DataRoot  string
	StateRoot string

	rt      Runtime
	images  Images
	volumes Volumes
	mounter Mounter
	hooks   []TeardownHook
	net     Network
	// helpers are where the lean monitor program is installed: the same
	// rule, under the same roots, as the runtime's init program.
	helpers helperbin.Dirs

	// held are the locks of the containers this process created; they
	// go with it (see Create).
	mu   sync.Mutex
	held []*state.Lock
	// netHeld are the sockets holding the published ports of the
	// containers this process owns (see holdNet).
	netHeld map[string][]*os.File
}

func (s *Store) hold(l *state.Lock) {
	s.mu.Lock()
	s.held = append(s.held, l)
	s.mu.Unlock()
}

// New opens (and creates) the container store, the engine of the
// container lifecycle, on what deps give it. deps.Runtime is required;
// without Images a container's root cannot be mounted, without Volumes
// rm -v leaves anonymous volumes.
func New(dataRoot, stateRoot string, deps Deps) (*Store, error) {
	if deps.Runtime == nil {
		return nil, errors.New("container store: no runtime")
	}
	for _, d := range []string{filepath.Join(dataRoot, "containers"), filepath.Join(dataRoot, "container-names")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("container store: %w", err)
		}
	}
	m := deps.Mounter
	if m == nil {
		m = overlayMounter{}
	}
	hooks := append([]TeardownHook{}, deps.Hooks...)
	if deps.Network != nil {
		hooks = append(hooks, deps.Network)
	}
	return &Store{DataRoot: dataRoot, StateRoot: stateRoot, rt: deps.Runtime, images: deps.Images,
		volumes: deps.Volumes, mounter: m, hooks: hooks, net: deps.Network,
		helpers: helperbin.Dirs{StateRoot: stateRoot, DataRoot: dataRoot}}, nil
}

// Dir is a container's directory.
func (s *Store) Dir(id string) string { return containerDir(s.DataRoot, id) }

func containerDir(dataRoot, id string) string { return filepath.Join(dataRoot, "containers", id) }

// The overlay root of a container: MergedDir is where it is mounted (the
// container's /), UpperDir holds its changes, WorkDir is overlay's own.
// These and recordPath are the one place that names a container's files.
func (s *Store) MergedDir(id string) string { return filepath.Join(s.Dir(id), "merged") }

// UpperDir: see MergedDir.
func (s *Store) UpperDir(id string) string { return filepath.Join(s.Dir(id), "upper") }

// WorkDir: see MergedDir.
func (s *Store) WorkDir(id string) string { return filepath.Join(s.Dir(id), "work") }

func (s *Store) namePath(name string) string {
	return filepath.Join(s.DataRoot, "container-names", name)
}

// LogPath is the json-file log of a container.
func (s *Store) LogPath(id string) string { return filepath.Join(s.Dir(id), id+"-json.log") }

func (s *Store) recordPath(id string) string { return recordPath(s.DataRoot, id) }

func recordPath(dataRoot, id string) string {
	return filepath.Join(containerDir(dataRoot, id), "container.json")
}

// NewID returns a random 64-hex-digit container id.
func NewID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux ≥3.17; a fixed id would be worse.
		logrus.Fatalf("random id: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// ValidateName checks a user-given container name.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) || len(name) > 253 {
		return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// reserveName binds name to id; it fails if the name is taken.
func (s *Store) reserveName(name, id string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := os.Symlink(id, s.namePath(name))
	if err == nil {
		return nil
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("reserve name %s: %w", name, err)
	}
	// Taken, or stale: a name whose record is gone (a crash while
	// removing) is taken over, under a lock so two takers cannot both win.
	unlock, lerr := s.lockFile(filepath.Join(s.DataRoot, "container-names", ".lock"))
	if lerr != nil {
		return lerr
	}
	defer unlock()
	other, rerr := os.Readlink(s.namePath(name))
	if rerr == nil {
		if _, serr := os.Stat(s.recordPath(other)); errors.Is(serr, os.ErrNotExist) {
			if err := os.Remove(s.namePath(name)); err != nil {
				return fmt.Errorf("reserve name %s: %w", name, err)
			}
			if err := os.Symlink(id, s.namePath(name)); err != nil {
				return fmt.Errorf("reserve name %s: %w", name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("the container name %q is already in use by container %.12s: %w", name, other, ErrNameInUse)
}

// releaseName drops name if it still points at id.
func (s *Store) releaseName(name, id string) {
	if name == "" {
		return
	}
	if cur, err := os.Readlink(s.namePath(name)); err == nil && cur == id {
		if err := os.Remove(s.namePath(name)); err != nil {
			logrus.Warnf("release name %s: %v", name, err)
		}
	}
}

// Lock takes the record lock of a container; the caller calls the result.
func (s *Store) Lock(id string) (func(), error) {
	if _, err := os.Stat(s.Dir(id)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %.12s", ErrNotFound, id)
	}
	return s.lockFile(filepath.Join(s.Dir(id), "lock"))
}

func (s *Store) lockFile(path string) (func(), error) {
	f, err := lockfile.Open(path, unix.LOCK_EX)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, filepath.Base(filepath.Dir(path)))
	}
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Save writes a record atomically.
func (s *Store) Save(r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode container %.12s: %w", r.ID, err)
	}
	// Padded: on a full disk, stop and rm -f still record what they do.
	return atomicfile.Write(s.recordPath(r.ID), atomicfile.PadRecord(b, 512), 0o600)
}

// WarmCodec builds encoding/json's caches for a record's types, the whole
// runtime spec among them, in the background: a command that is about to
// save or load a record and has other work first, such as run, saves the
// millisecond they cost when built cold on first use. It only pays with a
// CPU to spare: a goroutine that builds them while the caller needs them
// already doubles the work.
func WarmCodec() {
	warmOnce.Do(func() {
		go func() { _, _ = json.Marshal(&Record{}) }()
	})
}

var warmOnce sync.Once

// Load reads a record by full id.
func (s *Store) Load(id string) (*Record, error) { return Records{s.DataRoot}.Load(id) }

// Records reads container records and nothing else: what the image and
// volume stores ask (is an image or a volume in use), without the engine
// and what it is built on, which themselves need those stores.
type Records struct{ DataRoot string }

// Load reads a record by full id.
func (rs Records) Load(id string) (*Record, error) {
	for try := 0; ; try++ {
		b, err := os.ReadFile(recordPath(rs.DataRoot, id))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
			}
			return nil, fmt.Errorf("read container %.12s: %w", id, err)
		}
		var r Record
		err = json.Unmarshal(b, &r)
		if err == nil {
			return &r, nil
		}
		// On a full file system a record is rewritten in place (see
		// atomicfile.RewriteInPlace), and a read during that moment sees
		// it half old, half new: read it again before calling it bad.
		if try == 20 {
			return nil, fmt.Errorf("parse container %.12s: %w", id, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// lockLoad takes a container's record lock and reads the record; the
// caller calls unlock.
func (s *Store) lockLoad(id string) (r *Record, unlock func(), err error) {
	if unlock, err = s.Lock(id); err != nil {
		return nil, nil, err
	}
	if r, err = s.Load(id); err != nil {
		unlock()
		return nil, nil, err
	}
	return r, unlock, nil
}

// Update loads a record under its lock, lets fn change it and saves it.
func (s *Store) Update(id string, fn func(*Record) error) (*Record, error) {
	r, unlock, err := s.lockLoad(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := fn(r); err != nil {
		return r, err
	}
	return r, s.Save(r)
}

// IDs lists the ids of all containers with a record.
func (s *Store) IDs() ([]string, error) { return Records{s.DataRoot}.IDs() }

// IDs lists the ids of all containers with a record.
func (rs Records) IDs() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(rs.DataRoot, "containers"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no container was ever made here
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 64 {
			if _, err := os.Stat(recordPath(rs.DataRoot, e.Name())); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// List returns every container, newest first, with its state refreshed.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.Load(id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				logrus.Warnf("skip container %.12s: %v", id, err)
			}
			continue
		}
		s.refresh(r)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Find resolves a name, a full id or a unique id prefix.
func (s *Store) Find(ref string) (*Record, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty name", ErrNotFound)
	}
	ref = strings.TrimPrefix(ref, "/")
	if ValidateName(ref) == nil {
		if id, err := os.Readlink(s.namePath(ref)); err == nil {
			if r, err := s.Load(id); err == nil {
				s.refresh(r)
				return r, nil
			}
		}
	}
	if len(ref) == 64 {
		if r, err := s.Load(ref); err == nil {
			s.refresh(r)
			return r, nil
		}
	}
	if isHex(ref) {
		ids, err := s.IDs()
		if err != nil {
			return nil, err
		}
		var match string
		for _, id := range ids {
			if strings.HasPrefix(id, ref) {
				if match != "" {
					return nil, fmt.Errorf("multiple containers match %q", ref)
				}
				match = id
			}
		}
		if match != "" {
			r, err := s.Load(match)
			if err != nil {
				return nil, err
			}
			s.refresh(r)
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var adjectives = strings.Fields(`admiring brave busy calm clever cool dazzling eager elated epic
festive focused gallant gentle happy hopeful jolly keen kind lucid modest nifty noble
optimistic peaceful quirky relaxed serene sharp stoic sweet tender trusting vibrant wizardly zealous`)

var surnames = strings.Fields(`archimedes babbage bohr curie darwin dijkstra einstein euclid
fermat feynman galileo gauss hopper hypatia kepler knuth lamport lovelace maxwell meitner
newton noether pascal ritchie shannon thompson torvalds turing wozniak`)

// randomName makes a Docker-style adjective_surname name.
func randomName() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return adjectives[int(b[0])%len(adjectives)] + "_" + surnames[int(b[1])%len(surnames)]
}

// ImageInUse tells the image store whether a container uses an image.
func (rs Records) ImageInUse(imageID string) (bool, error) {
	ids, err := rs.IDs()
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		r, err := rs.Load(id)
		if err != nil {
			continue
		}
		if r.Image == imageID {
			return true, nil
		}
	}
	return false, nil
}

// VolumeUsers lists the names of containers that mount a volume.
func (rs Records) VolumeUsers(name string) ([]string, error) {
	ids, err := rs.IDs()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, id := range ids {
		r, err := rs.Load(id)
		if err != nil {
			continue
		}
		for _, m := range r.Mounts {
			if m.Type == "volume" && m.Name == name {
				users = append(users, r.Name)
				break
			}
		}
	}
	return users, nil
}

// DirSize is the size of the regular files under dir.
func DirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
