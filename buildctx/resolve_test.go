package buildctx

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func rels(srcs []Source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.Rel)
	}
	return out
}

func TestIgnoreExceptions(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore":      "# comment\n*.log\n!keep.log\nsecret\nbuild\n!build/out/app\n",
		"a.log":              "x",
		"keep.log":           "k",
		"main.go":            "m",
		"secret/key":         "s",
		"build/tmp/junk":     "j",
		"build/out/app":      "app",
		"build/out/app.map":  "map",
		"docs/readme.md":     "r",
		"docs/debug.log":     "d",
		"other/Dockerfile":   "FROM scratch",
		"other/.placeholder": "",
	})
	c := openCtx(t, dir, "")
	for _, p := range []string{"a.log", "secret", "secret/key", "build/tmp/junk", "build/tmp"} {
		_, err := c.Resolve([]string{p})
		if err == nil || err.Error() != "COPY failed: file not found in build context: "+p {
			t.Errorf("resolve %s: want not found, got %v", p, err)
		}
	}
	for _, p := range []string{"keep.log", "main.go", "build/out/app", "docs/readme.md"} {
		resolve(t, c, p)
	}
	// An ignored directory with an exception inside exists with just
	// that, as in BuildKit's context.
	b := t.TempDir()
	copyTo(t, c, openDst(t, b), "/b/", CopyOptions{}, "build")
	if !exists(filepath.Join(b, "b/out/app")) || exists(filepath.Join(b, "b/tmp")) || exists(filepath.Join(b, "b/out/app.map")) {
		t.Error("COPY build: want just out/app")
	}
	if got := rels(resolve(t, c, "bui*")); !reflect.DeepEqual(got, []string{"build"}) {
		t.Errorf("bui* matched %v", got)
	}
	// A whole-context copy carries exactly what is not ignored, with the
	// excluded directory "build" made only for the exception inside it.
	dst := t.TempDir()
	copyTo(t, c, openDst(t, dst), "/", CopyOptions{}, ".")
	var got []string
	filepath.Walk(dst, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			r, _ := filepath.Rel(dst, p)
			got = append(got, r)
		}
		return nil
	})
	// "*.log" is anchored at the root, as in Docker: docs/debug.log stays.
	want := []string{".dockerignore", "build/out/app", "docs/debug.log", "docs/readme.md", "keep.log", "main.go", "other/.placeholder", "other/Dockerfile"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copied %v, want %v", got, want)
	}
	// Wildcards skip ignored paths.
	if got := rels(resolve(t, c, "*.log")); !reflect.DeepEqual(got, []string{"keep.log"}) {
		t.Errorf("*.log matched %v", got)
	}
}

func TestDockerfileIgnoreFileWins(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		".dockerignore":                      "a.txt\n",
		"docker/app.Dockerfile":              "FROM scratch",
		"docker/app.Dockerfile.dockerignore": "b.txt\n",
		"a.txt":                              "a",
		"b.txt":                              "b",
	})
	c := openCtx(t, dir, filepath.Join(dir, "docker/app.Dockerfile"))
	if c.Dir() != dir {
		t.Errorf("Dir() = %s, want %s", c.Dir(), dir)
	}
	resolve(t, c, "a.txt")
	if _, err := c.Resolve([]string{"b.txt"}); err == nil {
		t.Error("b.txt is ignored by the Dockerfile's own ignore file")
	}
	c2 := openCtx(t, dir, filepath.Join(dir, "Dockerfile"))
	if ig, err := c2.Ignored("a.txt"); err != nil || !ig {
		t.Errorf("a.txt should be ignored by .dockerignore: %v %v", ig, err)
	}
}

