package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/safetree"
)

// mappedRoot is the host uid and gid of the root of r's user namespace;
// ok is false when r has none of its own.
func mappedRoot(r *Record) (uid, gid int, ok bool) {
	if r.Spec == nil || r.Spec.Linux == nil || len(r.Spec.Linux.UIDMappings) == 0 {
		return 0, 0, false
	}
	host := func(maps []specs.LinuxIDMapping) int {
		for _, m := range maps {
			if m.ContainerID == 0 {
				return int(m.HostID)
			}
		}
		return 65534
	}
	return host(r.Spec.Linux.UIDMappings), host(r.Spec.Linux.GIDMappings), true
}

// InspectIDMappings is r's id maps as inspect shows them, nil when it has
// no user namespace of its own.
func InspectIDMappings(r *Record) *IDMappings {
	if r.Spec == nil || r.Spec.Linux == nil || len(r.Spec.Linux.UIDMappings) == 0 {
		return nil
	}
	str := func(maps []specs.LinuxIDMapping) []string {
		out := make([]string, len(maps))
		for i, m := range maps {
			out[i] = fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
		}
		return out
	}
	return &IDMappings{UIDMap: str(r.Spec.Linux.UIDMappings), GIDMap: str(r.Spec.Linux.GIDMappings)}
}

// idShift is how owners cross between the host and r's user namespace:
// toHost for what is written into its tree (an id the namespace does not
// map is an error), toCtr for what is read out of it (an unmapped host id
// is the overflow id, as the container sees it). Both are nil when r has
// no user namespace of its own.
func idShift(r *Record) (toHost, toCtr safetree.OwnerMap) {
	if r.Spec == nil || r.Spec.Linux == nil || len(r.Spec.Linux.UIDMappings) == 0 {
		return nil, nil
	}
	uids, gids := r.Spec.Linux.UIDMappings, r.Spec.Linux.GIDMappings
	find := func(maps []specs.LinuxIDMapping, id int, out bool) (int, bool) {
		for _, m := range maps {
			from, to := int64(m.ContainerID), int64(m.HostID)
			if out {
				from, to = to, from
			}
			if int64(id) >= from && int64(id) < from+int64(m.Size) {
				return int(to + int64(id) - from), true
			}
		}
		return overflowID, false
	}
	toHost = func(uid, gid int) (int, int, error) {
		hu, ok := find(uids, uid, false)
		if !ok {
			return 0, 0, fmt.Errorf("uid %d is not mapped in the container's user namespace", uid)
		}
		hg, ok := find(gids, gid, false)
		if !ok {
			return 0, 0, fmt.Errorf("gid %d is not mapped in the container's user namespace", gid)
		}
		return hu, hg, nil
	}
	toCtr = func(uid, gid int) (int, int, error) {
		cu, _ := find(uids, uid, true)
		cg, _ := find(gids, gid, true)
		return cu, cg, nil
	}
	return toHost, toCtr
}

// overflowID is the id a user namespace shows for one it does not map.
const overflowID = 65534

// newUserns makes a user namespace with r's id maps and returns its
// descriptor: a berth waits in it while the descriptor is taken.
func newUserns(r *Record) (*os.File, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	conv := func(maps []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, len(maps))
		for i, m := range maps {
			out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
		}
		return out
	}
	cmd := exec.Command(self, proto.UsernsCommand)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: conv(r.Spec.Linux.UIDMappings), GidMappings: conv(r.Spec.Linux.GIDMappings)}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("user namespace for the id maps: %w", err)
	}
	f, err := os.Open(filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "ns", "user"))
	in.Close()
	_ = cmd.Wait()
	if err != nil {
		return nil, fmt.Errorf("user namespace for the id maps: %w", err)
	}
	return f, nil
}

// openWayTo lets a mapped root walk to path: search (not read) permission
// for others on each directory above it that lacks it.
func openWayTo(path string) error {
	for d := filepath.Dir(filepath.Clean(path)); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("id maps: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("id maps: open %s to the mapped root: %w", d, err)
			}
		}
	}
	return nil
}

// openMountsToMappedRoot lets the init of r, which mounts as the mapped
// root when r has id maps, walk to each bind source of spec that berth
// keeps under its roots (/etc files, volumes) as "other": sources are
// found by name, never listed. The user's own bind sources are left as
// they are: reaching them is the user's to allow, as with runc.
func (s *Store) openMountsToMappedRoot(r *Record, spec *specs.Spec) error {
	if _, _, ok := mappedRoot(r); !ok {
		return nil
	}
	for _, m := range spec.Mounts {
		if m.Type != "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
			continue
		}
		for _, root := range []string{s.StateRoot, s.DataRoot} {
			if root != "" && strings.HasPrefix(filepath.Clean(m.Source), filepath.Clean(root)+"/") {
				if err := openWayTo(m.Source); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
