// Package overlay mounts image layer stacks with overlayfs.
//
// Mount data is limited to one page, so deep stacks use the short layer
// links the image store keeps (overlay2's l/<short-id> symlinks): a
// layer directory <root>/layers/<chain>/diff whose <root>/layers/<chain>/link
// names an existing <root>/l/<short-id> is passed as "l/<short-id>" and the
// mount is made from a thread whose working directory is <root>.
package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// maxData is what the kernel copies of the mount data: one page, NUL included.
var maxData = os.Getpagesize() - 1

// shortLink returns the l/ directory's parent and "l/<id>" for a store
// layer dir, or ok=false when dir has no short link.
func shortLink(dir string) (root, rel string, ok bool) {
	if filepath.Base(dir) != "diff" {
		return "", "", false
	}
	layer := filepath.Dir(dir)
	b, err := os.ReadFile(filepath.Join(layer, "link"))
	if err != nil {
		return "", "", false
	}
	id := strings.TrimSpace(string(b))
	if id == "" || strings.ContainsAny(id, "/:,") {
		return "", "", false
	}
	root = filepath.Dir(filepath.Dir(layer))
	rel = filepath.Join("l", id)
	target, err := filepath.EvalSymlinks(filepath.Join(root, rel))
	if err != nil {
		return "", "", false
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || real != target {
		return "", "", false
	}
	return root, rel, true
}

func checkPath(p string) error {
	if strings.ContainsAny(p, ":,") {
		return fmt.Errorf("overlay: path %q contains ':' or ','", p)
	}
	return nil
}

// Options builds the mount data and the directory it is relative to ("" for
// absolute paths). lowerDirs are lowest first, as image layers are listed;
// overlay wants the top one first.
func Options(lowerDirs []string, upper, work string) (data, chdir string, err error) {
	if len(lowerDirs) == 0 {
		return "", "", fmt.Errorf("overlay: no lower layers")
	}
	for _, p := range append([]string{upper, work}, lowerDirs...) {
		if err := checkPath(p); err != nil {
			return "", "", err
		}
	}
	build := func(lowers []string) string {
		rev := make([]string, len(lowers))
		for i, l := range lowers {
			rev[len(lowers)-1-i] = l
		}
		s := "lowerdir=" + strings.Join(rev, ":")
		if upper != "" {
			s += ",upperdir=" + upper + ",workdir=" + work
		}
		return s
	}
	data = build(lowerDirs)
	if len(data) <= maxData {
		return data, "", nil
	}
	// Too long: short links relative to the store root.
	short := make([]string, len(lowerDirs))
	for i, l := range lowerDirs {
		root, rel, ok := shortLink(l)
		if !ok || (chdir != "" && root != chdir) {
			return "", "", fmt.Errorf("overlay: mount data for %d layers exceeds %d bytes and the layers have no short links", len(lowerDirs), maxData)
		}
		chdir, short[i] = root, rel
	}
	data = build(short)
	if len(data) > maxData {
		return "", "", fmt.Errorf("overlay: mount data for %d layers exceeds %d bytes even with short links", len(lowerDirs), maxData)
	}
	return data, chdir, nil
}

// Mount mounts lowerDirs (lowest first) at merged, with upper and work as
// the writable layer. With upper == "" the mount has no writable layer.
// readonly makes the merged mount read-only.
func Mount(lowerDirs []string, upper, work, merged string, readonly bool) error {
	var err error
	if merged, err = filepath.Abs(merged); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	if upper != "" {
		if upper, err = filepath.Abs(upper); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		if work, err = filepath.Abs(work); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("overlay: %w", err)
			}
		}
	}
	if err := os.MkdirAll(merged, 0o755); err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	var flags uintptr
	if readonly {
		flags |= unix.MS_RDONLY
	}
	if upper == "" && len(lowerDirs) == 1 {
		// overlayfs wants two lower layers without an upper one: a
		// read-only bind mount is the same thing.
		if err := unix.Mount(lowerDirs[0], merged, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("overlay: bind %s: %w", lowerDirs[0], err)
		}
		if err := unix.Mount("", merged, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(merged, unix.MNT_DETACH)
			return fmt.Errorf("overlay: remount read-only: %w", err)
		}
		return nil
	}
	data, dir, err := Options(lowerDirs, upper, work)
	if err != nil {
		return err
	}
	logrus.Debugf("overlay: mount %s (in %q) at %s", data, dir, merged)
	if err := mountIn(dir, "overlay", merged, "overlay", flags, data); err != nil {
		return fmt.Errorf("overlay: mount %d layers at %s: %w", len(lowerDirs), merged, err)
	}
	return nil
}

// mountIn calls mount(2) with dir as the working directory of the calling
// thread only: the thread unshares its fs context and is thrown away.
func mountIn(dir, source, target, fstype string, flags uintptr, data string) error {
	if dir == "" {
		return unix.Mount(source, target, fstype, flags, data)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread exits with the goroutine, and
		// its private working directory with it.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- unix.Mount(source, target, fstype, flags, data)
	}()
	return <-errc
}

// Unmount unmounts merged; it is not an error if nothing is mounted there.
func Unmount(merged string) error {
	_, err := UnmountDetached(merged)
	return err
}

// UnmountDetached is Unmount that also says whether merged was busy and
// only detached: a process may still use its files, through the mount
// that lives on out of sight, until it lets go.
func UnmountDetached(merged string) (detached bool, err error) {
	err = unix.Unmount(merged, 0)
	if errors.Is(err, unix.EBUSY) {
		logrus.Debugf("overlay: %s busy, detaching", merged)
		detached = true
		err = unix.Unmount(merged, unix.MNT_DETACH)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return detached, nil
	}
	return false, fmt.Errorf("overlay: unmount %s: %w", merged, err)
}
