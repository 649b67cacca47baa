package buildctx

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// node is one entry met by walk.
type node struct {
	rel   string // path below the context root
	sub   string // path below the walked source ("" for the source itself)
	st    unix.Stat_t
	dirfd int    // the directory holding it, -1 for the source itself or a directory emitted late
	name  string // its name in dirfd
	self  int    // for the source itself: its O_PATH handle (followed); else -1
	leave bool   // a directory's end, after its content
}

// openFile opens the regular file n for reading, as a raw descriptor:
// never a device or fifo put in its place, and the very inode that was
// stat'ed. Through the context's nodev mount a direct open of the name
// cannot open a device (the kernel refuses before any driver sees it),
// so only the inode check is left; without one, the node is pinned by an
// O_PATH handle, checked, and reopened through /proc.
func (c *Context) openFile(n *node) (int, error) {
	if c.nodev && n.self < 0 {
		fd, err := unix.Openat(n.dirfd, n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", n.rel, err)
		}
		if err := sameFile(fd, n); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	var pfd int
	var err error
	if n.self >= 0 {
		pfd, err = unix.FcntlInt(uintptr(n.self), unix.F_DUPFD_CLOEXEC, 0)
	} else {
		pfd, err = unix.Openat(n.dirfd, n.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", n.rel, err)
	}
	defer unix.Close(pfd)
	if err := sameFile(pfd, n); err != nil {
		return -1, err
	}
	fd, err := unix.Open(atfd.ProcPath(pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", n.rel, err)
	}
	return fd, nil
}

// sameFile checks that fd is the regular file that n's stat describes.
func sameFile(fd int, n *node) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", n.rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Ino != n.st.Ino || st.Dev != n.st.Dev {
		return fmt.Errorf("open %s: changed while being read", n.rel)
	}
	return nil
}

// readlink is the target of the symlink n.
func (n *node) readlink() (string, error) {
	var t string
	var err error
	if n.self >= 0 {
		t, err = atfd.Readlink(n.self, "")
	} else {
		t, err = atfd.Readlink(n.dirfd, n.name)
	}
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", n.rel, err)
	}
	return t, nil
}

// pendingDir is a directory that the ignore file excludes but whose
// content may hold exceptions: it is emitted only once something inside
// it is.
type pendingDir struct {
	n       node
	emitted bool
}

type walker struct {
	c       *Context
	exclude *matcher // the source's --exclude, matched below it
	fn      func(n *node) error
	pending []*pendingDir
}

// walk calls fn for the source and, for a directory, everything below it
// that the ignore file keeps, parents first with a leave call after
// their content, names sorted. Nothing below the source is followed.
func (c *Context) walk(src Source, fn func(n *node) error) error {
	f, err := c.openPath("COPY", src.Arg, src.Rel)
	if err != nil {
		return err
	}
	defer f.Close()
	n := node{rel: src.Rel, dirfd: -1, self: int(f.Fd())}
	if err := unix.Fstat(n.self, &n.st); err != nil {
		return fmt.Errorf("stat %s: %w", src.Rel, err)
	}
	if err := fn(&n); err != nil {
		return err
	}
	if n.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	state, err := c.ignore.matchPath(src.Rel)
	if err != nil {
		return fmt.Errorf("match against the ignore file: %w", err)
	}
	dfd, err := unix.Openat(n.self, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", src.Rel, err)
	}
	w := &walker{c: c, exclude: src.exclude, fn: fn}
	err = w.dir(dfd, src.Rel, "", state, matchState{})
	unix.Close(dfd)
	if err != nil {
		return err
	}
	n.leave = true
	return fn(&n)
}

// dir walks the directory dfd; ign is its state against the ignore
// file, exc against the source's --exclude patterns.
func (w *walker) dir(dfd int, rel, sub string, ign, exc matchState) error {
	names, err := atfd.ReadNames(dfd)
	if err != nil {
		return fmt.Errorf("read directory %s: %w", rel, err)
	}
	for _, name := range names {
		n := node{rel: joinRel(rel, name), sub: joinRel(sub, name), dirfd: dfd, name: name, self: -1}
		if err := unix.Fstatat(dfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return fmt.Errorf("stat %s: %w", n.rel, err)
		}
		cign, err := w.c.ignore.match(n.rel, ign)
		if err != nil {
			return fmt.Errorf("match against the ignore file: %w", err)
		}
		cexc, err := w.exclude.match(n.sub, exc)
		if err != nil {
			return fmt.Errorf("match against --exclude: %w", err)
		}
		isDir := n.st.Mode&unix.S_IFMT == unix.S_IFDIR
		if cign.excluded || cexc.excluded {
			// An excluded directory is entered only when an exception
			// ("!" pattern) may bring something inside it back.
			if !isDir || (cign.excluded && !w.c.ignore.mayMatchBelow(n.rel)) || (cexc.excluded && !w.exclude.mayMatchBelow(n.sub)) {
				continue
			}
			p := &pendingDir{n: n}
			p.n.dirfd = -1
			w.pending = append(w.pending, p)
			err := w.subdir(&n, cign, cexc)
			w.pending = w.pending[:len(w.pending)-1]
			if err != nil {
				return err
			}
			if p.emitted {
				p.n.leave = true
				if err := w.fn(&p.n); err != nil {
					return err
				}
			}
			continue
		}
		for _, p := range w.pending {
			if !p.emitted {
				p.emitted = true
				if err := w.fn(&p.n); err != nil {
					return err
				}
			}
		}
		if err := w.fn(&n); err != nil {
			return err
		}
		if isDir {
			if err := w.subdir(&n, cign, cexc); err != nil {
				return err
			}
			n.leave = true
			if err := w.fn(&n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *walker) subdir(n *node, ign, exc matchState) error {
	fd, err := unix.Openat(n.dirfd, n.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", n.rel, err)
	}
	defer unix.Close(fd)
	return w.dir(fd, n.rel, n.sub, ign, exc)
}
