package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// CopyUp fills the empty directory dst (a new volume's _data) with the tree
// at src (the image's content at the mount point), as Docker does when a new
// volume is mounted over image content: modes, owners, times, symlinks (as
// links), hard links within the tree, device nodes, fifos, sockets and, where
// the filesystems allow, extended attributes; dst takes src's own mode,
// owner and times.
//
// The walk goes by file descriptors with O_NOFOLLOW, so a symlink in the
// tree, even one swapped in while copying, is never followed out of src; src
// itself must be a directory, not a symlink. On failure dst is left empty.
func CopyUp(src, dst string) (err error) {
	sfd, err := openDir(unix.AT_FDCWD, src)
	if err != nil {
		return fmt.Errorf("copy up %s: %w", src, err)
	}
	defer unix.Close(sfd)
	return copyUp(sfd, src, dst)
}

// CopyUpFrom is CopyUp from a directory already resolved to a handle
// (inside a container's root, say); src may be an O_PATH handle.
func CopyUpFrom(src *os.File, dst string) error {
	sfd, err := openDir(int(src.Fd()), ".")
	if err != nil {
		return fmt.Errorf("copy up %s: %w", src.Name(), err)
	}
	defer unix.Close(sfd)
	return copyUp(sfd, src.Name(), dst)
}

func copyUp(sfd int, src, dst string) (err error) {
	dfd, err := openDir(unix.AT_FDCWD, dst)
	if err != nil {
		return fmt.Errorf("copy up to %s: %w", dst, err)
	}
	defer unix.Close(dfd)
	names, err := atfd.ReadNames(dfd)
	if err != nil {
		return fmt.Errorf("copy up to %s: %w", dst, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("copy up to %s: not empty", dst)
	}
	var sst, dst0 unix.Stat_t
	if err := unix.Fstat(sfd, &sst); err != nil {
		return fmt.Errorf("copy up %s: %w", src, err)
	}
	if err := unix.Fstat(dfd, &dst0); err != nil {
		return fmt.Errorf("copy up to %s: %w", dst, err)
	}
	c := &copier{src: src, dstFd: dfd, dstID: devIno{uint64(dst0.Dev), dst0.Ino}, links: map[devIno]string{}}
	defer func() {
		if err != nil {
			c.undo(dst, dfd, &dst0)
		}
	}()
	if err := c.dir(sfd, dfd, ""); err != nil {
		return err
	}
	if err := c.attrs(sfd, dfd, "", &sst); err != nil {
		return err
	}
	// dst has no parent fd here; /proc names it, else microseconds do.
	ts := []unix.Timespec{sst.Atim, sst.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, atfd.ProcPath(dfd), ts, 0); err != nil {
		tv := []unix.Timeval{unix.NsecToTimeval(unix.TimespecToNsec(sst.Atim)), unix.NsecToTimeval(unix.TimespecToNsec(sst.Mtim))}
		if err := unix.Futimes(dfd, tv); err != nil {
			return fmt.Errorf("copy up to %s: set times: %w", dst, err)
		}
	}
	return nil
}

type devIno struct{ dev, ino uint64 }

type copier struct {
	src   string
	dstFd int
	dstID devIno
	// links maps a multiply-linked source inode to its first copy's path
	// relative to dst, to link the others to.
	links map[devIno]string
}

func openDir(at int, name string) (int, error) {
	for {
		fd, err := unix.Openat(at, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return -1, fmt.Errorf("not a directory (symlinks are not followed): %w", err)
		}
		return fd, err
	}
}

func (c *copier) path(rel string) string { return filepath.Join(c.src, rel) }

// dir copies the entries of the source directory sfd into dfd.
func (c *copier) dir(sfd, dfd int, rel string) error {
	names, err := atfd.ReadNames(sfd)
	if err != nil {
		return fmt.Errorf("copy up %s: %w", c.path(rel), err)
	}
	for _, name := range names {
		if err := c.entry(sfd, dfd, name, filepath.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) entry(sfd, dfd int, name, rel string) error {
	fail := func(err error) error { return fmt.Errorf("copy up %s: %w", c.path(rel), err) }
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	typ := st.Mode & unix.S_IFMT
	id := devIno{uint64(st.Dev), st.Ino}
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		if first, ok := c.links[id]; ok {
			if err := unix.Linkat(c.dstFd, first, dfd, name, 0); err != nil {
				return fail(fmt.Errorf("hard link to %s: %w", first, err))
			}
			return nil
		}
		c.links[id] = rel
	}
	switch typ {
	case unix.S_IFDIR:
		if id == c.dstID {
			return fail(errors.New("the destination is inside the source"))
		}
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return fail(err)
		}
		csfd, err := openDir(sfd, name)
		if err != nil {
			return fail(err)
		}
		defer unix.Close(csfd)
		cdfd, err := openDir(dfd, name)
		if err != nil {
			return fail(err)
		}
		defer unix.Close(cdfd)
		if err := c.dir(csfd, cdfd, rel); err != nil {
			return err
		}
		// After the entries: making them changes the directory's times,
		// and its mode may forbid writing.
		if err := c.attrs(csfd, cdfd, rel, &st); err != nil {
			return err
		}
		return c.setTimes(dfd, name, rel, &st)
	case unix.S_IFREG:
		return c.file(sfd, dfd, name, rel, &st)
	case unix.S_IFLNK:
		target, err := atfd.Readlink(sfd, name)
		if err != nil {
			return fail(err)
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return fail(err)
		}
		return c.nodeAttrs(sfd, dfd, name, rel, &st)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return fail(err)
		}
		return c.nodeAttrs(sfd, dfd, name, rel, &st)
	default:
		return fail(fmt.Errorf("unknown file type %#o", typ))
	}
}

