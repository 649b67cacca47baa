package container

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/safetree"
)

// Change is one line of `diff`: A added, C changed, D deleted.
type Change struct {
	Kind string
	Path string
}

// Changes lists what the container changed against its image, from the
// overlay's upper dir, walked by descriptors: the container may be
// rearranging it meanwhile.
func (s *Store) Changes(r *Record) ([]Change, error) {
	img, err := s.images.Resolve(r.Image)
	if err != nil {
		return nil, err
	}
	var lowers []*os.File
	defer func() {
		for _, l := range lowers {
			l.Close()
		}
	}()
	for _, dir := range img.LayerDirs() {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("diff: layer %s: %w", dir, err)
		}
		lowers = append(lowers, os.NewFile(uintptr(fd), dir))
	}
	// Present in a lower layer, looked up inside that layer: a layer's
	// own symlinks cannot point the lookup at the host.
	inLower := func(rel string) bool {
		how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
		for _, l := range lowers {
			if fd, err := unix.Openat2(int(l.Fd()), rel, how); err == nil {
				unix.Close(fd)
				return true
			}
		}
		return false
	}
	upper := s.UpperDir(r.ID)
	root, err := safetree.OpenRoot(upper)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	defer root.Close()
	var out []Change
	skipped := false
	err = safetree.Walk(root.Handle(), true, func(e *safetree.Entry) error {
		rel := "/" + e.Rel
		if netMountpoint(e) && !inLower(e.Rel) {
			skipped = true
			return nil
		}
		switch {
		case e.Stat.Mode&unix.S_IFMT == unix.S_IFCHR && e.Stat.Rdev == 0:
			out = append(out, Change{"D", rel})
		case inLower(rel):
			out = append(out, Change{"C", rel})
		default:
			out = append(out, Change{"A", rel})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	if skipped {
		out = dropBareEtc(out)
	}
	return out, nil
}

// dropBareEtc leaves out "C /etc" when nothing below it changed: only
// the mount points of berth's /etc files were made there.
func dropBareEtc(in []Change) []Change {
	var out []Change
	for _, c := range in {
		if strings.HasPrefix(c.Path, "/etc/") {
			return in
		}
		if c.Path != "/etc" {
			out = append(out, c)
		}
	}
	return out
}
