package buildctx

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// xattr is one extended attribute of a file.
type xattr struct {
	name  string
	value []byte
}

// copiedXattr tells whether a copy carries the attribute: not the
// SELinux label (the destination's policy labels it) nor overlayfs's own.
func copiedXattr(name string) bool {
	return name != "security.selinux" && !strings.HasPrefix(name, "trusted.overlay.")
}

// readXattrs lists the copied extended attributes of the open file fd,
// sorted by name (file capabilities travel this way).
func readXattrs(fd int) ([]xattr, error) {
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
	var out []xattr
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
		out = append(out, xattr{string(name), v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
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

// writeXattrs sets attrs on the open file fd; a destination that cannot
// hold one is warned about, not an error.
func writeXattrs(fd int, what string, attrs []xattr) error {
	for _, x := range attrs {
		err := unix.Fsetxattr(fd, x.name, x.value, 0)
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			logrus.Warnf("%s: extended attribute %s not copied: the destination does not support it", what, x.name)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: set extended attribute %s: %w", what, x.name, err)
		}
	}
	return nil
}
