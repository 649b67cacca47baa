package buildctx

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/safetree"
)

// racyWindow: a file whose ctime is this close to the moment it was read
// may change again within the same timestamp tick, unseen by its
// metadata, so its hash is not remembered.
const racyWindow = 50 * time.Millisecond

// sumEntry is what the cache remembers of a regular file.
type sumEntry struct {
	Size, Mtime, Ctime int64
	Ino, Dev           uint64
	Sum                [sha256.Size]byte
}

// sumCache maps a path below a context's root to its last known content
// hash, persisted in one file per context directory.
type sumCache struct {
	path  string // "" when kept in memory only
	m     map[string]sumEntry
	dirty bool
}

func loadCache(cacheDir, dir string) (*sumCache, error) {
	c := &sumCache{m: map[string]sumEntry{}}
	if cacheDir == "" {
		return c, nil
	}
	key := sha256.Sum256([]byte(dir))
	c.path = filepath.Join(cacheDir, "sums-"+hex.EncodeToString(key[:16]))
	f, err := os.Open(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the context's hash cache: %w", err)
	}
	defer f.Close()
	if err := gob.NewDecoder(f).Decode(&c.m); err != nil || c.m == nil {
		// A damaged cache costs one full read, nothing more.
		c.m, c.dirty = map[string]sumEntry{}, true
	}
	return c, nil
}

// save writes the cache atomically when it changed.
func (c *sumCache) save() error {
	if c.path == "" || !c.dirty {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("write the context's hash cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".sums-*")
	if err != nil {
		return fmt.Errorf("write the context's hash cache: %w", err)
	}
	err = gob.NewEncoder(tmp).Encode(c.m)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write the context's hash cache: %w", err)
	}
	c.dirty = false
	return nil
}

// Checksum is the cache key of copying srcs: a digest of every copied
// entry's path below its source, type, permission bits, owner, and the
// content of regular files, the target of symlinks, the device number of
// devices, the extended attributes of regular files (what a copy
// carries over, times aside, as Docker's cache considers). Ignored files do not count. The content hash of a regular
// file is remembered with its size, mtime, ctime, inode and device, so
// an unchanged file is stat'ed, not read again (FilesRead counts the
// reads).
func (c *Context) Checksum(srcs []Source) (digest.Digest, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := sha256.New()
	seen := map[string]bool{}
	whole := false
	for _, src := range srcs {
		whole = whole || (src.Rel == "." && src.exclude == nil)
		writeField(h, []byte("source"), []byte(src.Rel))
		err := c.walk(src, func(n *node) error {
			if n.leave {
				return nil
			}
			seen[n.rel] = true
			return c.hashNode(h, n)
		})
		if err != nil {
			return "", err
		}
	}
	if whole {
		// The whole tree was seen: what the cache holds beyond it is
		// gone (or ignored now).
		for rel := range c.cache.m {
			if !seen[rel] {
				delete(c.cache.m, rel)
				c.cache.dirty = true
			}
		}
	}
	if err := c.cache.save(); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

func (c *Context) hashNode(h hash.Hash, n *node) error {
	var num [8 * 4]byte
	binary.LittleEndian.PutUint64(num[0:], uint64(n.st.Mode))
	binary.LittleEndian.PutUint64(num[8:], uint64(n.st.Uid))
	binary.LittleEndian.PutUint64(num[16:], uint64(n.st.Gid))
	var extra []byte
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		binary.LittleEndian.PutUint64(num[24:], uint64(n.st.Size))
		sum, err := c.fileSum(n)
		if err != nil {
			return err
		}
		extra = sum[:]
	case unix.S_IFLNK:
		t, err := n.readlink()
		if err != nil {
			return err
		}
		extra = []byte(t)
	case unix.S_IFCHR, unix.S_IFBLK:
		binary.LittleEndian.PutUint64(num[24:], n.st.Rdev)
	}
	writeField(h, []byte(n.sub), num[:], extra)
	return nil
}

// writeField writes length-prefixed parts, so no two different entries
// hash alike.
func writeField(h hash.Hash, parts ...[]byte) {
	var l [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(l[:], uint64(len(p)))
		h.Write(l[:])
		h.Write(p)
	}
}

// fileSum is the sha256 of the regular file n's content, from the cache
// when its metadata is unchanged.
func (c *Context) fileSum(n *node) ([sha256.Size]byte, error) {
	st := &n.st
	want := sumEntry{
		Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
		Ino: st.Ino, Dev: st.Dev,
	}
	if e, ok := c.cache.m[n.rel]; ok {
		want.Sum = e.Sum
		if e == want {
			return e.Sum, nil
		}
	}
	start := time.Now()
	fd, err := c.openFile(n)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer unix.Close(fd)
	fh := sha256.New()
	if _, err := io.Copy(fh, safetree.FDReader(fd)); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("read %s: %w", n.rel, err)
	}
	// Extended attributes (file capabilities) travel with the copy, so
	// they count; a change to them changes the ctime, which the cache
	// watches.
	xattrs, err := safetree.ReadXattrs(fd)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("%s: %w", n.rel, err)
	}
	for _, x := range xattrs {
		writeField(fh, []byte(x.Name), x.Value)
	}
	c.filesRead.Add(1)
	copy(want.Sum[:], fh.Sum(nil))
	if time.Unix(0, want.Ctime).Before(start.Add(-racyWindow)) {
		c.cache.m[n.rel] = want
	} else {
		delete(c.cache.m, n.rel)
	}
	c.cache.dirty = true
	return want.Sum, nil
}
