package buildctx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// openInRoot resolves p inside the root filesystem at the handle root to
// an O_PATH handle, symlinks and ".." kept inside it, with extra open
// flags (O_DIRECTORY, O_NOFOLLOW).
func openInRoot(root *os.File, p string, flags int) (int, error) {
	how := &unix.OpenHow{
		Flags:   uint64(unix.O_PATH | unix.O_CLOEXEC | flags),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	p = strings.TrimLeft(path.Clean("/"+p), "/")
	if p == "" {
		p = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(int(root.Fd()), p, how)
		if (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && i < 32 {
			continue
		}
		return fd, err
	}
}

// mkdirAll resolves the directory p inside root, making what is missing
// (0755, owned by root), and returns an O_PATH descriptor of it; created
// tells whether p's last component was made. Each missing directory is
// made with mkdirat in the descriptor of its resolved parent, so no
// symlink leads it elsewhere; a dangling symlink on the way is followed
// inside the root, as Docker does, by making its target there.
func mkdirAll(root *os.File, p string) (fd int, created bool, err error) {
	orig := p
	for hops := 0; hops < 40; hops++ {
		var redirect string
		fd, created, redirect, err = mkdirWalk(root, path.Clean("/"+p))
		if err != nil || redirect == "" {
			if err != nil {
				err = fmt.Errorf("make directory %s: %w", orig, err)
			}
			return fd, created, err
		}
		p = redirect
	}
	return -1, false, fmt.Errorf("make directory %s: too many levels of symbolic links", orig)
}

// mkdirWalk is one pass of mkdirAll; redirect is the path to make
// instead when a dangling symlink stands on the way.
func mkdirWalk(root *os.File, p string) (fd int, created bool, redirect string, err error) {
	cur, err := openInRoot(root, "/", unix.O_DIRECTORY)
	if err != nil {
		return -1, false, "", fmt.Errorf("open the root: %w", err)
	}
	comps := splitRel(strings.TrimPrefix(p, "/"))
	done := "/"
	for i, comp := range comps {
		next := path.Join(done, comp)
		fd, err := openInRoot(root, next, unix.O_DIRECTORY)
		created = false
		if errors.Is(err, unix.ENOENT) {
			err = unix.Mkdirat(cur, comp, 0o755)
			if err == nil {
				created = true
				err = unix.Fchownat(cur, comp, 0, 0, unix.AT_SYMLINK_NOFOLLOW)
				if err == nil {
					// The umask may have narrowed the mode.
					fd, err = unix.Openat(cur, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
					if err == nil {
						err = unix.Fchmod(fd, 0o755)
						unix.Close(fd)
					}
				}
				if err == nil {
					fd, err = unix.Openat(cur, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				}
			} else if errors.Is(err, unix.EEXIST) {
				target, lerr := atfd.Readlink(cur, comp)
				unix.Close(cur)
				if lerr != nil {
					return -1, false, "", fmt.Errorf("%s: %w", next, err)
				}
				rest := strings.Join(comps[i+1:], "/")
				if path.IsAbs(target) {
					return -1, false, path.Join(target, rest), nil
				}
				return -1, false, path.Join(done, target, rest), nil
			}
		}
		unix.Close(cur)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				err = errors.New("not a directory")
			}
			return -1, false, "", fmt.Errorf("%s: %w", next, err)
		}
		cur, done = fd, next
	}
	return cur, created, "", nil
}

// Owner is a resolved --chown.
type Owner struct {
	UID, GID int
}

// ResolveChown resolves a --chown value ("user", "user:group", names or
// numbers) against /etc/passwd and /etc/group of the root filesystem at
// root, read inside it. Numbers are taken as they are; a user without a
// group gets the group of the same number, as Docker does.
func ResolveChown(root *os.File, spec string) (Owner, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" || (hasGroup && group == "") || strings.ContainsAny(spec, "\n\x00") {
		return Owner{}, fmt.Errorf("invalid --chown %q", spec)
	}
	uid, err := lookupID(root, "/etc/passwd", "user", user)
	if err != nil {
		return Owner{}, err
	}
	gid := uid
	if hasGroup {
		if gid, err = lookupID(root, "/etc/group", "group", group); err != nil {
			return Owner{}, err
		}
	}
	return Owner{UID: uid, GID: gid}, nil
}

// maxID is the largest uid or gid accepted (ids above 2^31-1 are refused
// by many tools, and -1 means "unchanged" to chown).
const maxID = 1<<31 - 1

// lookupID is a number as it is, or the id (third field) of the entry
// named name in the database file db of root.
func lookupID(root *os.File, db, kind, name string) (int, error) {
	if strings.TrimLeft(name, "0123456789") == "" {
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil || n > maxID {
			return 0, fmt.Errorf("invalid --chown: %s id %s out of range", kind, name)
		}
		return int(n), nil
	}
	notFound := fmt.Errorf("unable to find %s %s: no matching entries in %s file", kind, name, path.Base(db))
	f, err := openRegularInRoot(root, db)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return 0, notFound
	}
	if err != nil {
		return 0, fmt.Errorf("read %s of the image: %w", db, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil || n > maxID {
			return 0, fmt.Errorf("%s of the image: invalid id for %s %s", db, kind, name)
		}
		return int(n), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s of the image: %w", db, err)
	}
	return 0, notFound
}

// openRegularInRoot opens for reading the regular file p of root,
// resolved inside it; nothing else (a fifo would block, a device is
// never opened).
func openRegularInRoot(root *os.File, p string) (*os.File, error) {
	pfd, err := openInRoot(root, p, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	fd, err := unix.Open(atfd.ProcPath(pfd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// ParseChmod parses a --chmod value: octal permission bits (with set-id
// and sticky bits), at most 07777.
func ParseChmod(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("invalid --chmod %q: want octal permission bits such as 755", s)
	}
	return uint32(n), nil
}
