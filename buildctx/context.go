// Package buildctx is the build context of `berth build` and the copy
// engine of COPY and ADD. A context is read in place (never copied or
// uploaded), filtered by its .dockerignore with BuildKit's semantics, and
// hashed incrementally: the content hash of a file is remembered with its
// metadata, so a rebuild re-reads only files that changed. Copies into the
// image's root filesystem resolve every destination inside that root by
// descriptors, so a symlink planted in the image never sends a write out
// of it.
package buildctx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sys/unix"
)

// Context is a tree that COPY and ADD take their sources from: the build
// context directory, or the root filesystem of a stage or an image (COPY
// --from). It is safe for concurrent use.
type Context struct {
	dir  string
	root *os.File // O_PATH handle of dir
	// inRoot: symlinks and ".." resolve inside the root, as in a root
	// filesystem; else (the build context) a path that leaves the root
	// is refused.
	inRoot bool
	// keepOwners: copies keep the sources' owners (COPY --from); files
	// of the build context become root's.
	keepOwners bool
	ignore     *matcher // nil: nothing ignored
	// nodev: root is a detached clone of dir's mounts with nodev, so a
	// device node below it cannot be opened, only seen.
	nodev bool

	cache     *sumCache
	filesRead atomic.Int64
	mu        sync.Mutex // serialises Checksum's use of the cache
}

// Open opens the build context directory dir, read in place. Its ignore
// file is, as BuildKit chooses it, "<Dockerfile>.dockerignore" next to
// the Dockerfile when that exists, else dir/.dockerignore; dockerfile is
// the Dockerfile's path as the user gave it ("" when it comes from stdin
// or has no file). cacheDir holds the file-hash cache that makes Checksum
// incremental ("" keeps it in memory only).
func Open(dir, dockerfile, cacheDir string) (*Context, error) {
	c, err := open(dir, cacheDir)
	if err != nil {
		return nil, err
	}
	c.ignore, err = readIgnore(dir, dockerfile)
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// OpenRoot opens the directory dir (the root filesystem of a finished
// stage or of an image) as a source for COPY --from: no ignore file,
// paths and symlinks resolved inside dir as the stage would see them,
// owners kept. cacheDir is as for Open.
func OpenRoot(dir, cacheDir string) (*Context, error) {
	c, err := open(dir, cacheDir)
	if err != nil {
		return nil, err
	}
	c.inRoot, c.keepOwners = true, true
	return c, nil
}

func open(dir, cacheDir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	fd, nodev, err := openTree(abs)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("build context %s: not a directory", dir)
		}
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	c := &Context{dir: abs, root: os.NewFile(uintptr(fd), abs), nodev: nodev}
	c.cache, err = loadCache(cacheDir, abs)
	if err != nil {
		c.root.Close()
		return nil, err
	}
	return c, nil
}

// openTree opens the directory dir as a context's root: where the kernel
// allows it, a detached clone of its mounts (submounts too, as a plain
// walk would see them) with nodev, nosuid and noexec, through which
// files are opened directly, saving a pin and a /proc reopen per file;
// else a plain O_PATH handle.
func openTree(dir string) (fd int, nodev bool, err error) {
	fd, err = unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr)
		var st unix.Stat_t
		if err == nil {
			err = unix.Fstat(fd, &st)
		}
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fd, true, nil
		}
		unix.Close(fd)
	}
	// Kernels before 5.12, or no right to mount: the slower way, and
	// its errors (ENOENT, ENOTDIR) for the caller.
	fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	return fd, false, err
}

// Close releases the context's handle.
func (c *Context) Close() error { return c.root.Close() }

// Dir is the context's directory on the host.
func (c *Context) Dir() string { return c.dir }

// FilesRead counts the files whose content Checksum has read (not those
// whose remembered hash it reused) since the context was opened.
func (c *Context) FilesRead() int64 { return c.filesRead.Load() }

// readIgnore finds and parses the ignore file of a context.
func readIgnore(dir, dockerfile string) (*matcher, error) {
	var candidates []string
	if dockerfile != "" {
		candidates = append(candidates, dockerfile+".dockerignore")
	}
	candidates = append(candidates, filepath.Join(dir, ".dockerignore"))
	for _, p := range candidates {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		if len(patterns) == 0 {
			return nil, nil
		}
		m, err := newMatcher(patterns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return m, nil
	}
	return nil, nil
}

// Ignored tells whether the path rel (relative to the context root,
// slash-separated) is excluded by the ignore file, an exception for it
// or a parent taken into account.
func (c *Context) Ignored(rel string) (bool, error) {
	st, err := c.ignore.matchPath(rel)
	if err != nil {
		return false, fmt.Errorf("match against the ignore file: %w", err)
	}
	return st.excluded, nil
}

// HasIgnore tells whether the context's ignore file excludes anything:
// a view of it without the ignored files is then not the directory
// itself.
func (c *Context) HasIgnore() bool { return c.ignore != nil }
