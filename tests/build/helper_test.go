package build

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// buildCacheRow returns system df's Build Cache row: count and size.
func buildCacheRow(c *rig.ContainerEnv) (int, string) {
	c.T.Helper()
	out := c.Must("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Size}}")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) == 3 && f[0] == "Build Cache" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				c.T.Fatalf("system df: %q", line)
			}
			return n, f[2]
		}
	}
	c.T.Fatalf("system df has no Build Cache row:\n%s", out)
	return 0, ""
}

// TestBuildCacheInSystemDfAndPrune: berth itself does not link the build
// code (see link_test.go); system df and system prune ask the build
// helper about the build cache, and must still count a cached step and
// remove it.
func TestBuildCacheInSystemDfAndPrune(t *testing.T) {
	c := rig.NewContainerEnv(t)
	if n, _ := buildCacheRow(c); n != 0 {
		t.Fatalf("fresh data root: build cache has %d entries", n)
	}
	// With no build yet, there was nothing to ask the helper.
	helpers := func() []string {
		var all []string
		for _, root := range []string{c.Root, c.Data} {
			m, _ := filepath.Glob(filepath.Join(root, ".helpers", "berth-build-*"))
			all = append(all, m...)
		}
		return all
	}
	if h := helpers(); len(h) != 0 {
		t.Errorf("system df with no build cache installed the build helper: %v", h)
	}
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM berth-test/busybox\nRUN head -c 300000 /dev/zero > /blob\n",
	})
	mustBuild(c, "-t", "dfprune:1", dir)
	if h := helpers(); len(h) != 1 {
		t.Errorf("berth build ran from %v, want one installed build helper", h)
	}
	n, size := buildCacheRow(c)
	if n != 1 || !strings.HasSuffix(size, "kB") {
		t.Fatalf("after a build with one RUN step: build cache %d entries of %s, want 1 of about 300kB", n, size)
	}
	c.Must("rmi", "dfprune:1")
	out := c.Must("system", "prune", "-a", "-f")
	if !strings.Contains(out, "Total reclaimed space:") || strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("system prune -a reclaimed nothing:\n%s", out)
	}
	if n, size := buildCacheRow(c); n != 0 {
		t.Errorf("after system prune -a: build cache %d entries of %s, want none", n, size)
	}
}
