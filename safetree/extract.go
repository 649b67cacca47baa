package safetree

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// KeepOwners gives entries the archive's owners (cp -a); else they
	// belong to root.
	KeepOwners bool
	// Owners, when set, maps the owner an entry is given (the archive's,
	// or root) to the one written: a user namespace's host ids. It also
	// owns the directories made on the way, as root would.
	Owners OwnerMap
}

// OwnerMap maps a uid and gid on one side of a user namespace to the
// other side's.
type OwnerMap func(uid, gid int) (int, int, error)

// Extract writes the tar stream r into the directory at the O_PATH handle
// dir. Every entry is reached from dir one component at a time with
// O_NOFOLLOW, so neither a symlink already there nor one swapped in while
// extracting leads anywhere else. What stands where an entry goes is
// replaced, except a directory by a directory; an existing file, device
// or fifo is removed, never opened.
func Extract(dir *os.File, r io.Reader, opts ExtractOptions) error {
	x := &extractor{top: int(dir.Fd()), opts: opts, cacheFd: -1}
	defer x.dropCache()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Directory times last: filling a directory changes its times.
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		pfd, err := x.parent(path.Dir(d.rel), false)
		if err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(pfd, path.Base(d.rel), d.ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: set times: %w", d.rel, err)
		}
	}
	return nil
}

type dirTime struct {
	rel string
	ts  []unix.Timespec
}

type extractor struct {
	top      int
	opts     ExtractOptions
	dirTimes []dirTime
	// The last parent directory reached: archives list a directory's
	// entries together.
	cacheRel string
	cacheFd  int
}

func (x *extractor) dropCache() {
	if x.cacheFd >= 0 {
		unix.Close(x.cacheFd)
		x.cacheFd = -1
	}
}

// parent returns an O_PATH descriptor of the directory rel below the top,
// reached component by component without following any symlink; with
// create, missing directories are made. The descriptor belongs to x.
func (x *extractor) parent(rel string, create bool) (int, error) {
	if rel == "." || rel == "" {
		return x.top, nil
	}
	if x.cacheFd >= 0 && x.cacheRel == rel {
		return x.cacheFd, nil
	}
	x.dropCache()
	cur := x.top
	for _, c := range strings.Split(rel, "/") {
		fd, err := unix.Openat(cur, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			made := unix.Mkdirat(cur, c, 0o755)
			if err = made; err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = unix.Openat(cur, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
			if made == nil && err == nil && x.opts.Owners != nil {
				err = x.chownMade(fd, 0, 0)
			}
		}
		if cur != x.top {
			unix.Close(cur)
		}
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				return -1, fmt.Errorf("%s: not a directory (a symlink or file is in the way)", rel)
			}
			return -1, fmt.Errorf("%s: %w", rel, err)
		}
		cur = fd
	}
	x.cacheRel, x.cacheFd = rel, cur
	return cur, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	}
	rel, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil // the destination itself stays as it is
	}
	pfd, err := x.parent(path.Dir(rel), true)
	if err != nil {
		return err
	}
	name := path.Base(rel)
	isDir := hdr.Typeflag == tar.TypeDir
	var old unix.Stat_t
	if err := unix.Fstatat(pfd, name, &old, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		switch {
		case IsDir(&old) && isDir:
		case IsDir(&old):
			return fmt.Errorf("%s: cannot overwrite a directory with a non-directory", rel)
		default:
			if err := unix.Unlinkat(pfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("%s: replace: %w", rel, err)
			}
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s: mkdir: %w", rel, err)
		}
	//lint:ignore SA1019 old archives still carry the pre-POSIX regular-file type
	case tar.TypeReg, tar.TypeRegA:
		return x.file(pfd, name, rel, hdr, r)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, name); err != nil {
			return fmt.Errorf("%s: symlink: %w", rel, err)
		}
	case tar.TypeLink:
		lrel, err := CleanName(hdr.Linkname)
		if err != nil || lrel == "." {
			return fmt.Errorf("%s: hard link target %q leaves the destination", rel, hdr.Linkname)
		}
		// The target's directory is reached as strictly as any entry's;
		// it may differ from pfd, so pfd is not reused across the call.
		dfd, err := unix.FcntlInt(uintptr(pfd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		defer unix.Close(dfd)
		tfd, err := x.parent(path.Dir(lrel), false)
		if err != nil {
			return fmt.Errorf("%s: hard link target: %w", rel, err)
		}
		if err := unix.Linkat(tfd, path.Base(lrel), dfd, name, 0); err != nil {
			return fmt.Errorf("%s: hard link to %s: %w", rel, lrel, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		if err := unix.Mknodat(pfd, name, typ|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("%s: mknod: %w", rel, err)
		}
	default:
		logrus.Warnf("%s: skipped: unsupported archive entry type %q", rel, hdr.Typeflag)
		return nil
	}
	return x.attrs(pfd, name, rel, hdr, mode)
}

func (x *extractor) file(pfd int, name, rel string, hdr *tar.Header, r io.Reader) error {
	uid, gid, err := x.owner(hdr)
	if err != nil {
		return err
	}
	a := FileAttrs{UID: uid, GID: gid, Mode: uint32(hdr.Mode) & 0o7777, Times: times(hdr)}
	if err := CreateFile(pfd, name, rel, func(fd int) error { return CopyReader(fd, r) }, a); err != nil {
		return err
	}
	return nil
}

func (x *extractor) owner(hdr *tar.Header) (int, int, error) {
	uid, gid := 0, 0
	if x.opts.KeepOwners {
		uid, gid = hdr.Uid, hdr.Gid
	}
	if x.opts.Owners == nil {
		return uid, gid, nil
	}
	muid, mgid, err := x.opts.Owners(uid, gid)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", hdr.Name, err)
	}
	return muid, mgid, nil
}

// chownMade gives the directory just made at the O_PATH descriptor fd the
// mapped owner of uid:gid.
func (x *extractor) chownMade(fd, uid, gid int) error {
	muid, mgid, err := x.opts.Owners(uid, gid)
	if err == nil {
		err = unix.Fchownat(fd, "", muid, mgid, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// attrs sets owner, mode and times of what was just made at pfd/name.
func (x *extractor) attrs(pfd int, name, rel string, hdr *tar.Header, mode uint32) error {
	uid, gid, err := x.owner(hdr)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: chown: %w", rel, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// chmod follows links, so it goes through a handle of the node
		// itself, opened without following and checked to be of the kind
		// just made.
		fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = errors.New("replaced by a symlink")
		}
		if err == nil {
			err = unix.Fchmodat(unix.AT_FDCWD, atfd.ProcPath(fd), mode, 0)
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("%s: chmod: %w", rel, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		x.dirTimes = append(x.dirTimes, dirTime{rel, times(hdr)})
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, name, times(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: set times: %w", rel, err)
	}
	return nil
}

func times(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}
