package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/safetree"
)

// A cache mount's directory is named by a hash of its id (ids are paths
// such as /root/.cache): <mounts>/<hash>/id holds the id, data/ the files.

func mountKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// cacheMountDir makes (once) and returns the data directory of cache
// mount id, owned by uid:gid with mode when new.
func cacheMountDir(dataRoot, id string, uid, gid int, mode os.FileMode) (string, error) {
	dir := filepath.Join(mountsDir(dataRoot), mountKey(id))
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(data); err == nil {
		return data, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), []byte(id), 0o600); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Mkdir(data, mode); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Chmod(data, mode); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	if err := os.Lchown(data, uid, gid); err != nil {
		return "", fmt.Errorf("cache mount %s: %w", id, err)
	}
	return data, nil
}

// shareCacheMount applies a cache mount's sharing mode to its data
// directory dir, for one step. Every user holds the mount's lock while
// its step runs: shared ones a shared lock when they can get it (they
// never wait), locked ones an exclusive lock (they wait for every other
// user, so they run one at a time), private ones the exclusive lock when
// it is free, and otherwise a fresh empty directory of their own that
// goes with the step. It returns the directory to bind and the release.
func (b *Builder) shareCacheMount(dir string, sharing instructions.ShareMode, uid, gid int, mode os.FileMode) (string, func(), error) {
	lockPath := filepath.Join(filepath.Dir(dir), "lock")
	switch sharing {
	case instructions.MountSharingLocked:
		lock, err := lockfile.Open(lockPath, unix.LOCK_EX)
		if err != nil {
			return "", nil, err
		}
		return dir, func() { lock.Close() }, nil
	case instructions.MountSharingPrivate:
		lock, err := lockfile.Open(lockPath, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return dir, func() { lock.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return "", nil, err
		}
		tmp, release, err := b.tempDir("cache-")
		if err != nil {
			return "", nil, err
		}
		cleanup := func() {
			if err := os.RemoveAll(tmp); err != nil {
				logrus.Warnf("build: remove %s: %v", tmp, err)
			}
			release()
		}
		data := filepath.Join(tmp, "data")
		err = os.Mkdir(data, mode)
		if err == nil {
			err = os.Chmod(data, mode)
		}
		if err == nil {
			err = os.Lchown(data, uid, gid)
		}
		if err != nil {
			cleanup()
			return "", nil, err
		}
		return data, cleanup, nil
	default:
		lock, err := lockfile.Open(lockPath, unix.LOCK_SH|unix.LOCK_NB)
		if err != nil {
			if !errors.Is(err, unix.EWOULDBLOCK) {
				return "", nil, err
			}
			return dir, func() {}, nil
		}
		return dir, func() { lock.Close() }, nil
	}
}

// CacheMount is one RUN --mount=type=cache directory.
type CacheMount struct {
	ID   string
	Dir  string
	Size int64
}

// CacheMounts lists the cache mount directories.
func CacheMounts(dataRoot string) ([]CacheMount, error) {
	ents, err := os.ReadDir(mountsDir(dataRoot))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache mounts: %w", err)
	}
	var out []CacheMount
	for _, e := range ents {
		dir := filepath.Join(mountsDir(dataRoot), e.Name())
		id, err := os.ReadFile(filepath.Join(dir, "id"))
		if err != nil {
			continue
		}
		out = append(out, CacheMount{ID: string(id), Dir: filepath.Join(dir, "data"), Size: container.DirSize(dir)})
	}
	return out, nil
}

// PruneMounts removes the cache mounts with these ids (all of them when
// ids is empty) and returns the bytes freed.
func PruneMounts(dataRoot string, ids []string) (int64, error) {
	mounts, err := CacheMounts(dataRoot)
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var freed int64
	for _, m := range mounts {
		if len(ids) > 0 && !want[m.ID] {
			continue
		}
		if err := os.RemoveAll(filepath.Dir(m.Dir)); err != nil {
			return freed, fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
		freed += m.Size
	}
	return freed, nil
}

// ExportMounts writes the cache mounts with these ids (all when empty) to
// w as a tar archive: <key>/id and <key>/data/... per mount.
func ExportMounts(dataRoot string, ids []string, w io.Writer) error {
	mounts, err := CacheMounts(dataRoot)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	tw := tar.NewWriter(w)
	for _, m := range mounts {
		if len(ids) > 0 && !want[m.ID] {
			continue
		}
		delete(want, m.ID)
		key := mountKey(m.ID)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: key + "/id", Mode: 0o600, Size: int64(len(m.ID))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(m.ID)); err != nil {
			return err
		}
		root, err := safetree.OpenRoot(m.Dir)
		if err != nil {
			return fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
		err = safetree.WriteTar(tw, root.Handle(), safetree.TarOptions{Name: key + "/data"})
		root.Close()
		if err != nil {
			return fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
	}
	for id := range want {
		return fmt.Errorf("no cache mount with id %q", id)
	}
	return tw.Close()
}

// ImportMounts reads an archive of ExportMounts into the cache mounts,
// replacing mounts of the same ids. It returns the ids imported.
func ImportMounts(dataRoot string, r io.Reader) ([]string, error) {
	if err := os.MkdirAll(mountsDir(dataRoot), 0o700); err != nil {
		return nil, fmt.Errorf("cache mounts: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(dataRoot, "build"), "import-")
	if err != nil {
		return nil, fmt.Errorf("cache import: %w", err)
	}
	defer os.RemoveAll(tmp)
	root, err := safetree.OpenRoot(tmp)
	if err != nil {
		return nil, fmt.Errorf("cache import: %w", err)
	}
	err = safetree.Extract(root.Handle(), r, safetree.ExtractOptions{KeepOwners: true})
	root.Close()
	if err != nil {
		return nil, fmt.Errorf("cache import: %w", err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("cache import: %w", err)
	}
	var ids []string
	for _, e := range ents {
		src := filepath.Join(tmp, e.Name())
		idb, err := os.ReadFile(filepath.Join(src, "id"))
		if err != nil {
			return ids, fmt.Errorf("cache import: %s has no id", e.Name())
		}
		id := string(idb)
		// The directory is named by the id's hash here, whatever the
		// archive called it.
		if fi, err := os.Lstat(filepath.Join(src, "data")); err != nil || !fi.IsDir() {
			return ids, fmt.Errorf("cache import: %s has no data directory", id)
		}
		dst := filepath.Join(mountsDir(dataRoot), mountKey(id))
		if err := os.RemoveAll(dst); err != nil {
			return ids, fmt.Errorf("cache import: %w", err)
		}
		if err := os.Rename(src, dst); err != nil {
			return ids, fmt.Errorf("cache import: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// defaultCacheID is BuildKit's: the target path.
func defaultCacheID(target string) string { return path.Clean("/" + strings.TrimPrefix(target, "/")) }
