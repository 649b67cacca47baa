package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUnpackMetadata(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	xf := file("etc/xattr", []byte("x"), 0o644)
	xf.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.berth": "yes", "SCHILY.xattr.trusted.berth": "t"}
	owned := file("home/alice/f", []byte("hi"), 0o4750)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	tarb := makeTar(t,
		dir("./", 0o755),
		dir("etc/", 0o751),
		file("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644),
		xf,
		dir("home/alice/", 0o700),
		owned,
		symlink("bin", "usr/bin"),
		symlink("abs", "/etc/passwd"),
		hardlink("etc/passwd.hl", "etc/passwd"),
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o600}},
		file("gone/.wh.old", nil, 0o644),
		dir("opq/", 0o755),
		file("opq/.wh..wh..opq", nil, 0o644),
		file("opq/new", []byte("n"), 0o644),
		file(".wh..wh.plnk/123", nil, 0o644),
	)
	size, err := Unpack(root, bytes.NewReader(tarb), UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len("root:x:0:0::/root:/bin/sh\n")+1+2+1) {
		t.Errorf("size = %d", size)
	}
	var st unix.Stat_t
	must := func(p string) *unix.Stat_t {
		t.Helper()
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	if s := must("etc"); s.Mode&0o7777 != 0o751 || s.Mtim.Sec != 1600000000 {
		t.Errorf("etc mode %o mtime %d", s.Mode&0o7777, s.Mtim.Sec)
	}
	if s := must("home/alice/f"); s.Uid != 1000 || s.Gid != 1001 || s.Mode&0o7777 != 0o4750 || s.Mtim.Sec != 1700000000 {
		t.Errorf("owned file: uid %d gid %d mode %o mtime %d", s.Uid, s.Gid, s.Mode&0o7777, s.Mtim.Sec)
	}
	if l, _ := os.Readlink(filepath.Join(root, "abs")); l != "/etc/passwd" {
		t.Errorf("abs symlink = %q", l)
	}
	if s := must("abs"); s.Mtim.Sec != 1500000000 {
		t.Errorf("symlink mtime %d", s.Mtim.Sec)
	}
	ino := must("etc/passwd").Ino
	if s := must("etc/passwd.hl"); s.Ino != ino || s.Nlink != 2 {
		t.Errorf("hardlink not shared: %d %d", s.Ino, ino)
	}
	if s := must("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if s := must("dev/fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo mode %o", s.Mode)
	}
	if s := must("gone/old"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", s.Mode, s.Rdev)
	}
	xattr := func(path, name string) (string, error) {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(path, name, buf)
		if err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	if v, err := xattr(filepath.Join(root, "opq"), "trusted.overlay.opaque"); err != nil || v != "y" {
		t.Errorf("opaque xattr: %q %v", v, err)
	}
	if v, err := xattr(filepath.Join(root, "etc/xattr"), "user.berth"); err != nil || v != "yes" {
		t.Errorf("user xattr: %q %v", v, err)
	}
	if _, err := os.Lstat(filepath.Join(root, ".wh..wh.plnk")); err == nil {
		// the directory itself may exist; its whiteout-meta content must not
		if _, err := os.Lstat(filepath.Join(root, ".wh..wh.plnk/123")); err == nil {
			t.Errorf("meta whiteout kept")
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "opq/.wh..wh..opq")); err == nil {
		t.Errorf("opaque marker kept as a file")
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	requireRoot(t)
	cases := map[string][]tarEntry{
		"dotdot":             {file("../evil", []byte("x"), 0o644)},
		"dotdot-inner":       {dir("a/", 0o755), file("a/../../evil", []byte("x"), 0o644)},
		"abs-symlink-dir":    {symlink("etc", "/etc"), file("etc/evil", []byte("x"), 0o644)},
		"rel-symlink-dir":    {symlink("up", "../../../../.."), file("up/tmp/evil", []byte("x"), 0o644)},
		"hardlink-dotdot":    {hardlink("h", "../../../etc/passwd")},
		"hardlink-symlink":   {symlink("s", "/etc"), hardlink("h", "s/passwd")},
		"whiteout-symlink":   {symlink("s", "/tmp"), file("s/.wh.x", nil, 0o644)},
		"opaque-via-symlink": {symlink("s", "/tmp"), file("s/.wh..wh..opq", nil, 0o644)},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			outer := t.TempDir()
			root := filepath.Join(outer, "a", "b", "layer")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Unpack(root, bytes.NewReader(makeTar(t, entries...)), UnpackOptions{})
			if err == nil {
				t.Fatal("unpack succeeded")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err)
			}
			t.Logf("error: %v", err)
			// Nothing was written outside the layer.
			filepath.Walk(outer, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !strings.HasPrefix(p, root) && !fi.IsDir() {
					t.Errorf("file outside the layer: %s", p)
				}
				return nil
			})
			if _, err := os.Lstat("/etc/evil"); err == nil {
				t.Fatal("/etc/evil written")
			}
		})
	}
}

func TestUnpackReplaces(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	// A symlink replaced by a file must not be written through.
	_, err := Unpack(root, bytes.NewReader(makeTar(t,
		symlink("x", "/etc/passwd"),
		file("x", []byte("mine"), 0o644),
		dir("d/", 0o755), file("d/f", []byte("1"), 0o644),
		file("d", []byte("now a file"), 0o600),
	)), UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "x")); string(b) != "mine" {
		t.Errorf("x = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "d")); string(b) != "now a file" {
		t.Errorf("d = %q", b)
	}
	_ = time.Now
}
