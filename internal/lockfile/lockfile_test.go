package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	f, err := Open(p, unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description is a second owner, as another
	// process would be.
	if _, err := Open(p, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second exclusive lock: %v, want EWOULDBLOCK", err)
	}
	if _, err := Open(p, unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("shared lock under an exclusive one: %v, want EWOULDBLOCK", err)
	}
	f.Close()
	g, err := Open(p, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	g.Close()
}

func TestSharedLocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := Open(p, unix.LOCK_SH)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(p, unix.LOCK_SH|unix.LOCK_NB)
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	defer b.Close()
	if _, err := Open(p, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("exclusive lock under shared ones: %v, want EWOULDBLOCK", err)
	}
}

func TestOpenDir(t *testing.T) {
	d := t.TempDir()
	f, err := OpenDir(d, unix.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(d, unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second lock on the directory: %v, want EWOULDBLOCK", err)
	}
	f.Close()
	if _, err := OpenDir(filepath.Join(d, "gone"), unix.LOCK_EX); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing directory: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(d, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("OpenDir made the directory")
	}
}
