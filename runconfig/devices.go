package runconfig

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
)

// validPerms tells whether p is a device cgroup access: some of r, w, m.
func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range p {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// ParseDevice parses --device HOST[:CONTAINER][:PERMISSIONS], Docker's
// syntax: the container path defaults to the host's, the permissions to
// rwm. The host node is checked by Spec.
func ParseDevice(v string) (container.DeviceMapping, error) {
	d := container.DeviceMapping{CgroupPermissions: "rwm"}
	parts := strings.Split(v, ":")
	switch len(parts) {
	case 1:
		d.PathOnHost = parts[0]
	case 2:
		d.PathOnHost = parts[0]
		if validPerms(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathOnHost, d.PathInContainer, d.CgroupPermissions = parts[0], parts[1], parts[2]
		if !validPerms(d.CgroupPermissions) {
			return d, fmt.Errorf("--device %q: invalid permissions %q (want some of r, w, m)", v, d.CgroupPermissions)
		}
	default:
		return d, fmt.Errorf("--device %q: want HOST[:CONTAINER][:PERMISSIONS]", v)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !path.IsAbs(d.PathOnHost) {
		return d, fmt.Errorf("--device %q: %q is not an absolute path", v, d.PathOnHost)
	}
	if !path.IsAbs(d.PathInContainer) || path.Clean(d.PathInContainer) == "/" {
		return d, fmt.Errorf("--device %q: the container path %q is not an absolute path below /", v, d.PathInContainer)
	}
	d.PathOnHost, d.PathInContainer = path.Clean(d.PathOnHost), path.Clean(d.PathInContainer)
	return d, nil
}

// ParseDeviceCgroupRule parses --device-cgroup-rule 'TYPE MAJOR:MINOR
// PERMISSIONS' (TYPE a, b or c; * for any major or minor).
func ParseDeviceCgroupRule(v string) (specs.LinuxDeviceCgroup, error) {
	bad := func(why string) (specs.LinuxDeviceCgroup, error) {
		return specs.LinuxDeviceCgroup{}, fmt.Errorf("--device-cgroup-rule %q: %s (want 'c|b|a MAJOR:MINOR rwm', * for any number)", v, why)
	}
	f := strings.Fields(v)
	if len(f) != 3 {
		return bad("three fields needed")
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Access: f[2]}
	if r.Type != "a" && r.Type != "b" && r.Type != "c" {
		return bad("invalid type " + strconv.Quote(f[0]))
	}
	if !validPerms(r.Access) {
		return bad("invalid permissions " + strconv.Quote(f[2]))
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return bad("invalid MAJOR:MINOR " + strconv.Quote(f[1]))
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return &n, err == nil && n >= 0 && n < 1<<32
	}
	var okMaj, okMin bool
	if r.Major, okMaj = num(maj); !okMaj {
		return bad("invalid major " + strconv.Quote(maj))
	}
	if r.Minor, okMin = num(min); !okMin {
		return bad("invalid minor " + strconv.Quote(min))
	}
	return r, nil
}

// devices adds --device nodes (created in the container with the host
// node's mode and owner) with their cgroup rules, and the
// --device-cgroup-rule rules, after the default deny.
func devices(s *specs.Spec, o *Options) error {
	h := &o.Host
	for _, d := range h.Devices {
		var st unix.Stat_t
		if err := unix.Stat(d.PathOnHost, &st); err != nil {
			return fmt.Errorf("--device %s: %w", d.PathOnHost, err)
		}
		typ := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return fmt.Errorf("--device %s: not a character or block device", d.PathOnHost)
		}
		if !validPerms(d.CgroupPermissions) {
			return fmt.Errorf("--device %s: invalid permissions %q", d.PathOnHost, d.CgroupPermissions)
		}
		if !filepath.IsAbs(d.PathInContainer) {
			return fmt.Errorf("--device %s: the container path %q is not absolute", d.PathOnHost, d.PathInContainer)
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		mode := fs.FileMode(st.Mode & 0o7777)
		uid, gid := st.Uid, st.Gid
		dev := specs.LinuxDevice{Path: d.PathInContainer, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
		replaced := false
		for i := range s.Linux.Devices {
			if s.Linux.Devices[i].Path == dev.Path {
				s.Linux.Devices[i], replaced = dev, true
			}
		}
		if !replaced {
			s.Linux.Devices = append(s.Linux.Devices, dev)
		}
		if !h.Privileged {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
				specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: d.CgroupPermissions})
		}
	}
	for _, v := range h.DeviceCgroupRules {
		r, err := ParseDeviceCgroupRule(v)
		if err != nil {
			return err
		}
		if !h.Privileged {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, r)
		}
	}
	return nil
}
