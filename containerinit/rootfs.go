package containerinit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs/hostcg"
	"github.com/berth-project/berth/internal/mountopt"
)

// prepareRootfs runs in the container's fresh mount namespace before
// pivot_root: it makes the mounts of the spec and the device nodes inside
// the rootfs, resolving every destination inside it.
func prepareRootfs(cfg *initConfig) error {
	spec := cfg.Spec
	// Nothing we mount may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	rootfs := cfg.Rootfs
	if err := mountRootfs(cfg.root, rootfs); err != nil {
		return err
	}
	if strings.Contains(spec.Linux.RootfsPropagation, "shared") {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := privateParentMount(rootfs); err != nil {
			return err
		}
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()

	hasDevTmpfs, devBind := false, false
	for _, m := range spec.Mounts {
		if filepath.Clean(m.Destination) == "/dev" {
			if isBind(m) {
				devBind = true
			} else {
				hasDevTmpfs = true
			}
		}
		if err := mountOne(cfg, root, m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
	}
	// A /dev bound from the host (-v DIR:/dev) is the user's directory:
	// making nodes there would replace the user's files named null, tty
	// ... on the host. runc leaves such a /dev alone too.
	if devBind {
		return nil
	}
	return createDevices(cfg, root, hasDevTmpfs)
}

// mountRootfs makes rootfs a mount point: of the detached mount root,
// whose copies stay slaves of the host's as / is (nothing mounted in them
// reaches the host), or of itself bound when root is -1.
func mountRootfs(root int, rootfs string) error {
	if root < 0 {
		if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind rootfs %s: %w", rootfs, err)
		}
		return nil
	}
	attr := unix.MountAttr{Propagation: unix.MS_SLAVE}
	if err := unix.MountSetattr(root, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("make the root a slave: %w", err)
	}
	if err := unix.MoveMount(root, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach the root at %s: %w", rootfs, err)
	}
	return nil
}

// isBind tells whether a spec mount is a bind mount, by type or option.
func isBind(m specs.Mount) bool {
	return m.Type == "bind" || parseMountOptions(m.Options).flags&unix.MS_BIND != 0
}

func privateParentMount(path string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	best := ""
	for _, m := range mounts {
		if len(m.Mountpoint) > len(best) && m.Mountpoint != path {
			best = m.Mountpoint
		}
	}
	if best == "" {
		best = "/"
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

// openTarget creates (if needed) and opens the destination of a mount
// inside root. Symlinks are resolved as if root were "/", so nothing in
// the image can send a mount outside it. isDir says what to create.
func openTarget(root *os.File, dest string, isDir bool) (*os.File, error) {
	if isDir {
		dir, err := mkdirAllInRoot(root, dest, 0o755)
		if err != nil {
			return nil, fmt.Errorf("create %s in rootfs: %w", dest, err)
		}
		return dir, nil
	}
	parent, err := mkdirAllInRoot(root, filepath.Dir(dest), 0o755)
	if err != nil {
		return nil, fmt.Errorf("create %s in rootfs: %w", filepath.Dir(dest), err)
	}
	defer parent.Close()
	base := filepath.Base(dest)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.EISDIR) {
		return nil, fmt.Errorf("create %s in rootfs: %w", dest, err)
	}
	f, err := openInRoot(root, dest)
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", dest, err)
	}
	return f, nil
}

// procPath names an open file for mount(2); the kernel follows the magic
// link to exactly the file we resolved.
func procPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

func mountOne(cfg *initConfig, root *os.File, m specs.Mount) error {
	opts := parseMountOptions(m.Options)
	typ := m.Type
	if opts.flags&unix.MS_BIND != 0 {
		typ = "bind"
	}
	switch typ {
	case "bind":
		return mountBind(cfg, root, m, opts)
	case "cgroup", "cgroup2":
		if err := cfg.placed(); err != nil {
			return err
		}
		return mountCgroup(cfg, root, m, opts)
	}
	target, err := openTarget(root, m.Destination, true)
	if err != nil {
		return err
	}
	defer target.Close()
	src := m.Source
	if src == "" {
		src = typ
	}
	copyUp := opts.copyUp && typ == "tmpfs"
	flags := opts.flags
	if copyUp {
		// Filled first, made read-only after.
		flags &^= unix.MS_RDONLY
	}
	err = unix.Mount(src, procPath(target), typ, flags, opts.data)
	if err != nil && typ == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
		// A user namespace that does not own the network namespace cannot
		// mount sysfs; bind the host's read-only instead, as runc does.
		err = unix.Mount("/sys", procPath(target), "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			// target names the directory under the bind: remount the
			// bind, found by a fresh lookup.
			var mnt *os.File
			if mnt, err = openInRoot(root, m.Destination); err == nil {
				err = remount(procPath(mnt), opts.flags|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
				mnt.Close()
			}
		}
	}
	if err != nil {
		return err
	}
	if !copyUp && len(opts.propagation) == 0 {
		return nil
	}
	// target still names the directory underneath the new mount; the
	// mount itself is reached by a fresh lookup.
	mnt, err := openInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer mnt.Close()
	if copyUp {
		if err := copyDirContents(target, mnt); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
		if opts.flags&unix.MS_RDONLY != 0 {
			if err := remount(procPath(mnt), opts.flags); err != nil {
				return err
			}
		}
	}
	return setPropagation(procPath(mnt), opts.propagation)
}

func setPropagation(path string, props []uintptr) error {
	for _, p := range props {
		if err := unix.Mount("", path, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// remount changes the flags of a bind mount, keeping the flags the kernel
// locks on it (a mount inherited into a user namespace keeps nosuid etc.).
func remount(path string, flags uintptr) error {
	flags &^= unix.MS_REC | unix.MS_REMOUNT | unix.MS_BIND
	err := unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
	if errors.Is(err, unix.EPERM) {
		var st unix.Statfs_t
		if serr := unix.Statfs(path, &st); serr == nil {
			locked := uintptr(st.Flags) & (unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
			err = unix.Mount("", path, "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, "")
		}
	}
	if err != nil {
		return fmt.Errorf("remount %s: %w", path, err)
	}
	return nil
}

func mountBind(cfg *initConfig, root *os.File, m specs.Mount, opts parsedMount) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(cfg.Bundle, src)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	target, err := openTarget(root, m.Destination, st.IsDir())
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Mount(src, procPath(target), "", unix.MS_BIND|(opts.flags&unix.MS_REC), ""); err != nil {
		return err
	}
	// The bind is now mounted on the target; reopen the new mount to
	// remount it with the requested flags.
	f, err := openInRoot(root, m.Destination)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", m.Destination, err)
	}
	defer f.Close()
	if extra := opts.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 {
		if err := remount(procPath(f), extra); err != nil {
			return err
		}
	}
	return setPropagation(procPath(f), opts.propagation)
}

// mountCgroup mounts the container's view of the cgroup filesystem: with a
// cgroup namespace the kernel shows the container's own cgroup as the root;
// without one, the container's cgroup directories are bound in.
func mountCgroup(cfg *initConfig, root *os.File, m specs.Mount, opts parsedMount) error {
	flags := opts.flags &^ (unix.MS_BIND | unix.MS_REC)
	target, err := openTarget(root, m.Destination, true)
	if err != nil {
		return err
	}
	defer target.Close()
	mode := hostcg.Mode(cfg.CgroupMode)
	if mode == hostcg.Unified {
		if cfg.CgroupNS {
			err := unix.Mount("cgroup2", procPath(target), "cgroup2", flags, "")
			// In a user namespace that does not own the cgroup
			// namespace the kernel refuses cgroup2 (EPERM, or EBUSY):
			// the container's own cgroup is bound in instead, which
			// shows the same tree.
			if err == nil || !cfg.UserNS || !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EBUSY) {
				return err
			}
		}
		return bindRO(filepath.Join("/sys/fs/cgroup", cfg.CgroupPath), target, flags, func() (*os.File, error) {
			return openInRoot(root, m.Destination)
		})
	}
	// v1 or hybrid: a tmpfs holding one mount per hierarchy.
	if err := unix.Mount("tmpfs", procPath(target), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return fmt.Errorf("cgroup tmpfs: %w", err)
	}
	tmpfs, err := openInRoot(root, m.Destination)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	hier, err := ownCgroups(cfg.CgroupMounts)
	if err != nil {
		return err
	}
	for _, h := range hier {
		name := h.controllers
		fstype, data := "cgroup", h.controllers
		if name == "" {
			name, fstype, data = "unified", "cgroup2", ""
		}
		name = strings.TrimPrefix(name, "name=")
		if err := unix.Mkdirat(int(tmpfs.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir cgroup %s: %w", name, err)
		}
		sub, err := openInRoot(tmpfs, name)
		if err != nil {
			return err
		}
		if cfg.CgroupNS {
			err = unix.Mount("cgroup", procPath(sub), fstype, flags, data)
		} else {
			hostDir := filepath.Join(h.mountpoint, h.path)
			err = bindRO(hostDir, sub, flags, func() (*os.File, error) {
				return openInRoot(tmpfs, name)
			})
		}
		sub.Close()
		if err != nil {
			return fmt.Errorf("mount cgroup %s: %w", name, err)
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return remount(procPath(tmpfs), flags)
	}
	return nil
}

// bindRO binds src onto target and remounts it with flags. The remount
// goes through a fresh handle from reopen: target itself still names the
// directory underneath the new mount.
func bindRO(src string, target *os.File, flags uintptr, reopen func() (*os.File, error)) error {
	if err := unix.Mount(src, procPath(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	if flags == 0 {
		return nil
	}
	f, err := reopen()
	if err != nil {
		return fmt.Errorf("reopen bind of %s: %w", src, err)
	}
	defer f.Close()
	return remount(procPath(f), flags)
}

// hierarchy is one line of /proc/self/cgroup with its host mount point.
type hierarchy struct{ controllers, path, mountpoint string }

// ownCgroups lists the cgroup hierarchies the process belongs to, with the
// host mount point of each, from mounts (the parent's reading of the
// cgroup mounts) or else the process's own mount table.
func ownCgroups(mounts []hostcg.Mount) ([]hierarchy, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	defer f.Close()
	if mounts == nil {
		if mounts, err = hostcg.Mounts(); err != nil {
			return nil, err
		}
	}
	var out []hierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		h := hierarchy{controllers: parts[1], path: parts[2]}
		for _, m := range mounts {
			if h.controllers == "" && m.FSType == "cgroup2" {
				h.mountpoint = m.Mountpoint
			}
			if h.controllers != "" && m.FSType == "cgroup" && sameControllers(m.SuperOpts, h.controllers) {
				h.mountpoint = m.Mountpoint
			}
		}
		if h.mountpoint == "" {
			continue // a hierarchy the host does not mount
		}
		out = append(out, h)
	}
	return out, sc.Err()
}

func sameControllers(vfsOpts, ctrls string) bool {
	want := strings.Split(ctrls, ",")
	have := map[string]bool{}
	for _, o := range strings.Split(vfsOpts, ",") {
		have[o] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func createDevices(cfg *initConfig, root *os.File, devTmpfs bool) error {
	devs := append([]specs.LinuxDevice(nil), defaultDevices...)
	seen := map[string]bool{}
	for _, d := range cfg.Spec.Linux.Devices {
		seen[filepath.Clean(d.Path)] = true
	}
	all := append([]specs.LinuxDevice(nil), cfg.Spec.Linux.Devices...)
	for _, d := range devs {
		if !seen[d.Path] {
			all = append(all, d)
		}
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, d := range all {
		if err := createDevice(cfg, root, d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	if !devTmpfs {
		return nil
	}
	links := [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}}
	if f, err := openInRoot(root, "/dev/pts/ptmx"); err == nil {
		f.Close()
		links = append(links, [2]string{"pts/ptmx", "/dev/ptmx"})
	}
	for _, l := range links {
		dir, err := openInRoot(root, filepath.Dir(l[1]))
		if err != nil {
			return err
		}
		err = unix.Symlinkat(l[0], int(dir.Fd()), filepath.Base(l[1]))
		dir.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

func createDevice(cfg *initConfig, root *os.File, d specs.LinuxDevice) error {
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
	case "b":
		mode = unix.S_IFBLK
	case "p":
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode) & 0o7777
	}
	parent, err := mkdirAllInRoot(root, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	base := filepath.Base(d.Path)
	if cfg.UserNS {
		// mknod is not allowed in a user namespace: bind the host's node.
		fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		if err == nil {
			unix.Close(fd)
		}
		t, err := openInRoot(root, d.Path)
		if err != nil {
			return err
		}
		defer t.Close()
		return unix.Mount(d.Path, procPath(t), "", unix.MS_BIND, "")
	}
	_ = unix.Unlinkat(int(parent.Fd()), base, 0)
	dev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	if err := unix.Mknodat(int(parent.Fd()), base, mode|perm, int(dev)); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(int(parent.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// enterRoot makes rootfs the process's root: pivot_root, or with noPivot a
// move mount and chroot (for ramfs roots where pivot_root fails).
func enterRoot(rootfs string, noPivot bool) error {
	if noPivot {
		if err := unix.Chdir(rootfs); err != nil {
			return fmt.Errorf("chdir rootfs: %w", err)
		}
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move rootfs: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one,
	// so no directory for it is needed inside the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// finishRootfs runs after pivot_root: sysctls, masked and read-only paths,
// a read-only root and the root's propagation.
func finishRootfs(spec *specs.Spec) error {
	for k, v := range spec.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, unwrapPath(err))
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
		if err := remount(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
			return fmt.Errorf("readonly path %s: %w", p, err)
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p, spec.Linux.MountLabel); err != nil {
			return err
		}
	}
	if spec.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	if prop := spec.Linux.RootfsPropagation; prop != "" {
		f, ok := mountopt.Propagation(prop)
		if !ok {
			return fmt.Errorf("unknown rootfsPropagation %q", prop)
		}
		if err := unix.Mount("", "/", "", f, ""); err != nil {
			return fmt.Errorf("rootfsPropagation %s: %w", prop, err)
		}
	}
	return nil
}

func maskPath(p, label string) error {
	st, err := os.Stat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("masked path %s: %w", p, err)
	}
	if st.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}
