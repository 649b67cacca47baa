package containerinit

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// copyDirContents copies what the directory src holds into dst (both
// handles, O_PATH is enough), keeping modes, owners and times: the
// tmpcopyup of a tmpfs mounted over src. It works on descriptors only and
// never follows a symlink, so nothing in the image can redirect it.
func copyDirContents(src, dst *os.File) error {
	s, err := reopenDir(int(src.Fd()), ".")
	if err != nil {
		return err
	}
	defer unix.Close(s)
	d, err := reopenDir(int(dst.Fd()), ".")
	if err != nil {
		return err
	}
	defer unix.Close(d)
	return copyTree(s, d)
}

func reopenDir(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory %s: %w", name, err)
	}
	return fd, nil
}

// copyTree copies the entries of directory src into directory dst.
func copyTree(src, dst int) error {
	dup, err := unix.Dup(src)
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	dir := os.NewFile(uintptr(dup), "copyup")
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return fmt.Errorf("read directory: %w", err)
	}
	for _, name := range names {
		if err := copyEntry(src, dst, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func copyEntry(src, dst int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	perm := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		s, err := reopenDir(src, name)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		d, err := reopenDir(dst, name)
		if err != nil {
			return err
		}
		defer unix.Close(d)
		if err := copyTree(s, d); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyFile(src, dst, name); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := atfd.Readlink(src, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dst, name); err != nil {
			return err
		}
	default:
		// Devices, fifos and sockets: the node itself, never its content.
		if err := unix.Mknodat(dst, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// After chown, which clears set-id bits; explicit, so the umask
		// plays no part.
		if err := unix.Fchmodat(dst, name, perm, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(dst, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func copyFile(src, dst int, name string) error {
	in, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	inf := os.NewFile(uintptr(in), name)
	defer inf.Close()
	out, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	outf := os.NewFile(uintptr(out), name)
	if _, err := io.Copy(outf, inf); err != nil {
		outf.Close()
		return fmt.Errorf("copy: %w", err)
	}
	return outf.Close()
}
