package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// MountIDMapped is Mount for a container in a user namespace of its own:
// the lower layers are seen through id-mapped mounts (userns's map: the
// host's root owning a layer's files shows as the container's root), as
// the kernel refuses to id-map an overlay mount itself. The mapped
// layers are attached under dir only while the overlay is mounted: the
// overlay keeps private clones of its layers.
func MountIDMapped(lowerDirs []string, upper, work, merged, dir string, userns *os.File) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	defer os.RemoveAll(dir)
	mapped := make([]string, 0, len(lowerDirs))
	defer func() {
		for _, m := range mapped {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}()
	for i, l := range lowerDirs {
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("overlay: clone layer %s: %w", l, err)
		}
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns.Fd())}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
		if err == nil {
			err = unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		}
		unix.Close(fd)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			// tmpfs before Linux 6.3, for one, has no id-mapped mounts.
			return fmt.Errorf("overlay: the filesystem of layer %s cannot be id-mapped on this kernel, so no id maps here: %w", l, err)
		}
		if err != nil {
			return fmt.Errorf("overlay: id-map layer %s: %w", l, err)
		}
		mapped = append(mapped, target)
	}
	// Short names relative to dir keep the mount data within its page.
	rel := make([]string, len(mapped))
	for i := range mapped {
		rel[i] = strconv.Itoa(i)
	}
	data, _, err := Options(rel, upper, work)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(merged, 0o755); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if err := mountIn(dir, "overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("overlay: mount %d id-mapped layers at %s: %w", len(lowerDirs), merged, err)
	}
	return nil
}
