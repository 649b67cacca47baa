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
