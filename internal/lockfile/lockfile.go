// Package lockfile is berth's one way to take an flock: on a file it opens
// (created when missing) or on a directory, retrying when a signal
// interrupts the wait. A lock is released by closing its file, which also
// happens when the holder dies, so a crashed berth never leaves a lock
// held.
package lockfile

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Flock takes how (unix.LOCK_SH or LOCK_EX, maybe with LOCK_NB) on f.
func Flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// Open opens path, creating it (mode 0600) when missing, and locks it
// with how. Close the file to release the lock.
func Open(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return lock(f, path, how)
}

// OpenDir opens the directory dir, which must exist, and locks it with
// how. Close the file to release the lock.
func OpenDir(dir string, how int) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return lock(f, dir, how)
}

func lock(f *os.File, path string, how int) (*os.File, error) {
	if err := Flock(f, how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
