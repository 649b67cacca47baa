// Package atfd holds the small descriptor primitives that every walk over
// a tree by *at calls needs: list a directory, read a link, name a
// descriptor through /proc. It imports nothing but x/sys, so the container
// init can link it too.
package atfd

import (
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadNames lists a directory fd's entries, sorted, through a duplicate so
// the fd's own offset stays put for later users.
func ReadNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// Readlink reads the symlink name in dirfd ("" for dirfd itself, an
// O_PATH handle of the link), whatever its length.
func Readlink(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// ProcPath names fd through /proc, for the calls that have no *at form.
func ProcPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
