package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

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
type unpacker struct {
	root   string
	opts   UnpackOptions
	dirs   map[string]bool // relative paths known to be real directories
	mtimes []dirTime
	size   int64
}

type dirTime struct {
	path string
	hdr  *tar.Header
}

// Unpack extracts the (uncompressed) layer tar r into root, converting
// whiteouts to overlayfs form. It returns the total size of the content.
func Unpack(root string, r io.Reader, opts UnpackOptions) (int64, error) {
	u := &unpacker{root: root, opts: opts, dirs: map[string]bool{".": true}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read layer tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return 0, err
		}
	}
	// Directory times last: creating children changes them.
	for i := len(u.mtimes) - 1; i >= 0; i-- {
		d := u.mtimes[i]
		if err := setTimes(d.path, d.hdr); err != nil {
			return 0, err
		}
	}
	return u.size, nil
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

// ensureDir makes sure rel is a real directory inside root, creating
// missing components; a symlink or a file on the way is an error.
func (u *unpacker) ensureDir(rel string, create bool) error {
	if u.dirs[rel] {
		return nil
	}
	if err := u.ensureDir(path.Dir(rel), create); err != nil {
		return err
	}
	p := filepath.Join(u.root, rel)
	var st unix.Stat_t
	err := unix.Lstat(p, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("invalid tar entry under %q: path goes through a symlink", rel)
	case err == nil:
		return fmt.Errorf("invalid tar entry under %q: parent is not a directory", rel)
	case errors.Is(err, unix.ENOENT) && create:
		if err := unix.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("unpack: mkdir %s: %w", rel, err)
		}
	default:
		return fmt.Errorf("unpack: %s: %w", rel, err)
	}
	u.dirs[rel] = true
	return nil
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
	if rel != "." {
		if err := u.ensureDir(dir, true); err != nil {
			return err
		}
	}
	target := filepath.Join(u.root, rel)

	if !u.opts.NoWhiteoutConversion && strings.HasPrefix(base, whiteoutPrefix) {
		parent := filepath.Join(u.root, dir)
		switch {
		case base == whiteoutOpaque:
			if err := unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				return fmt.Errorf("unpack: opaque dir %s: %w", dir, err)
			}
		case strings.HasPrefix(base, whiteoutMeta):
			// overlay-internal files of other tools (.wh..wh.plnk, .wh..wh.aufs): dropped.
		default:
			name := base[len(whiteoutPrefix):]
			if name == "" || name == "." || name == ".." {
				return fmt.Errorf("invalid whiteout %q", hdr.Name)
			}
			wpath := filepath.Join(parent, name)
			if err := u.removeExisting(path.Join(dir, name), wpath); err != nil {
				return err
			}
			if err := unix.Mknod(wpath, unix.S_IFCHR, 0); err != nil {
				return fmt.Errorf("unpack: whiteout %s: %w", hdr.Name, err)
			}
		}
		return nil
	}

	// Replace whatever is there, except a directory by a directory.
	var st unix.Stat_t
	if err := unix.Lstat(target, &st); err == nil {
		if !(hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
			if rel == "." {
				return fmt.Errorf("invalid tar entry %q: the layer root must be a directory", hdr.Name)
			}
			if err := u.removeExisting(rel, target); err != nil {
				return err
			}
		}
	}

	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if rel != "." {
			if err := unix.Mkdir(target, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("unpack: mkdir %s: %w", rel, err)
			}
		}
		u.dirs[rel] = true
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := u.writeFile(target, r); err != nil {
			return fmt.Errorf("unpack: %s: %w", rel, err)
		}
		u.size += hdr.Size
	case tar.TypeSymlink:
		if err := unix.Symlink(hdr.Linkname, target); err != nil {
			return fmt.Errorf("unpack: symlink %s: %w", rel, err)
		}
	case tar.TypeLink:
		lrel, err := cleanName(hdr.Linkname)
		if err != nil || lrel == "." {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q leaves the layer", hdr.Name, hdr.Linkname)
		}
		if err := u.ensureDir(path.Dir(lrel), false); err != nil {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q: %w", hdr.Name, hdr.Linkname, err)
		}
		src := filepath.Join(u.root, lrel)
		var lst unix.Stat_t
		if err := unix.Lstat(src, &lst); err != nil {
			return fmt.Errorf("invalid tar entry %q: hardlink target %q: %w", hdr.Name, hdr.Linkname, err)
		}
		if lst.Mode&unix.S_IFMT == unix.S_IFDIR {
			return fmt.Errorf("invalid tar entry %q: hardlink to a directory", hdr.Name)
		}
		if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, target, 0); err != nil {
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
		if err := unix.Mknod(target, m, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("unpack: mknod %s: %w", rel, err)
		}
	default:
		logrus.Warnf("unpack: skipping %s: unsupported tar entry type %q", hdr.Name, hdr.Typeflag)
		return nil
	}

	if err := unix.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("unpack: chown %s: %w", rel, err)
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if err := unix.Lsetxattr(target, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				logrus.Debugf("unpack: xattr %s on %s: %v", name, rel, err)
				continue
			}
			return fmt.Errorf("unpack: xattr %s on %s: %w", name, rel, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := unix.Fchmodat(unix.AT_FDCWD, target, mode, 0); err != nil {
			return fmt.Errorf("unpack: chmod %s: %w", rel, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		u.mtimes = append(u.mtimes, dirTime{target, hdr})
		return nil
	}
	return setTimes(target, hdr)
}

func (u *unpacker) removeExisting(rel, p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		for k := range u.dirs {
			if k == rel || strings.HasPrefix(k, rel+"/") {
				delete(u.dirs, k)
			}
		}
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("unpack: replace %s: %w", rel, err)
	}
	return nil
}

func (u *unpacker) writeFile(target string, r io.Reader) error {
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	bp := copyBufPool.Get().(*[]byte)
	_, err = io.CopyBuffer(f, r, *bp)
	copyBufPool.Put(bp)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func setTimes(p string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("unpack: times of %s: %w", hdr.Name, err)
	}
	return nil
}