func (c *copier) file(sfd, dfd int, name, rel string, st *unix.Stat_t) error {
	fail := func(err error) error { return fmt.Errorf("copy up %s: %w", c.path(rel), err) }
	// O_NONBLOCK: if a fifo were swapped in since the stat, opening it must
	// not hang; the fstat below then refuses it.
	ifd, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	in := os.NewFile(uintptr(ifd), c.path(rel))
	defer in.Close()
	var ist unix.Stat_t
	if err := unix.Fstat(ifd, &ist); err != nil {
		return fail(err)
	}
	if ist.Mode&unix.S_IFMT != unix.S_IFREG || ist.Ino != st.Ino || ist.Dev != st.Dev {
		return fail(errors.New("changed while copying"))
	}
	ofd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fail(err)
	}
	out := os.NewFile(uintptr(ofd), name)
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return fail(err)
	}
	if err := c.attrs(ifd, ofd, rel, st); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	return c.setTimes(dfd, name, rel, st)
}

// attrs gives the open copy dfd the source sfd's owner, extended
// attributes and mode. Owner first: chown clears set-id bits and file
// capabilities.
func (c *copier) attrs(sfd, dfd int, rel string, st *unix.Stat_t) error {
	fail := func(err error) error { return fmt.Errorf("copy up %s: %w", c.path(rel), err) }
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return fail(err)
	}
	copyXattrs(c.path(rel),
		func(b []byte) (int, error) { return unix.Flistxattr(sfd, b) },
		func(n string, b []byte) (int, error) { return unix.Fgetxattr(sfd, n, b) },
		func(n string, b []byte) error { return unix.Fsetxattr(dfd, n, b, 0) })
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return fail(err)
	}
	return nil
}

// nodeAttrs does attrs for what cannot be opened: symlinks, devices,
// fifos and sockets, by name in their directories.
func (c *copier) nodeAttrs(sfd, dfd int, name, rel string, st *unix.Stat_t) error {
	fail := func(err error) error { return fmt.Errorf("copy up %s: %w", c.path(rel), err) }
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail(err)
	}
	// No fd for these: the l*xattr calls by a /proc/self/fd path keep to
	// the directories already opened.
	sp, dp := filepath.Join(atfd.ProcPath(sfd), name), filepath.Join(atfd.ProcPath(dfd), name)
	copyXattrs(c.path(rel),
		func(b []byte) (int, error) { return unix.Llistxattr(sp, b) },
		func(n string, b []byte) (int, error) { return unix.Lgetxattr(sp, n, b) },
		func(n string, b []byte) error { return unix.Lsetxattr(dp, n, b, 0) })
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// Not a symlink: this node was just made here, so following is moot.
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return fail(err)
		}
	}
	return c.setTimes(dfd, name, rel, st)
}

func (c *copier) setTimes(dfd int, name, rel string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("copy up %s: set times: %w", c.path(rel), err)
	}
	return nil
}

// copyXattrs copies the extended attributes it can. Filesystems without
// them, or attributes the kernel refuses (user.* on symlinks, security.*
// without privilege), are skipped and logged at debug level, as Docker
// does.
func copyXattrs(what string, list func([]byte) (int, error), get func(string, []byte) (int, error), set func(string, []byte) error) {
	names, err := xattrList(list)
	if err != nil {
		if err != unix.ENOTSUP && err != unix.EOPNOTSUPP {
			logrus.Debugf("copy up %s: list xattrs: %v", what, err)
		}
		return
	}
	for _, name := range names {
		// overlayfs keeps its own state in trusted.overlay.*; it means
		// nothing outside the overlay.
		if strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val, err := xattrGet(name, get)
		if err == nil {
			err = set(name, val)
		}
		if err != nil {
			logrus.Debugf("copy up %s: xattr %s: %v", what, name, err)
		}
	}
}

func xattrList(list func([]byte) (int, error)) ([]string, error) {
	for {
		n, err := list(nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = list(buf)
		if err == unix.ERANGE {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func xattrGet(name string, get func(string, []byte) (int, error)) ([]byte, error) {
	for {
		n, err := get(name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = get(name, buf)
		if err == unix.ERANGE {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// undo empties dst (it was empty before) and gives it back its mode and
// owner after a failed copy, so the volume is as it was and a later start
// may try again.
func (c *copier) undo(dst string, dfd int, st *unix.Stat_t) {
	names, err := atfd.ReadNames(dfd)
	if err != nil {
		logrus.Warnf("copy up to %s: undo: %v", dst, err)
		return
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dst, n)); err != nil {
			logrus.Warnf("copy up to %s: undo: %v", dst, err)
		}
	}
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		logrus.Warnf("copy up to %s: undo: %v", dst, err)
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		logrus.Warnf("copy up to %s: undo: %v", dst, err)
	}
}
