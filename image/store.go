// Package image holds berth's content-addressed image store: blobs by
// digest, OCI manifests and configs, layers unpacked once per chain id and
// shared by every image that has them, a tag index, and the registry and
// archive transports that move images in and out.
package image

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atomicfile"
	"github.com/berth-project/berth/internal/lockfile"
)

// Errors callers may test for with errors.Is.
var (
	ErrNotFound = errors.New("no such image")
	ErrInUse    = errors.New("image is in use")
	ErrConflict = errors.New("conflict")
)

// Store is the image store under <dataRoot>/image.
//
//	blobs/sha256/<hex>          content-addressed blobs (layers, configs, manifests)
//	layers/<chainid>/diff       unpacked layer, link (short id), size
//	l/<short-id>                -> ../layers/<chainid>/diff
//	index.json                  image records and tags
//	lock, gc.lock               flock files
//	tmp/                        in-flight downloads and unpacks
type Store struct {
	root string

	// users tells whether a container uses an image; rmi and prune
	// refuse such images unless forced. Nil means none is used.
	users Users

	mu sync.Mutex // serializes index access within the process

	// chains caches the layer chain of every image this process loaded.
	// An image ID is the digest of its config, so the chain never changes.
	chains sync.Map // digest.Digest -> []digest.Digest
}

// Users tells the image store whether a container uses the image with
// this ID. The container layer implements it on its records, which it
// reads without an image store, so neither store needs the other built.
type Users interface {
	ImageInUse(imageID string) (bool, error)
}

// OpenWithUsers is Open for a caller that removes images: users tells
// which are in use.
func OpenWithUsers(dataRoot string, users Users) (*Store, error) {
	s, err := Open(dataRoot)
	if err != nil {
		return nil, err
	}
	s.users = users
	return s, nil
}

