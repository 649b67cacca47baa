package volume

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyUp copies the tree at src into the directory dst: modes, owners,
// times, symlinks (as links, never followed), hard links within the tree,
// device nodes, fifos and extended attributes. dst itself takes src's mode
// and owner, as Docker's copy of image content into a new volume does.
func CopyUp(src, dst string) error {
	links := map[uint64]string{}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, src)
		target := dst + rel
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("copy %s: %w", p, err)
		}
		mode := st.Mode & unix.S_IFMT
		if mode != unix.S_IFDIR && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				if err := os.Link(first, target); err != nil {
					return fmt.Errorf("copy %s: %w", p, err)
				}
				return nil
			}
			links[st.Ino] = target
		}
		switch mode {
		case unix.S_IFDIR:
			if rel != "" {
				if err := os.Mkdir(target, 0o700); err != nil && !os.IsExist(err) {
					return fmt.Errorf("copy %s: %w", p, err)
				}
			}
		case unix.S_IFREG:
			if err := copyFile(p, target); err != nil {
				return err
			}
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
			if err := os.Symlink(l, target); err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
		}
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("copy %s: %w", p, err)
		}
		copyXattrs(p, target)
		if mode != unix.S_IFLNK {
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
		}
		ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// copyXattrs copies what extended attributes it can; a filesystem without
// them is not an error.
func copyXattrs(src, dst string) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(src, buf)
	if err != nil || n <= 0 {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		val := make([]byte, 64*1024)
		m, err := unix.Lgetxattr(src, name, val)
		if err == nil {
			_ = unix.Lsetxattr(dst, name, val[:m], 0)
		}
	}
}
