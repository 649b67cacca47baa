package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/helperbin"
)

// helperRoots are where berth keeps its helper programs, in this order:
// /run is a tmpfs that goes with a reboot, but Debian mounts it noexec.
// They are fixed, not --root or --data-root: the programs are named for
// their content, and one copy serves every state root.
var helperRoots = []string{"/run/berth", "/var/lib/berth"}

// initProgram installs the container init program (cmd/berth-init) and
// returns its path; "" makes berth itself the init, which works the same,
// only slower to start.
func initProgram() string {
	for _, root := range helperRoots {
		if !execAllowed(root) {
			continue
		}
		p, err := helperbin.Install(helperDir(root), helperbin.Init)
		if err == nil {
			return p
		}
		if errors.Is(err, helperbin.ErrNotBuilt) {
			break
		}
		logrus.Debugf("container init program: %v", err)
	}
	return ""
}

// helperDir is where the init program is installed under one of
// helperRoots: a dot name, since container ids start with a letter or
// digit.
func helperDir(root string) string { return filepath.Join(root, ".helpers") }

// execAllowed tells whether programs under dir may run: the nearest
// existing directory on the way up is on a file system mounted without
// noexec.
func execAllowed(dir string) bool {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return st.Flags&unix.ST_NOEXEC == 0
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, unix.ENOENT) || parent == dir {
			return false
		}
		dir = parent
	}
}

// pruneHelpers removes the helper programs that other builds of berth
// installed and no process runs: each build installs its own copies, and
// on a tmpfs they hold memory until the next boot.
func pruneHelpers(s *container.Store) ([]string, int64, error) {
	inUse, err := runningPrograms()
	if err != nil {
		return nil, 0, err
	}
	removed, freed, err := s.PruneMonitorPrograms(inUse)
	if err != nil {
		return removed, freed, err
	}
	dirs := make([]string, len(helperRoots))
	for i, root := range helperRoots {
		dirs[i] = helperDir(root)
	}
	r, n, err := helperbin.Prune(helperbin.Init, inUse, dirs...)
	return append(removed, r...), freed + n, err
}

// runningPrograms returns whether a file is the program of a running
// process, by its device and inode: a container's init runs its program
// through a mount of its own, under another path.
func runningPrograms() (func(fs.FileInfo) bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	type fileID struct{ dev, ino uint64 }
	running := map[fileID]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st unix.Stat_t
		// Processes that ended, or kernel threads, have none.
		if unix.Stat("/proc/"+e.Name()+"/exe", &st) == nil {
			running[fileID{st.Dev, st.Ino}] = true
		}
	}
	return func(fi fs.FileInfo) bool {
		st, ok := fi.Sys().(*syscall.Stat_t)
		return !ok || running[fileID{uint64(st.Dev), st.Ino}]
	}, nil
}
