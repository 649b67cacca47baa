package cgroupfs

import (
	"path"
	"strings"
)

// DefaultPath is the cgroup of container id when nothing names one: the
// runtime's default for an empty linux.cgroupsPath, and the CLI's without
// --cgroup-parent.
func DefaultPath(id string) string {
	return "/berth/" + id
}

// ChildPath is the cgroup of container id under parent (--cgroup-parent).
func ChildPath(parent, id string) string {
	return path.Join("/", parent, "berth-"+id)
}

// SpecPath turns a spec's linux.cgroupsPath into the cgroupfs path of
// container id. The systemd form "slice:prefix:name" (used with
// --systemd-cgroup) maps to the same place systemd would put it.
func SpecPath(p, id string) string {
	if p == "" {
		return DefaultPath(id)
	}
	if parts := strings.Split(p, ":"); len(parts) == 3 && !strings.HasPrefix(p, "/") {
		slice := parts[0]
		if slice == "" {
			slice = "system.slice"
		}
		return "/" + slice + "/" + parts[1] + "-" + parts[2] + ".scope"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}
