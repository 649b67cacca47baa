package buildctx

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func checksum(t *testing.T, c *Context, args ...string) digest.Digest {
	t.Helper()
	d, err := c.Checksum(resolve(t, c, args...))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The key changes with what a copy carries (content, mode, owner, link
// target, names) and not with an ignored file or a touch.
func TestChecksumChanges(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore": "app/*.tmp\n",
		"app/main.go":   "package main",
		"app/x.tmp":     "scratch",
		"app/link":      "->main.go",
		"other.txt":     "o",
	})
	c := openCtx(t, dir, "")
	base := checksum(t, c, "app")
	if again := checksum(t, c, "app"); again != base {
		t.Fatalf("same tree, different keys %s %s", base, again)
	}
	step := func(what string, change func(), wantChange bool) {
		t.Helper()
		change()
		got := checksum(t, c, "app")
		if (got != base) != wantChange {
			t.Errorf("%s: key changed=%v, want %v", what, got != base, wantChange)
		}
		base = got
	}
	p := filepath.Join(dir, "app/main.go")
	step("ignored file changed", func() { os.WriteFile(filepath.Join(dir, "app/x.tmp"), []byte("other"), 0o644) }, false)
	step("ignored file added", func() { os.WriteFile(filepath.Join(dir, "app/y.tmp"), nil, 0o644) }, false)
	step("file outside the source changed", func() { os.WriteFile(filepath.Join(dir, "other.txt"), []byte("p"), 0o644) }, false)
	step("touched", func() { now := time.Now().Add(time.Hour); os.Chtimes(p, now, now) }, false)
	step("content", func() { os.WriteFile(p, []byte("package main\n"), 0o644) }, true)
	step("same size, other content", func() { os.WriteFile(p, []byte("package mainX"), 0o644) }, true)
	step("mode", func() { os.Chmod(p, 0o755) }, true)
	step("owner", func() { os.Lchown(p, 1000, 1000) }, true)
	step("link target", func() { os.Remove(filepath.Join(dir, "app/link")); os.Symlink("other", filepath.Join(dir, "app/link")) }, true)
	step("file added", func() { os.WriteFile(filepath.Join(dir, "app/new.go"), nil, 0o644) }, true)
	step("file renamed", func() { os.Rename(filepath.Join(dir, "app/new.go"), filepath.Join(dir, "app/new2.go")) }, true)
	step("empty dir added", func() { os.Mkdir(filepath.Join(dir, "app/d"), 0o755) }, true)
	// The key also differs between sources of the same content.
	if checksum(t, c, "app") == checksum(t, c, "app", "other.txt") {
		t.Error("one more source, same key")
	}
}

// A rebuild after touching one file in 20,000 reads that one file only,
// also from a fresh Context (the cache lives in cacheDir).
func TestChecksumIncremental(t *testing.T) {
	const n = 20000
	dir, cacheDir := t.TempDir(), t.TempDir()
	for d := 0; d < 100; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < n/100; f++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), []byte(fmt.Sprintf("file %d/%d", d, f)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Files changed within racyWindow of their hashing are not
	// remembered (their next change could go unseen): let them age.
	time.Sleep(2 * racyWindow)
	open := func() *Context {
		c, err := Open(dir, "", cacheDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1 := open()
	first := checksum(t, c1, ".")
	if got := c1.FilesRead(); got != n {
		t.Fatalf("first checksum read %d files, want %d", got, n)
	}
	start := time.Now()
	c2 := open()
	second := checksum(t, c2, ".")
	t.Logf("no-change checksum of %d files (cache load included): %v", n, time.Since(start))
	if second != first || c2.FilesRead() != 0 {
		t.Fatalf("unchanged context: key %s vs %s, %d files read, want 0", second, first, c2.FilesRead())
	}
	p := filepath.Join(dir, "d042/f007")
	if err := os.WriteFile(p, []byte("changed!"), 0o644); err != nil {
		t.Fatal(err)
	}
	c3 := open()
	third := checksum(t, c3, ".")
	if third == first || c3.FilesRead() != 1 {
		t.Fatalf("one file changed: key changed %v, %d files read, want 1", third != first, c3.FilesRead())
	}
	// A removed file leaves the cache with the next whole-tree checksum.
	if err := os.Remove(filepath.Join(dir, "d000/f000")); err != nil {
		t.Fatal(err)
	}
	c5 := open()
	checksum(t, c5, ".")
	if _, ok := c5.cache.m["d000/f000"]; ok || len(c5.cache.m) > n-1 {
		t.Errorf("cache holds %d entries (d000/f000: %v), want at most %d", len(c5.cache.m), ok, n-1)
	}
	// A file rewritten with the same size and restored times is caught
	// by its ctime.
	st := lstat(t, p)
	if err := os.WriteFile(p, []byte("changed?"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
	c4 := open()
	if fourth := checksum(t, c4, "."); fourth == third || c4.FilesRead() != 1 {
		t.Fatalf("same size, same mtime, new content: key changed %v, %d files read", fourth != third, c4.FilesRead())
	}
}
