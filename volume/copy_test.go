package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCopyUp(t *testing.T) {
	root := os.Geteuid() == 0
	src, dst := t.TempDir(), t.TempDir()
	p := func(s string) string { return filepath.Join(src, s) }
	must(t, os.MkdirAll(p("d/e"), 0o750))
	must(t, os.WriteFile(p("d/f"), []byte("content"), 0o600))
	must(t, os.Link(p("d/f"), p("hard")))
	must(t, os.Link(p("d/f"), p("d/e/hard2")))
	must(t, os.Symlink("/etc/passwd", p("abs")))
	must(t, os.Symlink("../../../../etc", p("d/rel")))
	must(t, os.Symlink("missing", p("dangling")))
	must(t, unix.Mkfifo(p("fifo"), 0o640))
	must(t, os.WriteFile(p("d/e/empty"), nil, 0o444))
	if root {
		must(t, os.Lchown(p("d/f"), 1000, 2000))
		must(t, os.Lchown(p("d"), 33, 44))
		must(t, os.Lchown(p("abs"), 7, 8))
		must(t, os.Lchown(src, 1234, 5678))
		must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	must(t, unix.Chmod(p("d/f"), 0o4755)) // the copy's chown must not clear it
	xattrs := unix.Setxattr(p("d/e/empty"), "user.berth", []byte("v"), 0) == nil
	must(t, unix.Chmod(src, 0o1777))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	for _, f := range []string{"d/f", "d/e", "d", "fifo"} {
		must(t, os.Chtimes(p(f), old, old))
	}
	must(t, unix.Lutimes(p("abs"), []unix.Timeval{unix.NsecToTimeval(old.UnixNano()), unix.NsecToTimeval(old.UnixNano())}))

	if err := CopyUp(src, dst); err != nil {
		t.Fatal(err)
	}
	q := func(s string) string { return filepath.Join(dst, s) }
	f := lstat(t, q("d/f"))
	if b, _ := os.ReadFile(q("d/f")); string(b) != "content" {
		t.Errorf("content %q", b)
	}
	if f.Mode&0o7777 != 0o4755 {
		t.Errorf("file mode %o", f.Mode&0o7777)
	}
	if root && (f.Uid != 1000 || f.Gid != 2000) {
		t.Errorf("file owner %d:%d", f.Uid, f.Gid)
	}
	if f.Mtim.Sec != old.Unix() || f.Mtim.Nsec != 7000 {
		t.Errorf("file mtime %v", f.Mtim)
	}
	if lstat(t, q("hard")).Ino != f.Ino || lstat(t, q("d/e/hard2")).Ino != f.Ino || f.Nlink != 3 {
		t.Errorf("hard links not kept (nlink %d)", f.Nlink)
	}
	for link, want := range map[string]string{"abs": "/etc/passwd", "d/rel": "../../../../etc", "dangling": "missing"} {
		if l, err := os.Readlink(q(link)); err != nil || l != want {
			t.Errorf("symlink %s: %q %v", link, l, err)
		}
	}
	if a := lstat(t, q("abs")); a.Mtim.Sec != old.Unix() || root && (a.Uid != 7 || a.Gid != 8) {
		t.Errorf("symlink's own owner/times: %d:%d %v", a.Uid, a.Gid, a.Mtim)
	}
	if fi := lstat(t, q("fifo")); fi.Mode&unix.S_IFMT != unix.S_IFIFO || fi.Mode&0o777 != 0o640 || fi.Mtim.Sec != old.Unix() {
		t.Errorf("fifo %o", fi.Mode)
	}
	if root {
		if n := lstat(t, q("null")); n.Mode&unix.S_IFMT != unix.S_IFCHR || n.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("device node %o %x", n.Mode, n.Rdev)
		}
	}
	d := lstat(t, q("d"))
	if d.Mode&0o7777 != 0o750 || d.Mtim.Sec != old.Unix() || root && (d.Uid != 33 || d.Gid != 44) {
		t.Errorf("dir d: mode %o mtime %v owner %d:%d", d.Mode&0o7777, d.Mtim, d.Uid, d.Gid)
	}
	if e := lstat(t, q("d/e")); e.Mtim.Sec != old.Unix() {
		t.Errorf("dir mtime set before its entries were made: %v", e.Mtim)
	}
	top := lstat(t, dst)
	if top.Mode&0o7777 != 0o1777 || root && (top.Uid != 1234 || top.Gid != 5678) {
		t.Errorf("top dir: mode %o owner %d:%d", top.Mode&0o7777, top.Uid, top.Gid)
	}
	if xattrs {
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(q("d/e/empty"), "user.berth", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr: %q %v", buf[:n], err)
		}
	}
	// Nothing was followed: the links' targets were not copied.
	if _, err := os.Stat(q("d/rel/passwd")); err == nil {
		if fi := lstat(t, q("d/rel")); fi.Mode&unix.S_IFMT != unix.S_IFLNK {
			t.Errorf("d/rel was followed")
		}
	}
}

func TestCopyUpRefuses(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.MkdirAll(real, 0o755))
	must(t, os.WriteFile(filepath.Join(real, "secret"), []byte("s"), 0o600))
	must(t, os.Symlink(real, filepath.Join(base, "link")))
	must(t, os.WriteFile(filepath.Join(base, "file"), nil, 0o600))
	for _, src := range []string{filepath.Join(base, "link"), filepath.Join(base, "file"), filepath.Join(base, "missing")} {
		dst := t.TempDir()
		if err := CopyUp(src, dst); err == nil {
			t.Errorf("CopyUp(%s) accepted", src)
		}
		if names, _ := os.ReadDir(dst); len(names) != 0 {
			t.Errorf("CopyUp(%s) left %v", src, names)
		}
	}
	// A volume that already has content is not filled.
	dst := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dst, "mine"), nil, 0o600))
	if err := CopyUp(real, dst); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty destination: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "secret")); err == nil {
		t.Errorf("copied into a non-empty destination")
	}
}

func TestCopyUpFailureLeavesDestinationEmpty(t *testing.T) {
	// The destination inside the source would copy forever; it is refused
	// part-way, after some entries were made.
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("x"), 0o644))
	dst := filepath.Join(src, "b", "vol")
	must(t, os.MkdirAll(dst, 0o700))
	must(t, os.Chmod(src, 0o755))
	err := CopyUp(src, dst)
	if err == nil || !strings.Contains(err.Error(), "destination is inside the source") {
		t.Fatalf("copy into itself: %v", err)
	}
	if names, _ := os.ReadDir(dst); len(names) != 0 {
		t.Errorf("failed copy left %v", names)
	}
	if m := lstat(t, dst).Mode & 0o7777; m != 0o700 {
		t.Errorf("failed copy changed the destination's mode to %o", m)
	}
}
