package safetree

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// Entry is one node met by Walk. The descriptors are valid only during
// the callback.
type Entry struct {
	Rel  string      // path below the walk's start ("" for the start itself)
	Stat unix.Stat_t // its lstat; for a directory, the fstat of Fd
	Fd   int         // for directories, an open read descriptor; else -1
	// Where it is: Name in the directory Dir, or (the start itself) the
	// O_PATH handle Dir with Name "". Anything read from it is checked
	// to be the inode Stat describes.
	Dir   int
	Name  string
	nodev bool // Dir's mount has nodev: a direct open cannot reach a device
}

// ErrSkipDir, returned for a directory, skips its content.
var ErrSkipDir = errors.New("skip this directory")

// Walk calls fn for the node the O_PATH handle h names (unless skipStart)
// and, when it is a directory, for everything below it, parents first,
// names sorted. Nothing is followed: a symlink is reported as one.
func Walk(h *os.File, skipStart bool, fn func(e *Entry) error) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	e := &Entry{Dir: int(h.Fd()), Stat: st, Fd: -1}
	if IsDir(&st) {
		fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory: %w", err)
		}
		defer unix.Close(fd)
		e.Fd = fd
	}
	if !skipStart {
		if err := fn(e); err != nil {
			if errors.Is(err, ErrSkipDir) {
				return nil
			}
			return err
		}
	}
	if e.Fd < 0 {
		return nil
	}
	return walkDir(e.Fd, "", fn)
}

func walkDir(dfd int, rel string, fn func(e *Entry) error) error {
	names, err := atfd.ReadNames(dfd)
	if err != nil {
		return fmt.Errorf("%s: read directory: %w", showRel(rel), err)
	}
	var sfs unix.Statfs_t
	nodev := unix.Fstatfs(dfd, &sfs) == nil && sfs.Flags&unix.ST_NODEV != 0
	for _, name := range names {
		crel := path.Join(rel, name)
		var err error
		for try := 0; ; try++ {
			var e *Entry
			e, err = statEntry(dfd, name, crel, nodev)
			if e == nil {
				break // removed meanwhile
			}
			if err == nil {
				err = fn(e)
				if e.Fd >= 0 {
					if err == nil {
						err = walkDir(e.Fd, crel, fn)
					} else if errors.Is(err, ErrSkipDir) {
						err = nil
					}
					unix.Close(e.Fd)
				}
			}
			// A node swapped between its stat and its open (a
			// container renaming under the walk) is taken again as
			// what is there now.
			if !errors.Is(err, errChanged) || try >= maxRetries {
				break
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// maxRetries bounds the new looks at a node that keeps being swapped.
const maxRetries = 16

// errChanged: the node at a name is no longer the one stat'ed.
var errChanged = errors.New("changed while being read")

// statEntry stats dfd/name for the walk, and opens it when it is a
// directory; nil (and no error) when it is gone.
func statEntry(dfd int, name, crel string, nodev bool) (*Entry, error) {
	e := &Entry{Rel: crel, Fd: -1, Dir: dfd, Name: name, nodev: nodev}
	// Only a stat: nothing is opened for I/O here (no device driver
	// sees an open); what is read later is checked to be this inode.
	err := unix.Fstatat(dfd, name, &e.Stat, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err == nil && IsDir(&e.Stat) {
		// O_DIRECTORY refuses anything else before it is opened.
		e.Fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, nil
		case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
			return e, fmt.Errorf("%s: %w", showRel(crel), errChanged)
		case err == nil:
			err = unix.Fstat(e.Fd, &e.Stat)
		}
	}
	if err != nil {
		if e.Fd >= 0 {
			unix.Close(e.Fd)
			e.Fd = -1
		}
		return e, fmt.Errorf("%s: %w", showRel(crel), err)
	}
	return e, nil
}

func showRel(rel string) string {
	if rel == "" {
		return "."
	}
	return rel
}

// TarOptions tune WriteTar.
type TarOptions struct {
	// Name is the archive name of the start node; "" writes only what is
	// below it (SRC/. in cp).
	Name string
	// Layer reads an overlay upper dir: its whiteouts (0/0 character
	// devices) and opaque directories become an image layer's .wh. files.
	Layer bool
	// Skip, when set, leaves out the entries it says yes to.
	Skip func(e *Entry) bool
	// Owners, when set, maps the owners read to those written: a user
	// namespace's ids seen from inside.
	Owners OwnerMap
}

// WriteTar writes the tree at the O_PATH handle h to tw. Regular files are
// read through descriptors of the very inodes checked; device nodes,
// fifos are written as nodes and never opened; sockets are left out, as
// tar cannot hold them.
func WriteTar(tw *tar.Writer, h *os.File, opts TarOptions) error {
	links := map[[2]uint64]string{}
	return Walk(h, opts.Name == "", func(e *Entry) (err error) {
		if opts.Skip != nil && opts.Skip(e) {
			return nil
		}
		name := path.Join(opts.Name, e.Rel)
		typ := e.Stat.Mode & unix.S_IFMT
		if opts.Layer && typ == unix.S_IFCHR && e.Stat.Rdev == 0 {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(path.Dir(name), ".wh."+path.Base(name)),
				Mode: 0o600, ModTime: mtime(&e.Stat), Format: tar.FormatPAX})
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(e.Stat.Mode & 0o7777),
			Uid:     int(e.Stat.Uid),
			Gid:     int(e.Stat.Gid),
			ModTime: mtime(&e.Stat),
			Format:  tar.FormatPAX,
		}
		if opts.Owners != nil {
			if hdr.Uid, hdr.Gid, err = opts.Owners(hdr.Uid, hdr.Gid); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		switch typ {
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case unix.S_IFREG:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.Stat.Size
		case unix.S_IFLNK:
			hdr.Typeflag = tar.TypeSymlink
			link, err := atfd.Readlink(e.Dir, e.Name)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
				err = errChanged // no longer a symlink
			}
			if err != nil {
				return fmt.Errorf("%s: readlink: %w", name, err)
			}
			hdr.Linkname = link
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			hdr.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[typ]
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(e.Stat.Rdev)), int64(unix.Minor(e.Stat.Rdev))
		default:
			logrus.Debugf("tar: leaving out %s: a socket", name)
			return nil
		}
		if typ != unix.S_IFDIR && e.Stat.Nlink > 1 {
			id := [2]uint64{e.Stat.Dev, e.Stat.Ino}
			if first, ok := links[id]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				// Once written: a node swapped meanwhile is taken again.
				defer func() {
					if err == nil {
						links[id] = name
					}
				}()
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			return writeFile(tw, hdr, e)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if opts.Layer && typ == unix.S_IFDIR && IsOpaque(e.Fd) {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path.Join(name, ".wh..wh..opq"),
				Mode: 0o600, ModTime: mtime(&e.Stat), Format: tar.FormatPAX})
		}
		return nil
	})
}

