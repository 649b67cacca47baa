package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// Compression of a stream, detected from its first bytes.
type Compression int

// Known compressions.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// detectCompression peeks at the start of br.
func detectCompression(br *bufio.Reader) Compression {
	b, _ := br.Peek(4)
	switch {
	case len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b:
		return Gzip
	case len(b) >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd:
		return Zstd
	}
	return Uncompressed
}

// Decompress returns a reader of r's uncompressed content, whatever of
// none, gzip or zstd r is compressed with.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	c := detectCompression(br)
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	}
	return io.NopCloser(br), c, nil
}

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// NoWhiteoutConversion keeps .wh. files as they are.
	NoWhiteoutConversion bool
}

// unpacker writes one layer tar into root. Entries may not leave root:
// names with ".." are refused, and no entry may be written through a
// symlink (a link in the layer pointing out of it, or in, is never
// followed while unpacking).
//
// Every step works on descriptors: a directory is reached by openat2
// from the root's descriptor with RESOLVE_NO_SYMLINKS, so a component
// that an earlier entry turned into a symlink is an error, and the entry
// itself is made and changed relative to its parent's descriptor (one
// path component, never followed) or through its own descriptor.
type unpacker struct {
	rootFd int
	opts   UnpackOptions
	// dirs caches descriptors of directories already reached, by path
	// relative to root. It is emptied when it grows large, so a huge layer
	// does not hold a descriptor per directory.
	dirs   map[string]int
	mtimes []dirTime
	size   int64
}

// maxCachedDirs bounds the descriptors the unpacker holds at once.
const maxCachedDirs = 128

type dirTime struct {
	rel     string
	hdr     *tar.Header
	dropped bool // the directory was removed by a later entry
}

// Unpack extracts the (uncompressed) layer tar r into root, converting
// whiteouts to overlayfs form. It returns the total size of the content.
func Unpack(root string, r io.Reader, opts UnpackOptions) (int64, error) {
	rootFd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("unpack: open %s: %w", root, err)
	}
	u := &unpacker{rootFd: rootFd, opts: opts, dirs: map[string]int{}}
	defer u.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read layer tar: %w", err)
		}
		if len(u.dirs) > maxCachedDirs {
			u.dropCache("")
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, err
		}
	}
	// Directory times last: creating children changes them. Each directory
	// is reached again from the root without following any symlink.
	for i := len(u.mtimes) - 1; i >= 0; i-- {
		d := u.mtimes[i]
		if d.dropped {
			continue
		}
		if err := u.setDirTimes(d.rel, d.hdr); err != nil {
			return 0, err
		}
	}
	return u.size, nil
}

func (u *unpacker) close() {
	u.dropCache("")
	unix.Close(u.rootFd)
}

// dropCache closes the cached descriptors of rel and everything under it
// (all of them for "").
func (u *unpacker) dropCache(rel string) {
	for k, fd := range u.dirs {
		if rel == "" || k == rel || strings.HasPrefix(k, rel+"/") {
			unix.Close(fd)
			delete(u.dirs, k)
		}
	}
}

// cleanName validates a tar entry name and returns it relative to root
// ("." for the root itself).
func cleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("invalid tar entry %q: path leaves the layer", name)
		}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("invalid tar entry %q: NUL in name", name)
	}
	rel := strings.TrimPrefix(path.Clean("/"+name), "/")
	if rel == "" {
		rel = "."
	}
	return rel, nil
}

// openBeneath opens the directory rel under the root, refusing any
// symlink on the way (and rel itself being one).
func (u *unpacker) openBeneath(rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(u.rootFd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// ensureDir returns a descriptor of rel, which must be a real directory
// inside root, creating missing components when create is set; a
// symlink or a file on the way is an error. The descriptor belongs to
// the cache: callers do not close it.
func (u *unpacker) ensureDir(rel string, create bool) (int, error) {
	if rel == "." {
		return u.rootFd, nil
	}
	if fd, ok := u.dirs[rel]; ok {
		return fd, nil
	}
	fd, err := u.openBeneath(rel)
	if errors.Is(err, unix.ENOENT) && create {
		if fd, err = u.mkdirs(rel); err != nil {
			return -1, err
		}
	} else if err != nil {
		return -1, u.resolveError(rel, err)
	}
	u.dirs[rel] = fd
	return fd, nil
}

// mkdirs makes the missing directories of rel, from its nearest existing
// ancestor down, holding one descriptor at a time (a deep path does not
// take one per level).
func (u *unpacker) mkdirs(rel string) (int, error) {
	anc, afd, owned := path.Dir(rel), u.rootFd, false
	for anc != "." {
		if fd, ok := u.dirs[anc]; ok {
			afd = fd
			break
		}
		fd, err := u.openBeneath(anc)
		if err == nil {
			afd, owned = fd, true
			break
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, u.resolveError(anc, err)
		}
		anc = path.Dir(anc)
	}
	rest := rel
	if anc != "." {
		rest = strings.TrimPrefix(rel, anc+"/")
	}
	for _, c := range strings.Split(rest, "/") {
		if err := unix.Mkdirat(afd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			if owned {
				unix.Close(afd)
			}
			return -1, fmt.Errorf("unpack: mkdir %s: %w", rel, err)
		}
		fd, err := openDirAt(afd, c)
		if owned {
			unix.Close(afd)
		}
		if err != nil {
			return -1, fmt.Errorf("invalid tar entry under %q: %w", rel, err)
		}
		afd, owned = fd, true
	}
	return afd, nil
}

// resolveError explains why rel could not be opened as a directory.
func (u *unpacker) resolveError(rel string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV):
		return fmt.Errorf("invalid tar entry under %q: path goes through a symlink", rel)
	case errors.Is(err, unix.ENOTDIR):
		// The last component may be a symlink (O_NOFOLLOW with
		// O_DIRECTORY says ENOTDIR): say which.
		if pfd, perr := u.ensureDir(path.Dir(rel), false); perr != nil {
			return perr
		} else if isSymlinkAt(pfd, path.Base(rel)) {
			return fmt.Errorf("invalid tar entry under %q: path goes through a symlink", rel)
		}
		return fmt.Errorf("invalid tar entry under %q: parent is not a directory", rel)
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("invalid tar entry under %q: no such directory", rel)
	}
	return fmt.Errorf("unpack: %s: %w", rel, err)
}