// Open creates or opens the store under dataRoot, for a caller that
// removes no images or knows none is used.
func Open(dataRoot string) (*Store, error) {
	if dataRoot == "" {
		return nil, fmt.Errorf("open image store: empty data root")
	}
	abs, err := filepath.Abs(dataRoot)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	s := &Store{root: filepath.Join(abs, "image")}
	for _, d := range []string{"blobs/sha256", "layers", "l", "tmp", "mounts"} {
		if err := os.MkdirAll(filepath.Join(s.root, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	// Any berth opening the store takes old leftovers; prune takes all.
	s.sweepTmp(time.Hour)
	return s, nil
}

// Root is the store directory (<dataRoot>/image).
func (s *Store) Root() string { return s.root }

func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func (s *Store) layerDir(chain digest.Digest) string {
	return filepath.Join(s.root, "layers", chain.Encoded())
}

// Entries under tmp/ are locked by the berth writing them: each is made
// by createTemp, which holds an flock on the entry itself until the
// entry is renamed away or removed. sweepTmp removes what it can lock, so
// the leftovers of a killed berth go at once and nothing a live berth
// writes does.

// tempEntry is a file or directory under tmp/ this process writes.
type tempEntry struct {
	path string
	f    *os.File // the entry itself, holding the lock
}

// createTemp makes a fresh, locked file (opened for writing) or
// directory under tmp/.
func (s *Store) createTemp(prefix string, dir bool, mode os.FileMode) (*tempEntry, error) {
	for i := 0; i < 16; i++ {
		p := s.tempPath(prefix)
		var f *os.File
		var err error
		if dir {
			if err = os.Mkdir(p, mode); err == nil {
				f, err = os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			}
		} else {
			f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, mode)
		}
		if err != nil {
			return nil, fmt.Errorf("create temp %s: %w", prefix, err)
		}
		if err := lockfile.Flock(f, unix.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock temp %s: %w", p, err)
		}
		// A sweep may have taken the entry between its creation and the
		// lock; then it is gone (or another), and a new name is tried.
		if sameFile(f, p) {
			return &tempEntry{path: p, f: f}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("create temp %s: removed while being created, again and again", prefix)
}

// Release drops the lock; the entry must be gone (renamed or removed)
// or be a leftover for the next sweep.
func (t *tempEntry) Release() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// Remove deletes the entry, then drops the lock.
func (t *tempEntry) Remove() {
	if t.f == nil {
		return
	}
	if err := os.RemoveAll(t.path); err != nil {
		logrus.Debugf("image store: removing %s: %v", t.path, err)
	}
	t.Release()
}

// sameFile tells whether p (not followed) is the file f is open on.
func sameFile(f *os.File, p string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Lstat(p, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// sweepTmp removes the entries of tmp/ no berth is writing: those whose
// lock it can take, and that were not changed for minAge (which spares
// the entries of a berth from before the locks). It returns the bytes
// freed.
func (s *Store) sweepTmp(minAge time.Duration) int64 {
	dir := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		logrus.Debugf("image store: sweeping tmp: %v", err)
		return 0
	}
	var freed int64
	for _, e := range ents {
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < minAge {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				os.Remove(p) // a symlink: never made by berth, never followed
			} else if !errors.Is(err, os.ErrNotExist) {
				logrus.Debugf("image store: sweeping %s: %v", e.Name(), err)
			}
			continue
		}
		if err := lockfile.Flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close() // a live berth writes it
			continue
		}
		// Locked but renamed into place (or replaced) since it was
		// opened: not a leftover.
		if sameFile(f, p) {
			n := diskUsage(p)
			if err := os.RemoveAll(p); err != nil {
				logrus.Debugf("image store: sweeping %s: %v", e.Name(), err)
			} else {
				freed += n
			}
		}
		f.Close()
	}
	return freed
}

// diskUsage is the size of the files under p (not following links).
func diskUsage(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// tempPath returns a fresh name under tmp/.
func (s *Store) tempPath(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(s.root, "tmp", prefix+"-"+hex.EncodeToString(b[:]))
}

// HasBlob reports whether the blob is in the store.
func (s *Store) HasBlob(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

// OpenBlob opens a stored blob.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(s.blobPath(d))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("blob %s: %w", d, ErrNotFound)
		}
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// ReadBlob reads a small blob (manifest, config) and checks its digest.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s is corrupt (content hashes to %s)", d, got)
	}
	return b, nil
}

// blobWriter writes a blob to tmp/ while hashing it; Commit verifies the
// digest and renames it into place.
type blobWriter struct {
	s   *Store
	tmp *tempEntry
	f   *os.File
	dig digest.Digester
	n   int64
}

func (s *Store) newBlobWriter() (*blobWriter, error) {
	t, err := s.createTemp("blob", false, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create blob: %w", err)
	}
	return &blobWriter{s: s, tmp: t, f: t.f, dig: digest.SHA256.Digester()}, nil
}

func (w *blobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.dig.Hash().Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob: %w", err)
	}
	return n, nil
}

// Digest of what was written so far.
func (w *blobWriter) Digest() digest.Digest { return w.dig.Digest() }

// Commit checks the content against want (when set) and stores the blob.
// The temp file stays open, and so locked, until it is renamed away.
func (w *blobWriter) Commit(want digest.Digest, wantSize int64) (digest.Digest, error) {
	got := w.dig.Digest()
	if want != "" && got != want {
		w.Abort()
		return "", fmt.Errorf("blob digest mismatch: expected %s, got %s", want, got)
	}
	if wantSize >= 0 && w.n != wantSize {
		w.Abort()
		return "", fmt.Errorf("blob %s size mismatch: expected %d bytes, got %d", got, wantSize, w.n)
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return "", fmt.Errorf("write blob: %w", err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		w.Abort()
		return "", fmt.Errorf("write blob: %w", err)
	}
	if err := os.Rename(w.tmp.path, w.s.blobPath(got)); err != nil {
		w.Abort()
		return "", fmt.Errorf("store blob %s: %w", got, err)
	}
	w.tmp.Release()
	return got, nil
}

// Abort drops the temp file (a no-op after Commit).
func (w *blobWriter) Abort() {
	w.tmp.Remove()
}

// WriteBlob stores b and returns its digest.
func (s *Store) WriteBlob(b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if s.HasBlob(d) {
		return d, nil
	}
	w, err := s.newBlobWriter()
	if err != nil {
		return "", err
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return "", err
	}
	return w.Commit(d, int64(len(b)))
}

// ---- index ----

type imageRecord struct {
	ID          digest.Digest `json:"id"`
	Manifest    digest.Digest `json:"manifest"`
	MediaType   string        `json:"mediaType"`
	RepoDigests []string      `json:"repoDigests,omitempty"`
	Added       time.Time     `json:"added"`
}

type indexFile struct {
	Version int                            `json:"version"`
	Images  map[digest.Digest]*imageRecord `json:"images"`
	Tags    map[string]digest.Digest       `json:"tags"` // name:tag -> image ID
}

// lockFile takes an flock on path; how is unix.LOCK_SH or LOCK_EX, maybe
// with LOCK_NB.
func lockFile(path string, how int) (func(), error) {
	f, err := lockfile.Open(path, how)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

func (s *Store) readIndex() (*indexFile, error) {
	idx := &indexFile{Version: 1, Images: map[digest.Digest]*imageRecord{}, Tags: map[string]digest.Digest{}}
	b, err := os.ReadFile(filepath.Join(s.root, "index.json"))
	if os.IsNotExist(err) {
		return idx, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("read image index: %w", err)
	}
	if idx.Images == nil {
		idx.Images = map[digest.Digest]*imageRecord{}
	}
	if idx.Tags == nil {
		idx.Tags = map[string]digest.Digest{}
	}
	return idx, nil
}

func (s *Store) writeIndex(idx *indexFile) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	if err := atomicfile.WriteSync(filepath.Join(s.root, "index.json"), b, 0o600); err != nil {
		return fmt.Errorf("write image index: %w", err)
	}
	return nil
}

// viewIndex reads the index under a shared lock.
func (s *Store) viewIndex() (*indexFile, error) {
	unlock, err := lockFile(filepath.Join(s.root, "lock"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.readIndex()
}

// updateIndex runs fn on the index under the exclusive lock and writes the
// result when fn returns nil.
func (s *Store) updateIndex(fn func(*indexFile) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(filepath.Join(s.root, "lock"), unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	return s.writeIndex(idx)
}

// opLock is held shared by operations that add content (pull, load,
// import) and exclusively by garbage collection, so GC never deletes a
// blob a running pull has just written but not yet indexed.
func (s *Store) opLock(exclusive, wait bool) (func(), error) {
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if !wait {
		how |= unix.LOCK_NB
	}
	return lockFile(filepath.Join(s.root, "gc.lock"), how)
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

func isHexPrefix(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
