package nsfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// hostNS is the test process's netns, taken before any test runs: later
// /proc/self/ns/net may name a created namespace, because a goroutine
// locked on the main thread that exits wedges that thread (Go never
// ends the main thread) rather than ending it.
var hostNS = func() uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		panic(err)
	}
	return st.Ino
}()

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// threadNS is the netns inode of the calling thread.
func threadNS() (uint64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	err := unix.Stat("/proc/thread-self/ns/net", &st)
	return st.Ino, err
}

func TestCreateDoRemove(t *testing.T) {
	needRoot(t)
	p := filepath.Join(t.TempDir(), "ns")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(p) })
	host := hostNS
	nsIno := inode(t, p)
	if nsIno == host {
		t.Fatal("namespace file names the host's namespace")
	}
	var inside uint64
	if err := Do(p, func() error {
		var err error
		inside, err = threadNS()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside != nsIno {
		t.Fatalf("Do ran in netns %d, want %d", inside, nsIno)
	}
	if err := Create(p); err == nil {
		t.Fatal("Create over an existing file succeeded")
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("netns file still there: %v", err)
	}
	if err := Remove(p); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestOpenRefusesPlainFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(p); err == nil {
		f.Close()
		t.Fatal("Open accepted a plain file")
	}
	if err := Remove(p); err != nil {
		t.Fatalf("Remove of an unmounted file: %v", err)
	}
}

// Threads used to create or enter a namespace must never serve other
// goroutines: after many concurrent Create and Do calls, every thread of
// the pool is still in the host's namespace.
func TestConcurrentNoThreadLeak(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	host := hostNS
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	fail := func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() }
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := filepath.Join(dir, fmt.Sprint(i))
			if err := Create(p); err != nil {
				fail(err)
				return
			}
			defer func() {
				if err := Remove(p); err != nil {
					fail(err)
				}
			}()
			for range 4 {
				if err := Do(p, func() error { return nil }); err != nil {
					fail(err)
				}
			}
		}()
	}
	// Meanwhile and afterwards, goroutines on pooled threads check where
	// they are.
	check := func() {
		var cw sync.WaitGroup
		for range 4 * n {
			cw.Add(1)
			go func() {
				defer cw.Done()
				ino, err := threadNS()
				if err != nil {
					fail(err)
				} else if ino != host {
					fail(fmt.Errorf("a pooled thread is in netns %d, not the host's %d", ino, host))
				}
			}()
		}
		cw.Wait()
	}
	check()
	wg.Wait()
	check()
	for i, err := range failures {
		if i < 5 {
			t.Error(err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("%d netns files left", len(ents))
	}
}

// TestCreateUp: CreateUp's namespace has its loopback up (and 127.0.0.1
// answers there), Create's has it down.
func TestCreateUp(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		make func(string) error
		up   bool
	}{{"create", Create, false}, {"createup", CreateUp, true}} {
		p := filepath.Join(dir, c.name)
		if err := c.make(p); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Remove(p) })
		var flags uint16
		err := Do(p, func() error {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ifr, err := unix.NewIfreq("lo")
			if err != nil {
				return err
			}
			if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
				return err
			}
			flags = ifr.Uint16()
			if flags&unix.IFF_UP == 0 {
				return nil
			}
			// Up means usable: a datagram to 127.0.0.1 arrives.
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				return err
			}
			sa, err := unix.Getsockname(fd)
			if err != nil {
				return err
			}
			if err := unix.Sendto(fd, []byte("hi"), 0, sa); err != nil {
				return fmt.Errorf("send on lo: %w", err)
			}
			buf := make([]byte, 8)
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if err != nil || string(buf[:n]) != "hi" {
				return fmt.Errorf("receive on lo: %q, %v", buf[:n], err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := flags&unix.IFF_UP != 0; got != c.up {
			t.Errorf("%s: lo up %v, want %v (flags %#x)", c.name, got, c.up, flags)
		}
	}
}
