package safetree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Xattr is one extended attribute of a file.
type Xattr struct {
	Name  string
	Value []byte
}

// FileAttrs is what CreateFile gives a file once its content is written.
type FileAttrs struct {
	UID, GID int
	Mode     uint32 // permission bits, with set-id and sticky bits
	Xattrs   []Xattr
	Times    []unix.Timespec // atime and mtime; nil leaves the write's
	// PlainParent: the caller knows pfd has no set-group-ID bit, so a
	// new file takes the process's group (a file for root:root then
	// needs no chown).
	PlainParent bool
}

var umaskOnce = sync.OnceValues(readUmask)

// readUmask is the process's umask, read (not set: setting it, even to
// put it back, would race with other threads creating files).
func readUmask() (uint32, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(u), err == nil
		}
	}
	return 0, false
}

// createMode is the mode to create a file with, and whether a chmod must
// follow: a plain mode that the umask leaves whole is given at creation;
// set-id and sticky bits only after the chown (which clears them).
func createMode(mode uint32) (uint32, bool) {
	if mode&^0o777 == 0 {
		if u, ok := umaskOnce(); ok && mode&u == 0 {
			return mode, false
		}
	}
	return 0o600, true
}

// CreateFile makes the regular file pfd/name, which must not exist yet
// (O_EXCL and O_NOFOLLOW: whatever stands there, a symlink to the host
// or a device node, is neither followed nor opened), lets fill write its
// content into the open descriptor, and gives it a: owner first, as
// chown clears set-id bits and file capabilities, then mode, extended
// attributes and times. what names the file in errors. On an error the
// file is left for the caller's cleanup of the tree.
func CreateFile(pfd int, name, what string, fill func(fd int) error, a FileAttrs) error {
	mode, chmod := createMode(a.Mode)
	fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	if err := fill(fd); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if !a.PlainParent || a.UID != os.Geteuid() || a.GID != os.Getegid() {
		if err := unix.Fchown(fd, a.UID, a.GID); err != nil {
			return fmt.Errorf("chown %s: %w", what, err)
		}
	}
	if chmod {
		if err := unix.Fchmod(fd, a.Mode); err != nil {
			return fmt.Errorf("chmod %s: %w", what, err)
		}
	}
	if err := WriteXattrs(fd, what, a.Xattrs); err != nil {
		return err
	}
	if a.Times != nil {
		if err := unix.UtimesNanoAt(fd, "", a.Times, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("set times of %s: %w", what, err)
		}
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	return nil
}

// copyBufSize is the buffer of CopyFd: a whole small file in one read.
const copyBufSize = 128 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// rangeFails remembers the (source device, destination device) pairs on
// which copy_file_range failed (overlayfs, different filesystems), so it
// is tried once per pair, not once per file.
var rangeFails sync.Map

// CopyFd copies the regular file open at src (size bytes when it was
// stat'ed, of device srcDev) into the new file dst (on dstDev), by raw
// reads and writes; large files go by copy_file_range where the two
// filesystems allow it. A file that grew meanwhile is copied whole.
func CopyFd(dst, src int, size int64, srcDev, dstDev uint64) error {
	if size >= copyBufSize {
		key := [2]uint64{srcDev, dstDev}
		if _, failed := rangeFails.Load(key); !failed {
			done, err := copyRange(dst, src)
			if done || err != nil {
				return err
			}
			rangeFails.Store(key, true)
		}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := unix.Read(src, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := writeAll(dst, buf[:n]); err != nil {
			return err
		}
		total += int64(n)
		// A short read of a regular file is its end: the read that
		// would return 0 is saved.
		if n < len(buf) && total >= size {
			return nil
		}
	}
}

// copyRange copies src to dst in the kernel; done false (and nothing
// written) when the filesystems do not support it.
func copyRange(dst, src int) (done bool, err error) {
	var total int64
	for {
		n, err := unix.CopyFileRange(src, nil, dst, nil, 1<<30, 0)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil && total == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
			errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF)):
			return false, nil
		case err != nil:
			return true, err
		case n == 0:
			return true, nil
		}
		total += int64(n)
	}
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// FdWriter writes to a raw descriptor (no os.File, whose poller
// registration costs two failing calls per regular file).
type FdWriter int

func (w FdWriter) Write(b []byte) (int, error) {
	if err := writeAll(int(w), b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CopyReader fills fd from r (an archive entry's content).
func CopyReader(fd int, r io.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	_, err := io.CopyBuffer(FdWriter(fd), onlyReader{r}, *bp)
	return err
}

// onlyReader hides a reader's WriterTo, so CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

// copiedXattr tells whether a copy carries the attribute: not the
// SELinux label (the destination's policy labels it) nor overlayfs's own.
func copiedXattr(name string) bool {
	return name != "security.selinux" && !strings.HasPrefix(name, "trusted.overlay.")
}

// ReadXattrs lists the copied extended attributes of the open file fd,
// sorted by name (file capabilities travel this way).
func ReadXattrs(fd int) ([]Xattr, error) {
	size, err := unix.Flistxattr(fd, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list extended attributes: %w", err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	if size, err = unix.Flistxattr(fd, buf); err != nil {
		return nil, fmt.Errorf("list extended attributes: %w", err)
	}
	var out []Xattr
	for _, name := range bytes.Split(buf[:size], []byte{0}) {
		if len(name) == 0 || !copiedXattr(string(name)) {
			continue
		}
		v, err := getXattr(fd, string(name))
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read extended attribute %s: %w", name, err)
		}
		out = append(out, Xattr{string(name), v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func getXattr(fd int, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// WriteXattrs sets attrs on the open file fd; a destination that cannot
// hold one is warned about, not an error.
func WriteXattrs(fd int, what string, attrs []Xattr) error {
	for _, x := range attrs {
		err := unix.Fsetxattr(fd, x.Name, x.Value, 0)
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			logrus.Warnf("%s: extended attribute %s not copied: the destination does not support it", what, x.Name)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: set extended attribute %s: %w", what, x.Name, err)
		}
	}
	return nil
}