func TestWildcards(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"a2.txt": "2", "a1.txt": "1", "b.txt": "b", ".hidden.txt": "h",
		"sub/c.txt": "c", "sub2/c.txt": "c2", "sub3/d.txt": "d",
	})
	c := openCtx(t, dir, "")
	cases := map[string][]string{
		"a*.txt":      {"a1.txt", "a2.txt"},
		"a?.txt":      {"a1.txt", "a2.txt"},
		"[ab]*.txt":   {"a1.txt", "a2.txt", "b.txt"},
		"*/c.txt":     {"sub/c.txt", "sub2/c.txt"},
		"/sub*/c.txt": {"sub/c.txt", "sub2/c.txt"},
		"*.txt":       {".hidden.txt", "a1.txt", "a2.txt", "b.txt"},
	}
	for pat, want := range cases {
		if got := rels(resolve(t, c, pat)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s matched %v, want %v", pat, got, want)
		}
	}
	if _, err := c.Resolve([]string{"nothing*"}); err == nil || err.Error() != "COPY failed: file not found in build context: nothing*" {
		t.Errorf("a wildcard matching nothing: %v", err)
	}
	if _, err := c.Resolve([]string{"a["}); err == nil || !strings.Contains(err.Error(), "invalid wildcard") {
		t.Errorf("a bad wildcard: %v", err)
	}
	if _, err := c.ResolveOp("ADD", []string{"missing.txt"}); err == nil || err.Error() != "ADD failed: file not found in build context: missing.txt" {
		t.Errorf("missing file: %v", err)
	}
	if s := resolve(t, c, "sub"); !s[0].IsDir {
		t.Error("sub is a directory")
	}
}

// A source may not leave the build context, neither by ".." nor through
// a symlink, absolute or relative; a symlink inside it is fine.
func TestEscapeRefused(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "host secret"})
	parent := t.TempDir()
	dir := filepath.Join(parent, "ctx")
	writeTree(t, dir, map[string]string{
		"abs":       "->" + outside,
		"rel":       "->../../" + filepath.Base(outside),
		"up/file":   "->../../outside-file",
		"in":        "->sub",
		"sub/f.txt": "in",
		"absfile":   "->" + filepath.Join(outside, "secret"),
	})
	writeTree(t, parent, map[string]string{"outside-file": "x"})
	c := openCtx(t, dir, "")
	for _, p := range []string{"../outside-file", "sub/../../outside-file", "abs/secret", "rel", "up/file", "absfile"} {
		_, err := c.Resolve([]string{p})
		if err == nil || !strings.Contains(err.Error(), "forbidden path outside the build context") || !strings.HasSuffix(err.Error(), ": "+p) {
			t.Errorf("resolve %s: want a refusal naming it, got %v", p, err)
		}
	}
	// Wildcard matches that lead out are refused too.
	if _, err := c.Resolve([]string{"ab*"}); err == nil || !strings.Contains(err.Error(), "outside the build context") {
		t.Errorf("ab*: want a refusal, got %v", err)
	}
	if got := rels(resolve(t, c, "in/f.txt")); !reflect.DeepEqual(got, []string{"in/f.txt"}) {
		t.Errorf("in/f.txt: %v", got)
	}
	// Copying the whole context copies the links as links, never what
	// they point at.
	dst := t.TempDir()
	copyTo(t, c, openDst(t, dst), "/", CopyOptions{}, ".")
	if l, err := os.Readlink(filepath.Join(dst, "abs")); err != nil || l != outside {
		t.Errorf("abs should be copied as the link it is: %q %v", l, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "absfile")); err != nil || l != filepath.Join(outside, "secret") {
		t.Errorf("absfile should be copied as the link it is: %q %v", l, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"file": "x", ".dockerignore": "[\n"})
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "build context " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{filepath.Join(dir, "file"), "build context " + filepath.Join(dir, "file") + ": not a directory"},
	} {
		if _, err := Open(tc.dir, "", ""); err == nil || err.Error() != tc.want {
			t.Errorf("open %s: %v, want %q", tc.dir, err, tc.want)
		}
		if _, err := OpenRoot(tc.dir, ""); err == nil {
			t.Errorf("open root %s: no error", tc.dir)
		}
	}
	if _, err := Open(dir, "", ""); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("a bad ignore pattern: %v", err)
	}
}
