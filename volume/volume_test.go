package volume

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCreateEnsureRemovePrune(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("data", map[string]string{"k": "v"}, nil)
	if err != nil || v.Name != "data" || v.Labels["k"] != "v" || v.Driver != "local" {
		t.Fatalf("create: %+v %v", v, err)
	}
	if again, err := s.Create("data", nil, nil); err != nil || again.Mountpoint != v.Mountpoint {
		t.Errorf("create is not idempotent: %+v %v", again, err)
	}
	name, path, created, err := s.Ensure("data")
	if err != nil || created || name != "data" || path != v.Mountpoint {
		t.Errorf("ensure existing: %s %s %v %v", name, path, created, err)
	}
	anon, _, created, err := s.Ensure("")
	if err != nil || !created || len(anon) != 64 {
		t.Errorf("ensure anonymous: %s %v %v", anon, created, err)
	}
	for _, bad := range []string{"", "../x", "a/b", "-x", "a b"} {
		if _, err := s.Create(bad+"?", nil, nil); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := s.Create("x", nil, map[string]string{"type": "nfs"}); err == nil {
		t.Errorf("driver option accepted")
	}
	s.InUse = func(n string) ([]string, error) {
		if n == "data" {
			return []string{"web"}, nil
		}
		return nil, nil
	}
	if err := s.Remove("data", false); !errors.Is(err, ErrInUse) {
		t.Errorf("remove in use: %v", err)
	}
	os.WriteFile(filepath.Join(v.Mountpoint, "f"), []byte("12345"), 0o644)
	if n, _ := s.Size("data"); n != 5 {
		t.Errorf("size %d", n)
	}
	s.Create("named", nil, nil)
	removed, _, err := s.Prune(false)
	if err != nil || len(removed) != 1 || removed[0] != anon {
		t.Errorf("prune: %v %v", removed, err)
	}
	removed, _, _ = s.Prune(true)
	if len(removed) != 1 || removed[0] != "named" {
		t.Errorf("prune -a: %v (data is in use)", removed)
	}
	if err := s.Remove("data", true); err != nil {
		t.Errorf("remove -f: %v", err)
	}
	if _, err := s.Get("data"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
	if vols, _ := s.List(); len(vols) != 0 {
		t.Errorf("left: %v", vols)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s, _ := Open(t.TempDir())
	var wg sync.WaitGroup
	created := make(chan bool, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, c, err := s.Ensure("same")
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d creators", n)
	}
}

func TestCopyUp(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(src, "d/e"), 0o750)
	os.WriteFile(filepath.Join(src, "d/f"), []byte("x"), 0o604)
	os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "hard"))
	os.Symlink("/etc/passwd", filepath.Join(src, "link"))
	unix.Mkfifo(filepath.Join(src, "fifo"), 0o600)
	os.Lchown(filepath.Join(src, "d/f"), 1000, 2000)
	unix.Chmod(src, 0o1777)
	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	st := func(p string) *syscall.Stat_t {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t)
	}
	f := st(filepath.Join(dst, "d/f"))
	if f.Uid != 1000 || f.Gid != 2000 || f.Mode&0o7777 != 0o604 {
		t.Errorf("file owner/mode %d:%d %o", f.Uid, f.Gid, f.Mode&0o7777)
	}
	if h := st(filepath.Join(dst, "hard")); h.Ino != f.Ino {
		t.Errorf("hard link not kept")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "/etc/passwd" {
		t.Errorf("symlink %q", l)
	}
	if st(filepath.Join(dst, "fifo")).Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo not kept")
	}
	if st(dst).Mode&0o7777 != 0o1777 || st(filepath.Join(dst, "d")).Mode&0o777 != 0o750 {
		t.Errorf("dir modes %o %o", st(dst).Mode&0o7777, st(filepath.Join(dst, "d")).Mode&0o777)
	}
}
