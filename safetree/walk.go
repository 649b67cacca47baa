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
	Path int         // an O_PATH descriptor of the node itself, never followed
	Stat unix.Stat_t // its fstat: what Path holds, whatever is at its name now
	Fd   int         // for directories, an open read descriptor; else -1
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
	e := &Entry{Path: int(h.Fd()), Stat: st, Fd: -1}
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
	for _, name := range names {
		crel := path.Join(rel, name)
		e := &Entry{Rel: crel, Fd: -1}
		// The node is pinned first, without following and without opening
		// it for I/O (no device driver sees an open); everything after
		// works on that very inode, whatever the container renames meanwhile.
		pfd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("%s: %w", showRel(crel), err)
		}
		e.Path = pfd
		err = unix.Fstat(pfd, &e.Stat)
		if err == nil && IsDir(&e.Stat) {
			e.Fd, err = unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			unix.Close(pfd)
			return fmt.Errorf("%s: %w", showRel(crel), err)
		}
		err = fn(e)
		if e.Fd >= 0 {
			if err == nil {
				err = walkDir(e.Fd, crel, fn)
			} else if errors.Is(err, ErrSkipDir) {
				err = nil
			}
			unix.Close(e.Fd)
		}
		unix.Close(pfd)
		if err != nil {
			return err
		}
	}
	return nil
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
}

// WriteTar writes the tree at the O_PATH handle h to tw. Regular files are
// read through descriptors of the very inodes checked; device nodes,
// fifos are written as nodes and never opened; sockets are left out, as
// tar cannot hold them.
func WriteTar(tw *tar.Writer, h *os.File, opts TarOptions) error {
	links := map[[2]uint64]string{}
	return Walk(h, opts.Name == "", func(e *Entry) error {
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
		switch typ {
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case unix.S_IFREG:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.Stat.Size
		case unix.S_IFLNK:
			hdr.Typeflag = tar.TypeSymlink
			link, err := atfd.Readlink(e.Path, "")
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
				links[id] = name
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
	f, err := openRegular(e.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	n, err := io.CopyN(tw, f, hdr.Size)
	if err != nil && err != io.EOF {
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