func isSymlinkAt(dfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// openDirAt opens the directory name (one component) of dfd, refusing a
// symlink.
func openDirAt(dfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			return -1, fmt.Errorf("%s is a symlink", name)
		}
		return fd, err
	}
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	dir, base := path.Dir(rel), path.Base(rel)
	if !u.opts.NoWhiteoutConversion && strings.Contains("/"+dir+"/", "/"+whiteoutMeta) {
		return nil // inside an aufs/overlay metadata dir (.wh..wh.plnk/...)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("invalid tar entry %q: the layer root must be a directory", hdr.Name)
		}
		if err := u.fdMeta(u.rootFd, rel, hdr); err != nil {
			return err
		}
		u.mtimes = append(u.mtimes, dirTime{rel: rel, hdr: hdr})
		return nil
	}
	dfd, err := u.ensureDir(dir, true)
	if err != nil {
		return err
	}

	if !u.opts.NoWhiteoutConversion && strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == whiteoutOpaque:
			if err := unix.Fsetxattr(dfd, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("unpack: opaque dir %s: %w", dir, err)
			}
		case strings.HasPrefix(base, whiteoutMeta):
			// overlay-internal files of other tools (.wh..wh.plnk, .wh..wh.aufs): dropped.
		default:
			name := base[len(whiteoutPrefix):]
			if name == "" || name == "." || name == ".." {
				return fmt.Errorf("invalid whiteout %q", hdr.Name)
			}
			if err := u.removeExisting(dfd, path.Join(dir, name), name); err != nil {
				return err
			}
			if err := unix.Mknodat(dfd, name, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("unpack: whiteout %s: %w", hdr.Name, err)
			}
		}
		return nil
	}

	// Replace whatever is there, except a directory by a directory.
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		if !(hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
			if err := u.removeExisting(dfd, rel, base); err != nil {
				return err
			}
		}
	}

	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("unpack: mkdir %s: %w", rel, err)
		}
		fd, err := openDirAt(dfd, base)
		if err != nil {
			return fmt.Errorf("unpack: %s: %w", rel, err)
		}
		if old, ok := u.dirs[rel]; ok {
			unix.Close(old)
		}
		u.dirs[rel] = fd
		if err := u.fdMeta(fd, rel, hdr); err != nil {
			return err
		}
		u.mtimes = append(u.mtimes, dirTime{rel: rel, hdr: hdr})
		return nil
	//lint:ignore SA1019 old layers still carry the pre-POSIX regular-file type
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := u.writeFile(dfd, rel, base, hdr, r); err != nil {
			return err
		}
		u.size += hdr.Size
		return nil
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return fmt.Errorf("unpack: symlink %s: %w", rel, err)
		}
	case tar.TypeLink:
		lrel, err := cleanName(hdr.Linkname)
		if err != nil || lrel == "." {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q leaves the layer", hdr.Name, hdr.Linkname)
		}
		ldfd, err := u.ensureDir(path.Dir(lrel), false)
		if err != nil {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q: %w", hdr.Name, hdr.Linkname, err)
		}
		lbase := path.Base(lrel)
		var lst unix.Stat_t
		if err := unix.Fstatat(ldfd, lbase, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q: %w", hdr.Name, hdr.Linkname, err)
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("invalid tar entry %q: hardlink to a directory", hdr.Name)
		}
		// Without AT_SYMLINK_FOLLOW a symlink target is linked itself.
		if err := unix.Linkat(ldfd, lbase, dfd, base, 0); err != nil {
			return fmt.Errorf("unpack: hardlink %s: %w", rel, err)
		}
		return nil // a hardlink shares its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		m := mode
		switch hdr.Typeflag {
		case tar.TypeChar:
			m |= unix.S_IFCHR
		case tar.TypeBlock:
			m |= unix.S_IFBLK
		default:
			m |= unix.S_IFIFO
		}
		if err := unix.Mknodat(dfd, base, m, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("unpack: mknod %s: %w", rel, err)
		}
	default:
		logrus.Warnf("unpack: skipping %s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		return nil
	}
	return u.atMeta(dfd, rel, base, hdr)
}

