package container

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/passwd"
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
		return fmt.Errorf("unable to find user %s: %w", user, err)
	}
	p.User.UID, p.User.GID, p.User.AdditionalGids = uid, gid, groups
	for _, e := range p.Env {
		if strings.HasPrefix(e, "HOME=") {
			return nil
		}
	}
	p.Env = append(p.Env, "HOME="+home)
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
		src, err := secureJoin(merged, m.Destination)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
			continue
		}
		if err := volume.CopyUp(src, m.Source); err != nil {
			return fmt.Errorf("fill volume %s from the image: %w", m.Name, err)
		}
	}
	if changed {
		return s.Save(r)
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
