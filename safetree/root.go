// Package safetree reads and writes, from the host, directory trees that
// another party controls: a running container's root, its overlay upper
// dir, a volume. Such a tree can change under the host at any moment (a
// directory swapped for a symlink, a device node made with mknod), so a
// path is resolved once, inside the tree's root, to a descriptor, and all
// further work goes by descriptors relative to their directories with
// O_NOFOLLOW. Nothing is ever reached through a symlink out of the tree,
// and device nodes, fifos and sockets are never opened: they travel as
// nodes.
package safetree

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Root is an open tree. Where the kernel allows it, the handle is a
// detached clone of the tree's mount with nodev, nosuid and noexec, so
// even a device node swapped in between a check and an open cannot be
// opened through it.
type Root struct {
	f *os.File
}

// OpenRoot opens the directory dir as a tree's root. dir itself is the
// host's path (a container's merged or upper dir, a volume's data), not
// the tree's.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			unix.Close(fd)
			fd = -1
		}
	} else {
		fd = -1
	}
	if fd < 0 {
		// Kernels before 5.12: a plain handle; the descriptor walk alone
		// keeps devices closed.
		if fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("open %s: %w", dir, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: not a directory", dir)
	}
	return &Root{f: os.NewFile(uintptr(fd), dir)}, nil
}

// Close releases the root (and its detached mount).
func (r *Root) Close() error { return r.f.Close() }

// Handle is the root's own O_PATH handle; it stays owned by r.
func (r *Root) Handle() *os.File { return r.f }

// Open resolves p inside the root, with ".." and absolute symlinks kept
// inside it, to an O_PATH handle. With follow false a symlink as the last
// component is opened itself. Errors name p, not the host path.
func (r *Root) Open(p string, follow bool) (*os.File, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return reopenPath(r.f)
	}
	if !follow {
		parent, err := r.Open(path.Dir(p), true)
		if err != nil {
			var pe *PathError
			if errors.As(err, &pe) {
				return nil, pathErr(p, pe.Err)
			}
			return nil, err
		}
		defer parent.Close()
		fd, err := unix.Openat(int(parent.Fd()), path.Base(p), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, pathErr(p, err)
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	for i := 0; i < 32; i++ {
		fd, err := unix.Openat2(int(r.f.Fd()), p, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), p), nil
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue // a rename raced the lookup; the kernel asks to retry
		case errors.Is(err, unix.ENOSYS):
			f, err := pathrs.OpenatInRoot(r.f, p)
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					return nil, pathErr(p, pe.Err)
				}
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return f, nil
		default:
			return nil, pathErr(p, err)
		}
	}
	return nil, pathErr(p, unix.EAGAIN)
}

// PathError is an error about a path inside a tree, named as the tree sees
// it.
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string {
	switch {
	case errors.Is(e.Err, unix.ENOENT):
		return e.Path + ": no such file or directory"
	case errors.Is(e.Err, unix.ENOTDIR):
		return e.Path + ": not a directory"
	case errors.Is(e.Err, unix.EXDEV):
		return e.Path + ": crosses a mount point"
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

func pathErr(p string, err error) error { return &PathError{Path: p, Err: err} }

// reopenPath duplicates an O_PATH handle.
func reopenPath(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// Stat is fstat of a handle.
func Stat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return &st, nil
}

// IsDir tells whether st is a directory's.
func IsDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// CleanName checks an archive entry's name and returns it relative to the
// extraction directory ("." for the directory itself).
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("invalid archive entry %q: NUL in name", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("invalid archive entry %q: path leaves the destination", name)
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	return rel, nil
}
