package main

import (
	"errors"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

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
		// A dot name: container ids start with a letter or digit.
		p, err := helperbin.Install(filepath.Join(root, ".helpers"), helperbin.Init)
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
