package container

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/passwd"
	"github.com/berth-project/berth/safetree"
	"github.com/berth-project/berth/volume"
)

// resolveUser turns Docker's user spec into ids read from the image's own
// /etc/passwd and /etc/group, as Docker does at start, and sets HOME.
func resolveUser(p *specs.Process, rootfs, user string) error {
	var extra []string
	for _, g := range p.User.AdditionalGids {
		extra = append(extra, fmt.Sprint(g))
	}
	uid, gid, groups, home, err := passwd.Lookup(rootfs, user, extra)
	if err != nil {
		return err // passwd's errors name the user
	}
	p.User.UID, p.User.GID, p.User.AdditionalGids = uid, gid, groups
	p.Env = passwd.WithHome(p.Env, home)
	return nil
}

// fillVolumes copies the image's content at a volume's mount point into
// the volume on the first start, when the volume is new, as Docker does.
func (s *Store) fillVolumes(r *Record, merged string) error {
	changed := false
	for i := range r.Mounts {
		m := &r.Mounts[i]
		if !m.Fill || m.Type != "volume" {
			continue
		}
		m.Fill = false
		changed = true
		empty, err := isEmptyDir(m.Source)
		if err != nil || !empty {
			continue
		}
		if err := fillVolume(merged, m); err != nil {
			return err
		}
	}
	if changed {
		return s.Save(r)
	}
	return nil
}

// fillVolume copies the image's content at the mount point into the new
// volume, resolved once inside the root to a handle.
func fillVolume(merged string, m *MountPoint) error {
	root, err := safetree.OpenRoot(merged)
	if err != nil {
		return err
	}
	defer root.Close()
	src, err := root.Open(m.Destination, true)
	if errors.Is(err, unix.ENOENT) {
		return nil // nothing there to copy
	}
	if err != nil {
		return fmt.Errorf("fill volume %s from the image: %w", m.Name, err)
	}
	defer src.Close()
	if st, err := safetree.Stat(src); err != nil || !safetree.IsDir(st) {
		return nil
	}
	if err := volume.CopyUpFrom(src, m.Source); err != nil {
		return fmt.Errorf("fill volume %s from the image: %w", m.Name, err)
	}
	return nil
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && err != nil, nil
}
