// Package passwd resolves Docker's user specs ("name", "uid",
// "name:group", "uid:gid") against a container's own /etc/passwd and
// /etc/group, read inside the container's root without following a
// symlink out of it.
package passwd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// MaxID is the largest uid or gid berth accepts anywhere: ids above 2^31-1 are
// refused by many tools and kernels treat -1 specially.
const MaxID = 1<<31 - 1

// maxFile bounds what is read of /etc/passwd or /etc/group.
const maxFile = 16 << 20

// openInRoot opens rootfs/p for reading, resolving p inside rootfs (a
// symlink to /etc/shadow of the host stays in the root). Only regular
// files are opened: a FIFO would block and a device never ends.
// A missing file returns an error satisfying errors.Is(err, os.ErrNotExist).
func openInRoot(rootfs, p string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(rootfs, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}

// readDB reads a colon-separated database (/etc/passwd, /etc/group) of
// the container; a missing file is empty.
func readDB(rootfs, p string) ([][]string, error) {
	f, err := openInRoot(rootfs, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the container's %s: %w", p, err)
	}
	defer f.Close()
	out, err := parseDB(f)
	if err != nil {
		return nil, fmt.Errorf("read the container's %s: %w", p, err)
	}
	return out, nil
}

// parseDB splits a colon-separated database into entries, skipping blank
// lines and comments.
func parseDB(r io.Reader) ([][]string, error) {
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(r, maxFile))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}

// HomeOf is the home directory of uid in the passwd database data, "/"
// when it has no entry (or no home) for uid: the HOME Lookup gives a
// numeric user, for the runtime that has only the uid.
func HomeOf(data []byte, uid uint32) string {
	users, _ := parseDB(bytes.NewReader(data)) // a line too long ends the search: HOME=/
	for _, u := range users {
		if len(u) < 7 {
			continue
		}
		if id, ok, err := parseID(u[2]); ok && err == nil && id == uid && u[5] != "" {
			return u[5]
		}
	}
	return "/"
}

// HasHome tells whether env sets HOME.
func HasHome(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return true
		}
	}
	return false
}

// WithHome is env with HOME=home added when env does not set HOME, as
// Docker and runc do; env itself is never changed.
func WithHome(env []string, home string) []string {
	if HasHome(env) {
		return env
	}
	return append(append([]string(nil), env...), "HOME="+home)
}

// parseID parses a numeric uid or gid.
func parseID(s string) (uint32, bool, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxID {
		return 0, true, fmt.Errorf("id %s is out of range (0-%d)", s, MaxID)
	}
	return uint32(n), true, nil
}

// passwd fields: name:password:uid:gid:gecos:home:shell
// group fields:  name:password:gid:member,member...

// Lookup resolves a Docker user spec ("", "name", "uid", "name:group",
// "uid:gid") against rootfs/etc/passwd and rootfs/etc/group, as runc does
// for Docker:
//
//   - "" is uid 0; a name must have a passwd entry, a numeric uid need
//     not (its gid is then 0 and home "/");
//   - the primary gid is the passwd entry's unless a group is given (by
//     name, which must be in /etc/group, or by number);
//   - groups are the groups of /etc/group that list the user as a member
//     (only when no group was given explicitly, as runc), then
//     extraGroups (names or numbers, --group-add), without duplicates;
//   - home is the passwd entry's home directory, "/" when unknown.
func Lookup(rootfs, user string, extraGroups []string) (uid, gid uint32, groups []uint32, home string, err error) {
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	if hasGroup && groupPart == "" {
		return 0, 0, nil, "", fmt.Errorf("invalid user %q: empty group", user)
	}
	if strings.ContainsAny(user, "\n\x00") {
		return 0, 0, nil, "", fmt.Errorf("invalid user %q", user)
	}
	if userPart == "" {
		if hasGroup {
			return 0, 0, nil, "", fmt.Errorf("invalid user %q: empty user name", user)
		}
		userPart = "0"
	}
	n, numeric, err := parseID(userPart)
	if err != nil {
		return 0, 0, nil, "", fmt.Errorf("invalid user %q: %w", user, err)
	}
	users, err := readDB(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, "", err
	}
	home = "/"
	name := ""
	found := false
	for _, u := range users {
		if len(u) < 7 {
			continue
		}
		id, ok, err := parseID(u[2])
		if !ok || err != nil {
			continue
		}
		if u[0] == userPart || numeric && id == n {
			g, ok, err := parseID(u[3])
			if !ok || err != nil {
				continue
			}
			uid, gid, name, found = id, g, u[0], true
			if u[5] != "" {
				home = u[5]
			}
			break
		}
	}
	if !found {
		if !numeric {
			return 0, 0, nil, "", fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		uid, gid = n, 0
	}

	grps, err := readDB(rootfs, "/etc/group")
	if err != nil {
		return 0, 0, nil, "", err
	}
	findGroup := func(g string) (uint32, error) {
		id, numeric, err := parseID(g)
		if err != nil {
			return 0, fmt.Errorf("invalid group %q: %w", g, err)
		}
		if numeric {
			return id, nil
		}
		for _, e := range grps {
			if len(e) >= 3 && e[0] == g {
				if id, ok, err := parseID(e[2]); ok && err == nil {
					return id, nil
				}
			}
		}
		return 0, fmt.Errorf("unable to find group %s: no matching entries in group file", g)
	}
	if hasGroup {
		if gid, err = findGroup(groupPart); err != nil {
			return 0, 0, nil, "", err
		}
	}
	seen := map[uint32]bool{}
	add := func(id uint32) {
		if !seen[id] {
			seen[id] = true
			groups = append(groups, id)
		}
	}
	if name != "" && !hasGroup {
		for _, e := range grps {
			if len(e) < 4 {
				continue
			}
			id, ok, err := parseID(e[2])
			if !ok || err != nil {
				continue
			}
			for _, m := range strings.Split(e[3], ",") {
				if strings.TrimSpace(m) == name {
					add(id)
					break
				}
			}
		}
	}
	for _, g := range extraGroups {
		id, err := findGroup(g)
		if err != nil {
			return 0, 0, nil, "", err
		}
		add(id)
	}
	return uid, gid, groups, home, nil
}
