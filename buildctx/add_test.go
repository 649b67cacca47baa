package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// makeTar builds a tar of entries name -> content ("->t" a symlink,
// trailing "/" a directory), owned by 1234:2345.
func makeTar(t *testing.T, entries [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e[0], Mode: 0o640, Uid: 1234, Gid: 2345, ModTime: time.Unix(1600000000, 0)}
		switch {
		case strings.HasSuffix(e[0], "/"):
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		case strings.HasPrefix(e[1], "->"):
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, strings.TrimPrefix(e[1], "->")
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e[1]))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e[1]))
	}
	tw.Close()
	return buf.Bytes()
}

func TestAddArchives(t *testing.T) {
	plain := makeTar(t, [][2]string{{"pkg/", ""}, {"pkg/bin/tool", "tool"}, {"pkg/link", "->bin/tool"}})
	var gz, xzb bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	xw, err := xz.NewWriter(&xzb)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(plain)
	xw.Close()
	bz2, err := os.ReadFile("testdata/archive.tar.bz2")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"a.tar": plain, "a.tar.gz": gz.Bytes(), "a.txz": xzb.Bytes(), "a.tbz": bz2} {
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "notes.gz"), []byte{0x1f, 0x8b, 'n', 'o', 't'}, 0o644) // gzip magic, not gzip
	os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("just text"), 0o644)
	c := openCtx(t, dir, "")
	root := t.TempDir()
	dst := openDst(t, root)
	add := func(dest string, opts CopyOptions, args ...string) {
		t.Helper()
		opts.ExtractArchives = true
		srcs, err := c.ResolveOp("ADD", args)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Copy(dst, dest, srcs, opts); err != nil {
			t.Fatalf("ADD %v %s: %v", args, dest, err)
		}
	}
	for _, name := range []string{"a.tar", "a.tar.gz", "a.txz"} {
		add("/x/"+name, CopyOptions{}, name)
		base := filepath.Join(root, "x", name)
		if readFile(t, filepath.Join(base, "pkg/bin/tool")) != "tool" {
			t.Errorf("%s: not extracted", name)
		}
		if st := lstat(t, filepath.Join(base, "pkg/bin/tool")); st.Uid != 1234 || st.Gid != 2345 || st.Mode&0o7777 != 0o640 || st.Mtim.Sec != 1600000000 {
			t.Errorf("%s: owner %d:%d mode %o mtime %d: the archive's expected", name, st.Uid, st.Gid, st.Mode&0o7777, st.Mtim.Sec)
		}
		if l, _ := os.Readlink(filepath.Join(base, "pkg/link")); l != "bin/tool" {
			t.Errorf("%s: link %q", name, l)
		}
	}
	add("/bz", CopyOptions{}, "a.tbz")
	if readFile(t, filepath.Join(root, "bz/top/inner/file.txt")) != "from bzip2\n" {
		t.Error("bzip2 archive not extracted")
	}
	add("/owned", CopyOptions{Chown: "5:6", Chmod: "600"}, "a.tar")
	if st := lstat(t, filepath.Join(root, "owned/pkg/bin/tool")); st.Uid != 5 || st.Gid != 6 || st.Mode&0o7777 != 0o600 {
		t.Errorf("--chown/--chmod on extraction: %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	// What is not an archive is copied as it is.
	add("/files/", CopyOptions{}, "notes.gz", "plain.txt")
	if readFile(t, filepath.Join(root, "files/plain.txt")) != "just text" || !exists(filepath.Join(root, "files/notes.gz")) {
		t.Error("non-archives not copied")
	}
	// COPY never extracts.
	copyTo(t, c, dst, "/copied/", CopyOptions{}, "a.tar")
	if st := lstat(t, filepath.Join(root, "copied/a.tar")); st.Size != int64(len(plain)) {
		t.Error("COPY of an archive should copy the file")
	}
}

// An archive cannot write outside its destination: not by "..", not
// through a symlink it makes, not through a symlink of the image.
func TestAddArchiveEscapes(t *testing.T) {
	host := t.TempDir()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dotdot.tar"), makeTar(t, [][2]string{{"../../../../../../" + host + "/evil", "x"}}), 0o644)
	os.WriteFile(filepath.Join(dir, "link.tar"), makeTar(t, [][2]string{{"l", "->" + host}, {"l/evil", "x"}}), 0o644)
	os.WriteFile(filepath.Join(dir, "ok.tar"), makeTar(t, [][2]string{{"evil", "x"}}), 0o644)
	c := openCtx(t, dir, "")
	root := t.TempDir()
	os.Symlink(host, filepath.Join(root, "out"))
	dst := openDst(t, root)
	for _, name := range []string{"dotdot.tar", "link.tar"} {
		srcs := resolve(t, c, name)
		if err := c.Copy(dst, "/d/", srcs, CopyOptions{ExtractArchives: true}); err == nil {
			t.Errorf("%s: extracted without error", name)
		}
	}
	copyTo(t, c, dst, "/out/", CopyOptions{ExtractArchives: true}, "ok.tar")
	if exists(filepath.Join(host, "evil")) {
		t.Error("an archive wrote outside the root")
	}
	if !exists(filepath.Join(root, host, "evil")) {
		t.Error("ok.tar should land inside the root, where /out leads")
	}
}

func TestAddURL(t *testing.T) {
	body := []byte("downloaded content\n")
	lm := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/files/tool.bin":
			w.Header().Set("Last-Modified", lm.Format(http.TimeFormat))
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server on %s, want 127.0.0.1", srv.URL)
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/passwd": "app:x:10:20::/:/bin/sh\n"})
	dst := openDst(t, root)
	ctx := context.Background()
	d, err := Fetch(ctx, srv.URL+"/files/tool.bin?x=1", filepath.Join(t.TempDir(), "not/yet"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Name != "tool.bin" || !d.ModTime.Equal(lm) || d.Digest.String() != fmt.Sprintf("sha256:%x", sha256.Sum256(body)) {
		t.Errorf("download: %+v", d)
	}
	if err := d.CopyTo(dst, "/opt/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "opt/tool.bin")
	if readFile(t, p) != string(body) {
		t.Error("content")
	}
	if st := lstat(t, p); st.Mode&0o7777 != 0o600 || st.Uid != 0 || st.Mtim.Sec != lm.Unix() {
		t.Errorf("mode %o uid %d mtime %d: want 0600, root, Last-Modified", st.Mode&0o7777, st.Uid, st.Mtim.Sec)
	}
	if err := d.CopyTo(dst, "/named", CopyOptions{Chown: "app", Chmod: "755"}); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(root, "named")); st.Mode&0o7777 != 0o755 || st.Uid != 10 || st.Gid != 10 {
		t.Errorf("--chown/--chmod: %o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	// --checksum.
	good := fmt.Sprintf("sha256:%x", sha256.Sum256(body))
	if d2, err := Fetch(ctx, srv.URL+"/files/tool.bin", "", good); err != nil {
		t.Errorf("right checksum refused: %v", err)
	} else {
		d2.Close()
	}
	bad := "sha256:" + strings.Repeat("0", 64)
	if _, err := Fetch(ctx, srv.URL+"/files/tool.bin", "", bad); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("wrong checksum: %v", err)
	}
	if _, err := Fetch(ctx, srv.URL+"/files/tool.bin", "", "md5:abc"); err == nil {
		t.Error("bad checksum syntax accepted")
	}
	if _, err := Fetch(ctx, srv.URL+"/missing", "", ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	if _, err := Fetch(ctx, "ftp://127.0.0.1/x", "", ""); err == nil {
		t.Error("ftp accepted")
	}
	for raw, want := range map[string]string{"http://h/a/b.tgz?q": "b.tgz", "http://h/": "__unnamed__", "http://h": "__unnamed__"} {
		u, _ := url.Parse(raw)
		if got := urlName(u); got != want {
			t.Errorf("name of %s: %q, want %q", raw, got, want)
		}
	}
}
