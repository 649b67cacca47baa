package buildctx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// writeTree makes the files of spec under dir: a value "->target" makes a
// symlink, a name ending in "/" a directory, anything else a file with
// that content (mode 0644).
func writeTree(t *testing.T, dir string, spec map[string]string) {
	t.Helper()
	for name, content := range spec {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func openCtx(t *testing.T, dir, dockerfile string) *Context {
	t.Helper()
	c, err := Open(dir, dockerfile, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openDst opens a directory as the destination root of a copy.
func openDst(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func resolve(t *testing.T, c *Context, args ...string) []Source {
	t.Helper()
	srcs, err := c.Resolve(args)
	if err != nil {
		t.Fatalf("resolve %v: %v", args, err)
	}
	return srcs
}

func copyTo(t *testing.T, c *Context, dst *os.File, dest string, opts CopyOptions, args ...string) {
	t.Helper()
	if err := c.Copy(dst, dest, resolve(t, c, args...), opts); err != nil {
		t.Fatalf("copy %v to %s: %v", args, dest, err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, os.ErrNotExist)
}
