package container

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// openInRoot opens a file of the container's root without following a
// symlink out of it.
func openInRoot(rootfs, p string) (*os.File, error) {
	j, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return nil, err
	}
	return os.Open(j)
}

// dbEntries reads a colon-separated database (/etc/passwd, /etc/group);
// a missing file is empty.
func dbEntries(rootfs, p string) ([][]string, error) {
	f, err := openInRoot(rootfs, p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out, sc.Err()
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// LookupUser resolves Docker's user spec ("", name, uid, name:group,
// uid:gid) in the image's /etc/passwd and /etc/group. Numeric ids need no
// entry. groups are the user's supplementary groups from /etc/group plus
// extra (names or ids, --group-add); home is "/" when unknown.
func LookupUser(rootfs, spec string, extra []string) (uid, gid uint32, groups []uint32, home string, err error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	users, err := dbEntries(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, "", err
	}
	home = "/"
	name := ""
	found := false
	n, numeric := parseID(userPart)
	for _, u := range users {
		if len(u) < 7 {
			continue
		}
		id, ok := parseID(u[2])
		if !ok {
			continue
		}
		if u[0] == userPart || numeric && id == n {
			uid, name, home, found = id, u[0], u[5], true
			gid, _ = parseID(u[3])
			break
		}
	}
	if !found {
		if !numeric {
			return 0, 0, nil, "", fmt.Errorf("no user %q in the image's /etc/passwd", userPart)
		}
		uid, gid = n, 0
	}
	grps, err := dbEntries(rootfs, "/etc/group")
	if err != nil {
		return 0, 0, nil, "", err
	}
	findGroup := func(g string) (uint32, error) {
		if id, ok := parseID(g); ok {
			return id, nil
		}
		for _, e := range grps {
			if len(e) >= 3 && e[0] == g {
				if id, ok := parseID(e[2]); ok {
					return id, nil
				}
			}
		}
		return 0, fmt.Errorf("no group %q in the image's /etc/group", g)
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
			for _, m := range strings.Split(e[3], ",") {
				if m == name {
					if id, ok := parseID(e[2]); ok {
						add(id)
					}
				}
			}
		}
	}
	for _, g := range extra {
		id, err := findGroup(g)
		if err != nil {
			return 0, 0, nil, "", err
		}
		add(id)
	}
	return uid, gid, groups, home, nil
}