// writeFile writes a regular file's header and content. Its size is the
// one stat saw: a file growing meanwhile is cut there, one shrinking is
// padded with zeros, so the archive stays well formed.
func writeFile(tw *tar.Writer, hdr *tar.Header, e *Entry) error {
	fd, err := e.openRegular()
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	// tar.Writer's ReadFrom would take a fresh buffer per file.
	n, err := io.CopyBuffer(struct{ io.Writer }{tw}, io.LimitReader(FDReader(fd), hdr.Size), *bp)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if n < hdr.Size {
		logrus.Warnf("%s shrank while being copied; padded with zeros", hdr.Name)
		if _, err := io.CopyN(tw, zeros{}, hdr.Size-n); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	return nil
}

// openRegular opens the regular file e for reading, as a raw descriptor:
// the very inode of e.Stat, never a device or fifo put in its place. On
// a nodev mount (Root's detached clone) its name is opened directly, as
// no device can be opened there; else the node is pinned by an O_PATH
// handle, checked, and reopened through /proc.
func (e *Entry) openRegular() (int, error) {
	if e.nodev && e.Name != "" {
		fd, err := unix.Openat(e.Dir, e.Name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		// Gone, a symlink, a socket, or a device (refused by nodev) now.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EACCES) {
			return -1, fmt.Errorf("%w: %w", errChanged, err)
		}
		if err != nil {
			return -1, err
		}
		return keepIfSame(fd, &e.Stat)
	}
	pfd := e.Dir
	if e.Name != "" {
		var err error
		pfd, err = unix.Openat(e.Dir, e.Name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			return -1, fmt.Errorf("%w: %w", errChanged, err)
		}
		if err != nil {
			return -1, err
		}
		defer unix.Close(pfd)
	}
	if err := sameInode(pfd, &e.Stat); err != nil {
		return -1, err
	}
	fd, err := unix.Open(atfd.ProcPath(pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	return keepIfSame(fd, &e.Stat)
}

// keepIfSame returns fd when it is the regular file st describes, and
// closes it when it is not.
func keepIfSame(fd int, st *unix.Stat_t) (int, error) {
	if err := sameInode(fd, st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// sameInode checks that fd is the regular file st describes.
func sameInode(fd int, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file: %w", errChanged)
	}
	if now.Ino != st.Ino || now.Dev != st.Dev {
		return errChanged
	}
	return nil
}

// FDReader reads a raw descriptor (no os.File: its poller registration
// costs two failing calls per regular file).
type FDReader int

func (r FDReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Sec, st.Mtim.Nsec) }

// IsOpaque tells whether the directory open as fd is an overlay opaque
// directory.
func IsOpaque(fd int) bool {
	buf := make([]byte, 1)
	n, err := unix.Fgetxattr(fd, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}