// layerXattrs are the xattrs of hdr that may be applied. trusted.* ones
// are dropped: overlayfs acts on trusted.overlay.* (a redirect shows
// another directory's content, an opaque marker hides the lower ones),
// and only berth itself may set those, from whiteouts.
func layerXattrs(rel string, hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "trusted.") {
			logrus.Debugf("unpack: %s: not applying xattr %s from the layer", rel, name)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

// xattrError tells which failures to set an xattr are skipped (the
// filesystem or the caller cannot have it) and which are errors.
func xattrError(rel, name string, err error) error {
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
		logrus.Debugf("unpack: xattr %s on %s: %v", name, rel, err)
		return nil
	}
	return fmt.Errorf("unpack: xattr %s on %s: %w", name, rel, err)
}

// fdMeta applies ownership, xattrs, mode and (but for directories, whose
// times come last) times through the entry's own descriptor.
func (u *unpacker) fdMeta(fd int, rel string, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("unpack: chown %s: %w", rel, err)
	}
	for name, v := range layerXattrs(rel, hdr) {
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			if err := xattrError(rel, name, err); err != nil {
				return err
			}
		}
	}
	// After chown, which clears set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("unpack: chmod %s: %w", rel, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	if err := futimens(fd, hdrTimes(hdr)); err != nil {
		return fmt.Errorf("unpack: times of %s: %w", hdr.Name, err)
	}
	return nil
}

// atMeta applies metadata to an entry that cannot be opened for it (a
// symlink, a device, a fifo): by its one-component name relative to its
// parent's descriptor, never following it.
func (u *unpacker) atMeta(dfd int, rel, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("unpack: chown %s: %w", rel, err)
	}
	if xs := layerXattrs(rel, hdr); len(xs) > 0 {
		// The parent's descriptor stands for the path to it; l*xattr does
		// not follow the last component.
		p := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
		for name, v := range xs {
			if err := unix.Lsetxattr(p, name, []byte(v), 0); err != nil {
				if err := xattrError(rel, name, err); err != nil {
					return err
				}
			}
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// Not a symlink, so following the one component is harmless.
		if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("unpack: chmod %s: %w", rel, err)
		}
	}
	ts := hdrTimes(hdr)
	if err := unix.UtimesNanoAt(dfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("unpack: times of %s: %w", hdr.Name, err)
	}
	return nil
}

// setDirTimes sets the times of the directory rel, reached from the root
// without following symlinks.
func (u *unpacker) setDirTimes(rel string, hdr *tar.Header) error {
	fd := u.rootFd
	if rel != "." {
		var err error
		if fd, err = u.openBeneath(rel); err != nil {
			return fmt.Errorf("unpack: times of %s: %w", hdr.Name, err)
		}
		defer unix.Close(fd)
	}
	if err := futimens(fd, hdrTimes(hdr)); err != nil {
		return fmt.Errorf("unpack: times of %s: %w", hdr.Name, err)
	}
	return nil
}

// removeExisting removes name (one component) of the directory dfd,
// which is rel in the layer, recursively and without following links.
func (u *unpacker) removeExisting(dfd int, rel, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		u.dropCache(rel)
		for i := range u.mtimes {
			if r := u.mtimes[i].rel; r == rel || strings.HasPrefix(r, rel+"/") {
				u.mtimes[i].dropped = true
			}
		}
	}
	if err := removeAllAt(dfd, name); err != nil {
		return fmt.Errorf("unpack: replace %s: %w", rel, err)
	}
	return nil
}

// removeAllAt removes name of dfd and, for a directory, what is in it,
// each step relative to a descriptor of its parent.
func removeAllAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, err := openDirAt(dfd, name)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

// writeFile creates the regular file base of dfd (never through an
// existing name) and writes r into it.
func (u *unpacker) writeFile(dfd int, rel, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(dfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("unpack: %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	bp := copyBufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(f, r, *bp)
	copyBufPool.Put(bp)
	if err != nil {
		return fmt.Errorf("unpack: %s: %w", rel, err)
	}
	if err := u.fdMeta(fd, rel, hdr); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("unpack: %s: %w", rel, err)
	}
	return nil
}

// hdrTimes are the access and modification times of hdr (the access time
// defaults to the modification time).
func hdrTimes(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}

// futimens sets the times of the file fd is open on (utimensat with a
// NULL path, which x/sys/unix does not offer).
func futimens(fd int, ts [2]unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
