// Package atomicfile is berth's one way to replace a small file (a
// record, an index, a pid file) so that a reader sees the old content or
// the new, never a mix, and so that on a full file system the writes that
// free space (stop, rm, rmi) still go through.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Write writes data to path through a temp file and rename, so a reader
// never sees a half-written file. On a full file system it falls back to
// RewriteInPlace.
func Write(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, false)
}

// WriteSync is Write with the data flushed to disk before the rename, for
// files that must survive a crash of the machine whole, old or new (the
// image index), not only a crash of berth.
func WriteSync(path string, data []byte, mode os.FileMode) error {
	return write(path, data, mode, true)
}

func write(path string, data []byte, mode os.FileMode, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return RewriteInPlace(path, data, err)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		if errors.Is(err, unix.ENOSPC) {
			os.Remove(tmp.Name())
			return RewriteInPlace(path, data, err)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			if errors.Is(err, unix.ENOSPC) {
				os.Remove(tmp.Name())
				return RewriteInPlace(path, data, err)
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	return nil
}

// RewriteInPlace is the way out when a file system is full and a new
// copy of path cannot be written (nospace is that error): the data is
// written over the file's own blocks when it fits in them, so that
// stopping and removing, which free space, never need space first. A
// reader may see the file half-written for that moment; that beats a
// container nobody can stop. Records are padded (see PadRecord) so that a
// small change fits.
func RewriteInPlace(path string, data []byte, nospace error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, nospace)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("write %s: %w", path, nospace)
	}
	avail := max(st.Size, st.Blocks*512)
	if int64(len(data)) > avail {
		// Padding is no content: give it up before giving up.
		data = bytes.TrimRight(data, " \n")
		if int64(len(data)) > avail {
			return fmt.Errorf("write %s: %w", path, nospace)
		}
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	return nil
}

// PadRecord pads a JSON document with trailing blanks (which JSON allows)
// to a whole number of 4 KiB blocks, with room for at least slack more
// bytes: on a full disk a slightly grown record still fits in place (see
// RewriteInPlace). The blocks are allocated whole anyway.
func PadRecord(data []byte, slack int) []byte {
	const block = 4096
	n := (len(data) + 1 + slack + block - 1) / block * block
	out := make([]byte, n)
	copy(out, data)
	for i := len(data); i < n-1; i++ {
		out[i] = ' '
	}
	out[n-1] = '\n'
	return out
}
