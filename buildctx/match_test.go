package buildctx

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func TestMayMatchBelow(t *testing.T) {
	m, err := newMatcher([]string{"*", "!src/**/*.go", "!docs/a*/x", "!keep", "!lib/"})
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{
		"src": true, "src/deep/er": true, "docs": true, "docs/api": true, "docs/b": false,
		"docs/api/x": true, "keep": true, "keep/sub": true, "lib/x": true, "node_modules": false, "other/keep": false,
	} {
		if got := m.mayMatchBelow(dir); got != want {
			t.Errorf("%s: %v, want %v", dir, got, want)
		}
	}
	var none *matcher
	if none.mayMatchBelow("x") {
		t.Error("nil matcher")
	}
}

// Parallel stages copy from one context at once: the ignore matching is
// shared and must hold (run with -race to see it).
func TestConcurrentCopies(t *testing.T) {
	dir := t.TempDir()
	spec := map[string]string{".dockerignore": "d*\n!d1/keep*\n"}
	for i := 0; i < 4; i++ {
		for j := 0; j < 20; j++ {
			spec[fmt.Sprintf("d%d/keep%d", i, j)] = "k"
		}
	}
	writeTree(t, dir, spec)
	c := openCtx(t, dir, "")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	roots := make([]string, 4)
	for i := range roots {
		roots[i] = t.TempDir()
		dst := openDst(t, roots[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			srcs, err := c.Resolve([]string{"."})
			if err == nil { // Copy first: the patterns are first used here, at once
				err = c.Copy(dst, "/", srcs, CopyOptions{})
			}
			if err == nil {
				_, err = c.Checksum(srcs)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		m, _ := filepath.Glob(filepath.Join(roots[i], "*/*"))
		if len(m) != 20 {
			t.Errorf("copy %d: %d files, want d1's 20", i, len(m))
		}
	}
}
