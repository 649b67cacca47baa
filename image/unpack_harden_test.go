package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A layer that turns a directory it made into a symlink to a host
// directory must not have the deferred directory times applied through
// that symlink.
func TestUnpackDirTimesStayInside(t *testing.T) {
	requireRoot(t)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	outside := filepath.Join(tmp, "outside")
	for _, d := range []string{root, filepath.Join(outside, "b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1234567, 0)
	if err := os.Chtimes(filepath.Join(outside, "b"), old, old); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]tarEntry{
		// a/b's time is applied at the end, by then a leads outside.
		"replaced-by-symlink": {dir("a/", 0o755), dir("a/b/", 0o700), symlink("a", outside)},
		// Same through a whiteout of a, then the symlink.
		"whiteout-then-symlink": {dir("a/", 0o755), dir("a/b/", 0o700), file(".wh.a", nil, 0o644), symlink("a", outside)},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.RemoveAll(root); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := Unpack(root, bytes.NewReader(makeTar(t, entries...)), UnpackOptions{})
			t.Logf("unpack: %v", err)
			fi, err := os.Stat(filepath.Join(outside, "b"))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(old) {
				t.Errorf("%s/b mtime changed to %v by the layer", outside, fi.ModTime())
			}
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("%s/b mode changed to %v by the layer", outside, fi.Mode())
			}
		})
	}
}

// The layer's directories still get their own times, after their
// children were made.
func TestUnpackDirTimesApplied(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	d := dir("a/b/", 0o700)
	d.hdr.ModTime = time.Unix(1000000000, 0)
	if _, err := Unpack(root, bytes.NewReader(makeTar(t, dir("./", 0o711), dir("a/", 0o755), d, file("a/b/f", []byte("x"), 0o644))), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "a/b"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Sec != 1000000000 || st.Mode&0o7777 != 0o700 {
		t.Errorf("a/b: mtime %d mode %o", st.Mtim.Sec, st.Mode&0o7777)
	}
	if err := unix.Lstat(root, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mtim.Sec != 1600000000 || st.Mode&0o7777 != 0o711 {
		t.Errorf("root: mtime %d mode %o", st.Mtim.Sec, st.Mode&0o7777)
	}
}

func getxattr(t *testing.T, p, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// trusted.* xattrs in a layer (overlayfs acts on trusted.overlay.*) are
// not applied; other namespaces are.
func TestUnpackDropsTrustedXattrs(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	withX := func(e tarEntry, kv ...string) tarEntry {
		e.hdr.PAXRecords = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			e.hdr.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
		}
		return e
	}
	tarb := makeTar(t,
		dir("other/", 0o755), file("other/secret", []byte("s"), 0o600),
		withX(dir("d/", 0o755), "trusted.overlay.redirect", "/other", "trusted.berth", "t", "user.keep", "u"),
		withX(file("f", []byte("x"), 0o644), "trusted.overlay.metacopy", "", "trusted.berth", "t", "user.keep", "u"),
		withX(symlink("l", "f"), "trusted.overlay.origin", "x", "security.berth-test", "s"),
		withX(tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o600}}, "trusted.berth", "t"),
		withX(dir("./", 0o755), "trusted.overlay.opaque", "y"),
		dir("o/", 0o755), file("o/.wh..wh..opq", nil, 0o644),
	)
	if _, err := Unpack(root, bytes.NewReader(tarb), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ p, name string }{
		{"d", "trusted.overlay.redirect"}, {"d", "trusted.berth"},
		{"f", "trusted.overlay.metacopy"}, {"f", "trusted.berth"},
		{"l", "trusted.overlay.origin"}, {"p", "trusted.berth"},
		{".", "trusted.overlay.opaque"},
	} {
		if v, err := getxattr(t, filepath.Join(root, c.p), c.name); !errors.Is(err, unix.ENODATA) {
			t.Errorf("%s: xattr %s = %q (%v), want none", c.p, c.name, v, err)
		}
	}
	for _, c := range []struct{ p, name, want string }{
		{"d", "user.keep", "u"}, {"f", "user.keep", "u"}, {"l", "security.berth-test", "s"},
		// berth's own opaque marker from a whiteout stays.
		{"o", "trusted.overlay.opaque", "y"},
	} {
		if v, err := getxattr(t, filepath.Join(root, c.p), c.name); err != nil || v != c.want {
			t.Errorf("%s: xattr %s = %q (%v), want %q", c.p, c.name, v, err, c.want)
		}
	}
}

// Descriptors of directories are not kept one per directory, nor one
// per level of a deep path: the unpack works under a descriptor limit
// far below the number of directories.
func TestUnpackBoundedFds(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	var entries []tarEntry
	for i := 0; i < 3*maxCachedDirs; i++ {
		n := fmt.Sprintf("d%d/e%d/", i%7, i)
		entries = append(entries, dir(n, 0o755), file(n+"f", []byte("x"), 0o644))
	}
	deep := strings.Repeat("p/", 3*maxCachedDirs)
	entries = append(entries, file(deep+"f", []byte("deep"), 0o644))
	tarb := makeTar(t, entries...)

	before := countFds(t)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(before + maxCachedDirs + 32)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	_, err := Unpack(root, bytes.NewReader(tarb), UnpackOptions{})
	if rerr := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("unpack under a limit of %d descriptors: %v", low.Cur, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, deep, "f")); err != nil || string(b) != "deep" {
		t.Errorf("deep file: %q %v", b, err)
	}
	if after := countFds(t); after != before {
		t.Errorf("descriptors leaked: %d before, %d after", before, after)
	}
}

func countFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A directory removed by a later entry and made again gets that entry's
// content: no descriptor of the removed one is written through.
func TestUnpackRecreatedDirs(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	tarb := makeTar(t,
		dir("a/", 0o755), file("a/x", []byte("x"), 0o644),
		file(".wh.a", nil, 0o644), dir("a/", 0o755),
		file("a/y", []byte("y"), 0o644),
		dir("d/", 0o755), dir("d/e/", 0o755), file("d/e/f", []byte("f"), 0o644),
		file("d", []byte("file"), 0o644),
		dir("d/", 0o750), file("d/e/g", []byte("g"), 0o644),
	)
	if _, err := Unpack(root, bytes.NewReader(tarb), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"a/y": "y", "d/e/g": "g"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"a/x", "d/e/f"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s survived its removal", p)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "d")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 || fi.ModTime().Unix() != 1600000000 {
		t.Errorf("d: %v %v", fi, err)
	}
}
