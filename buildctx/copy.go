package buildctx

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
	"github.com/berth-project/berth/safetree"
)

// CopyOptions are the flags of a COPY or ADD.
type CopyOptions struct {
	// Chown is --chown ("user", "user:group", names or numbers), resolved
	// in the destination root; "" leaves files of a build context to
	// root and keeps the owners of a root filesystem's files.
	Chown string
	// Chmod is --chmod (octal), applied to every file and directory
	// copied; "" keeps the sources' modes.
	Chmod string
	// ExtractArchives (ADD): a local tar archive, plain or compressed
	// with gzip, bzip2 or xz, is extracted into dest instead of copied.
	ExtractArchives bool
	// Parents (COPY --parents): each source keeps its path below the
	// root under dest (dest/x/y/z.txt for x/y/z.txt), or its path after a
	// "/./" pivot in the source argument (x/./y/z.txt gives dest/y/z.txt).
	Parents bool
}

// attrs are the owner and mode rules of one copy.
type attrs struct {
	owner      *Owner
	mode       uint32
	hasMode    bool
	keepOwners bool
	dstDev     uint64 // the destination root's device
}

func (a *attrs) ids(st *unix.Stat_t) (int, int) {
	switch {
	case a.owner != nil:
		return a.owner.UID, a.owner.GID
	case a.keepOwners:
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

func (a *attrs) perm(st *unix.Stat_t) uint32 {
	if a.hasMode {
		return a.mode
	}
	return st.Mode & 0o7777
}

func prepareAttrs(dstRoot *os.File, opts CopyOptions, keepOwners bool) (*attrs, error) {
	a := &attrs{keepOwners: keepOwners}
	var st unix.Stat_t
	if err := unix.Fstat(int(dstRoot.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat the destination: %w", err)
	}
	a.dstDev = st.Dev
	if opts.Chown != "" {
		o, err := ResolveChown(dstRoot, opts.Chown)
		if err != nil {
			return nil, err
		}
		a.owner = &o
	}
	if opts.Chmod != "" {
		m, err := ParseChmod(opts.Chmod)
		if err != nil {
			return nil, err
		}
		a.mode, a.hasMode = m, true
	}
	return a, nil
}

// Copy copies srcs (from Resolve) into the root filesystem whose
// directory handle is dstRoot, at dest (absolute; the caller resolves a
// WORKDIR-relative one), with Docker's rules: dest ending in "/", or
// several sources, or an existing directory at dest, means a directory
// to copy into; a directory source has its content copied, not itself;
// missing parents are made 0755 and root's; an existing file is
// replaced. Modes and times are kept, owners as CopyOptions.Chown says.
// Every path of dest is resolved inside dstRoot (symlinks in it stay in
// it) and everything below is made by descriptors without following
// any symlink, so a crafted root cannot send a write outside itself;
// device nodes met there are replaced, never opened.
func (c *Context) Copy(dstRoot *os.File, dest string, srcs []Source, opts CopyOptions) error {
	a, err := prepareAttrs(dstRoot, opts, c.keepOwners)
	if err != nil {
		return err
	}
	args := map[string]bool{}
	for _, s := range srcs {
		args[s.Arg] = true
	}
	slash := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.")
	dest = path.Clean("/" + dest)
	if len(args) > 1 && !slash {
		return errors.New("when using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	destIsDir := slash || len(srcs) > 1
	if !destIsDir {
		if fd, err := openInRoot(dstRoot, dest, unix.O_DIRECTORY); err == nil {
			unix.Close(fd)
			destIsDir = true
		}
	}
	links := &hardlinks{m: map[[2]uint64]int{}}
	defer links.close()
	for _, src := range srcs {
		var err error
		switch {
		case opts.Parents:
			d := path.Join(dest, keptPath(src))
			if src.IsDir {
				err = c.copyTree(dstRoot, d, src, a, links)
			} else {
				err = c.copyOne(dstRoot, d, false, src, a, links)
			}
		case src.IsDir:
			err = c.copyTree(dstRoot, dest, src, a, links)
		case opts.ExtractArchives:
			var done bool
			done, err = c.extractArchive(dstRoot, dest, src, a)
			if err == nil && !done {
				err = c.copyOne(dstRoot, dest, destIsDir, src, a, links)
			}
		default:
			err = c.copyOne(dstRoot, dest, destIsDir, src, a, links)
		}
		if err != nil {
			return fmt.Errorf("copy %s to %s: %w", src.Arg, dest, err)
		}
	}
	return nil
}

// keptPath is the part of a source's path that COPY --parents keeps:
// what follows a "/./" pivot in its argument, else all of it.
func keptPath(src Source) string {
	arg := strings.TrimPrefix(src.Arg, "./")
	i := strings.LastIndex(arg, "/./")
	if i < 0 {
		return src.Rel
	}
	prefix := strings.TrimLeft(path.Clean("/"+arg[:i]), "/")
	if prefix == "" {
		return src.Rel
	}
	if rest, ok := strings.CutPrefix(src.Rel, prefix+"/"); ok {
		return rest
	}
	return src.Rel
}

// copyOne copies a source that is not a directory.
func (c *Context) copyOne(dstRoot *os.File, dest string, destIsDir bool, src Source, a *attrs, links *hardlinks) error {
	target := dest
	if destIsDir {
		target = path.Join(dest, path.Base(src.Rel))
	}
	if target == "/" {
		return errors.New("cannot replace the root directory with a file")
	}
	pfd, _, err := mkdirAll(dstRoot, path.Dir(target))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return c.walk(src, func(n *node) error {
		return c.copyNode(pfd, path.Base(target), n, a, links)
	})
}

// copyTree copies the content of the directory src into dest.
func (c *Context) copyTree(dstRoot *os.File, dest string, src Source, a *attrs, links *hardlinks) error {
	dfd, created, err := mkdirAll(dstRoot, dest)
	if err != nil {
		return err
	}
	top, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(dfd)
	if err != nil {
		return fmt.Errorf("open %s: %w", dest, err)
	}
	type level struct {
		fd    int
		apply bool
		path  string          // in the root
		jobs  *sync.WaitGroup // files of it still being written
		plain bool            // no set-group-ID bit: new files take our group
	}
	stack := []level{{fd: top, apply: created, path: dest, jobs: &sync.WaitGroup{}, plain: plainDir(top)}}
	pool := newCopyPool()
	defer func() {
		pool.stop()
		for _, l := range stack {
			unix.Close(l.fd)
		}
	}()
	err = c.walk(src, func(n *node) error {
		if err := pool.failed(); err != nil {
			return err
		}
		isDir := n.st.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case isDir && n.leave:
			l := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			defer unix.Close(l.fd)
			// Its files first: writing them changes its times.
			l.jobs.Wait()
			if err := pool.failed(); err != nil {
				return err
			}
			if !l.apply {
				return nil
			}
			return setAttrsFd(l.fd, n, a)
		case isDir && n.sub == "":
			return nil // dest itself, opened above
		case isDir:
			parent := stack[len(stack)-1]
			p := path.Join(parent.path, n.name)
			fd, apply, err := mkdirEntry(dstRoot, parent.fd, p, n)
			if err != nil {
				return err
			}
			stack = append(stack, level{fd: fd, apply: apply, path: p, jobs: &sync.WaitGroup{}, plain: plainDir(fd)})
			return nil
		}
		l := stack[len(stack)-1]
		if n.st.Mode&unix.S_IFMT != unix.S_IFREG || n.st.Nlink > 1 {
			// Links are made in walk order: the first copy exists
			// before any other name of it.
			return c.copyNode(l.fd, path.Base(n.sub), n, a, links)
		}
		// The source is opened here, while the walk holds its
		// directory; the rest of the copy goes to the workers.
		in, err := c.openFile(n)
		if err != nil {
			return err
		}
		name, nc := path.Base(n.sub), *n
		pool.run(l.jobs, func() error {
			defer unix.Close(in)
			return writeFile(l.fd, name, in, &nc, a, l.plain)
		})
		return nil
	})
	if werr := pool.stop(); err == nil {
		err = werr
	}
	return err
}

// copyPool writes files on a few goroutines: the copy of a tree of many
// small files is bound by the kernel's work per call, which then runs on
// every CPU.
type copyPool struct {
	work    chan func()
	all     sync.WaitGroup
	mu      sync.Mutex
	err     error
	stopped bool
	sync    bool // no workers: run runs f at once
}

// copyWorkers is the number of goroutines writing files; 0 writes them
// on the walk's own goroutine.
var copyWorkers = min(max(runtime.GOMAXPROCS(0), 1), 4)

func newCopyPool() *copyPool {
	n := copyWorkers
	p := &copyPool{work: make(chan func(), 64), sync: n == 0}
	for i := 0; i < n; i++ {
		go func() {
			for f := range p.work {
				f()
			}
		}()
	}
	return p
}

// run queues f, counted in jobs (its directory's) until it is done; its
// error, the first one, ends the copy.
func (p *copyPool) run(jobs *sync.WaitGroup, f func() error) {
	if p.sync {
		if err := f(); err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
		}
		return
	}
	jobs.Add(1)
	p.all.Add(1)
	p.work <- func() {
		defer p.all.Done()
		defer jobs.Done()
		if err := f(); err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
		}
	}
}

func (p *copyPool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop waits for the queued files and ends the workers; it returns the
// first error. It may be called again.
func (p *copyPool) stop() error {
	p.all.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped = true
		close(p.work)
	}
	return p.err
}

// mkdirEntry makes (or reuses) the directory p of the root, named
// n.name in its parent pfd, for the source directory n, and opens it;
// apply tells whether n's owner, mode and times are to be given to it.
// A symlink there that leads (inside the root) to a directory is
// followed and that directory left as it is, as Docker merges into
// /lib -> usr/lib; anything else in the way is removed first.
func mkdirEntry(dstRoot *os.File, pfd int, p string, n *node) (int, bool, error) {
	name := n.name
	var old unix.Stat_t
	if err := unix.Fstatat(pfd, name, &old, unix.AT_SYMLINK_NOFOLLOW); err == nil && old.Mode&unix.S_IFMT != unix.S_IFDIR {
		if old.Mode&unix.S_IFMT == unix.S_IFLNK {
			if lfd, err := openInRoot(dstRoot, p, unix.O_DIRECTORY); err == nil {
				fd, err := unix.Openat(lfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				unix.Close(lfd)
				if err != nil {
					return -1, false, fmt.Errorf("open %s: %w", p, err)
				}
				return fd, false, nil
			}
		}
		if err := unix.Unlinkat(pfd, name, 0); err != nil {
			return -1, false, fmt.Errorf("replace %s: %w", p, err)
		}
	}
	if err := unix.Mkdirat(pfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, false, fmt.Errorf("mkdir %s: %w", p, err)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, fmt.Errorf("open %s: %w", p, err)
	}
	return fd, true, nil
}

// setAttrsFd gives the open directory fd n's owner, mode and times.
func setAttrsFd(fd int, n *node, a *attrs) error {
	uid, gid := a.ids(&n.st)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", n.rel, err)
	}
	// After chown, which clears set-id bits.
	if err := unix.Fchmod(fd, a.perm(&n.st)); err != nil {
		return fmt.Errorf("chmod %s: %w", n.rel, err)
	}
	if err := unix.UtimesNanoAt(fd, "", times(&n.st), unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("set times of %s: %w", n.rel, err)
	}
	return nil
}

func times(st *unix.Stat_t) []unix.Timespec {
	return []unix.Timespec{st.Atim, st.Mtim}
}

// maxLinkHandles bounds the descriptors held for hard links: past it, a
// further multiply linked file is copied as a file of its own (same
// content, more space), not a failure for lack of descriptors.
const maxLinkHandles = 4096

// hardlinks remembers the copies of multiply linked files, so links
// among the sources stay links in the copy.
type hardlinks struct {
	m map[[2]uint64]int // source (dev, ino) -> O_PATH handle of its copy
}

func (h *hardlinks) close() {
	for _, fd := range h.m {
		unix.Close(fd)
	}
}

// copyNode makes the non-directory n as pfd/name, replacing what is
// there (a directory only when empty).
func (c *Context) copyNode(pfd int, name string, n *node, a *attrs, links *hardlinks) error {
	key := [2]uint64{n.st.Dev, n.st.Ino}
	if n.st.Nlink > 1 {
		if fd, ok := links.m[key]; ok {
			return replace(pfd, name, func() error {
				err := unix.Linkat(fd, "", pfd, name, unix.AT_EMPTY_PATH)
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) {
					// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the
					// descriptor's /proc name links the same inode.
					err = unix.Linkat(unix.AT_FDCWD, atfd.ProcPath(fd), pfd, name, unix.AT_SYMLINK_FOLLOW)
				}
				if err != nil {
					return fmt.Errorf("link %s: %w", n.rel, err)
				}
				return nil
			})
		}
	}
	uid, gid := a.ids(&n.st)
	switch n.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := c.copyFile(pfd, name, n, a); err != nil {
			return err
		}
	case unix.S_IFLNK:
		t, err := n.readlink()
		if err != nil {
			return err
		}
		err = replace(pfd, name, func() error {
			if err := unix.Symlinkat(t, pfd, name); err != nil {
				return fmt.Errorf("symlink %s: %w", n.rel, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", n.rel, err)
		}
		if err := unix.UtimesNanoAt(pfd, name, times(&n.st), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", n.rel, err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		err := replace(pfd, name, func() error {
			if err := unix.Mknodat(pfd, name, n.st.Mode&unix.S_IFMT|0o600, int(n.st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", n.rel, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := nodeAttrs(pfd, name, n, uid, gid, a.perm(&n.st)); err != nil {
			return err
		}
	default:
		return nil // sockets do not travel
	}
	if n.st.Nlink > 1 && len(links.m) < maxLinkHandles {
		fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			links.m[key] = fd
		}
	}
	return nil
}

// replace runs make, which creates pfd/name exclusively; when something
// is in the way it is removed (a directory only when empty) and make
// runs again. Trying first saves a stat per file of a fresh tree.
func replace(pfd int, name string, make func() error) error {
	err := make()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	var old unix.Stat_t
	if err := unix.Fstatat(pfd, name, &old, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	flags := 0
	if old.Mode&unix.S_IFMT == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(pfd, name, flags); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return make()
}

// copyFile writes the regular file n as pfd/name.
func (c *Context) copyFile(pfd int, name string, n *node, a *attrs) error {
	in, err := c.openFile(n)
	if err != nil {
		return err
	}
	defer unix.Close(in)
	return writeFile(pfd, name, in, n, a, false)
}

// plainDir tells whether the directory fd lacks the set-group-ID bit.
func plainDir(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_ISGID == 0
}

// writeFile writes the regular file n, open as in, as pfd/name; plain
// tells that pfd has no set-group-ID bit.
func writeFile(pfd int, name string, in int, n *node, a *attrs, plain bool) error {
	xattrs, err := safetree.ReadXattrs(in)
	if err != nil {
		return fmt.Errorf("%s: %w", n.rel, err)
	}
	uid, gid := a.ids(&n.st)
	fa := safetree.FileAttrs{UID: uid, GID: gid, Mode: a.perm(&n.st), Xattrs: xattrs, Times: times(&n.st), PlainParent: plain}
	return replace(pfd, name, func() error {
		return safetree.CreateFile(pfd, name, n.rel, func(out int) error {
			return safetree.CopyFd(out, in, n.st.Size, n.st.Dev, a.dstDev)
		}, fa)
	})
}

// nodeAttrs sets owner, mode and times of the device or fifo just made
// at pfd/name, through a handle that never opens it.
func nodeAttrs(pfd int, name string, n *node, uid, gid int, mode uint32) error {
	fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", n.rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != n.st.Mode&unix.S_IFMT {
		return fmt.Errorf("%s: replaced while copying", n.rel)
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", n.rel, err)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, atfd.ProcPath(fd), mode, 0); err != nil {
		return fmt.Errorf("chmod %s: %w", n.rel, err)
	}
	if err := unix.UtimesNanoAt(pfd, name, times(&n.st), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", n.rel, err)
	}
	return nil
}
