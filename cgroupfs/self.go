package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SupervisorLeaf is the cgroup, under the caller's own, that berth moves
// itself to when it places a container beside itself (--cgroups=split):
// a cgroup with processes cannot enable controllers for its children on
// cgroup v2, so the caller's cgroup must be left with none.
const SupervisorLeaf = "supervisor"

// Own is the calling process's cgroup: its cgroup2 path on a pure v2 host,
// else its path in the name=systemd hierarchy, which is the one systemd
// tracks units by in the legacy and hybrid layouts.
func Own() (string, error) {
	return ownOf("/proc/self/cgroup")
}

func ownOf(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	want := "name=systemd"
	if DetectMode() == Unified {
		want = ""
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == want {
			return parts[2], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", file, err)
	}
	return "", fmt.Errorf("%s: no %q hierarchy", file, want)
}

// IsUnitCgroup says whether p is the cgroup of a systemd service or scope.
func IsUnitCgroup(p string) bool {
	b := path.Base(p)
	return strings.HasSuffix(b, ".service") || strings.HasSuffix(b, ".scope")
}

// ownDir is the directory of cgroup p in the hierarchy Own reads.
func ownDir(p string) (string, error) {
	if DetectMode() == Unified {
		return filepath.Join(cgroupRoot, p), nil
	}
	named, err := namedMounts()
	if err != nil {
		return "", err
	}
	mp, ok := named["name=systemd"]
	if !ok {
		return "", errors.New("no name=systemd cgroup hierarchy is mounted")
	}
	return filepath.Join(mp, p), nil
}

// Delegated says whether systemd delegated cgroup p (Delegate=yes): it
// marks such cgroups with the trusted.delegate extended attribute. Without
// delegation systemd owns the cgroup's controllers and may turn off any
// that berth enables below it. On v1 there is no such mark and nothing to
// lose: it reports true.
func Delegated(p string) bool {
	if DetectMode() != Unified {
		return true
	}
	return delegatedDir(filepath.Join(cgroupRoot, p))
}

func delegatedDir(dir string) bool {
	buf := make([]byte, 8)
	n, err := unix.Getxattr(dir, "trusted.delegate", buf)
	return err == nil && n > 0 && string(buf[:n]) == "1"
}

// MoveSelf moves the calling process (all its threads) to the cgroup
// SupervisorLeaf below its own cgroup own, creating it.
func MoveSelf(own string) error {
	dir, err := ownDir(path.Join(own, SupervisorLeaf))
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	if err := writeFile(dir, "cgroup.procs", strconv.Itoa(os.Getpid())); err != nil {
		return fmt.Errorf("move berth to %s: %w", dir, err)
	}
	return nil
}
