// Package nsfile keeps network namespaces as files: a bind mount of a
// namespace's nsfs inode on an empty file, so the namespace outlives the
// processes in it and anything (exec, a "container:" peer, a restart)
// can join it by path.
package nsfile

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Create makes a new, empty network namespace (only a down loopback) and
// binds it to path, which must not exist. The directory of path must
// exist. On error nothing is left behind.
func Create(path string) error { return create(path, false) }

// CreateUp is Create with the namespace's loopback brought up, as a
// container's namespace wants it. It does that on the thread that made
// the namespace, before binding it, which spares joining it again.
func CreateUp(path string) error { return create(path, true) }

func create(path string, loUp bool) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread that unshares ends up in the new namespace; it stays
		// locked so it exits with this goroutine instead of going back to
		// the pool, where other goroutines would open sockets in the
		// wrong namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		if loUp {
			if err := loopbackUp(); err != nil {
				errc <- err
				return
			}
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind network namespace to %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// loopbackUp sets lo up in the calling thread's network namespace. An
// ioctl on a datagram socket is all it takes: in a new namespace lo is
// there, down, and has its addresses once up.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up container lo: socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up container lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up container lo: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up container lo: %w", err)
	}
	return nil
}

// Open opens the namespace bound at path, checking that it is one (a
// plain file left by a crash between create and mount is not).
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open netns: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	if st.Type != unix.NSFS_MAGIC {
		f.Close()
		return nil, fmt.Errorf("open netns %s: not a namespace file", path)
	}
	return f, nil
}

// Remove unmounts and unlinks path. A path that is missing, or a file
// that was never mounted (a crash mid-Create), is removed without error,
// so teardown can be repeated.
func Remove(path string) error {
	// MNT_DETACH: a process still in the namespace keeps it alive; the
	// file only stops naming it.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// Do runs fn on a thread inside the namespace bound at path. Sockets
// fn opens stay in that namespace wherever they are used later, and
// processes fn starts (os/exec forks from the calling thread) start in
// it. The thread is never returned to Go's pool: it exits when fn
// returns, so no other goroutine can ever run in the wrong namespace.
func Do(path string, fn func() error) error {
	ns, err := Open(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: see above.
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join netns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
