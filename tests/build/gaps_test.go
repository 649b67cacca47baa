package build

import (
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// TestBuildWorkdirCreates: WORKDIR of a missing directory makes it in a
// layer of its own, owned by the USER in effect, as BuildKit does; a
// WORKDIR that exists adds no layer.
func TestBuildWorkdirCreates(t *testing.T) {
	c := rig.NewContainerEnv(t)
	base := len(inspectImage(c, rig.TestImage).RootFS.Layers)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM berth-test/busybox
WORKDIR /srv/new/deep
USER app
WORKDIR mine
WORKDIR /tmp
CMD ["sh", "-c", "pwd; stat -c '%u:%g %a' /srv/new /srv/new/deep /srv/new/deep/mine"]
`,
	})
	mustBuild(c, "-t", "wd:1", dir)
	img := inspectImage(c, "wd:1")
	if got := len(img.RootFS.Layers) - base; got != 2 {
		t.Errorf("the WORKDIRs added %d layers, want 2 (an existing /tmp adds none)", got)
	}
	want := "/tmp\n0:0 755\n0:0 755\n1000:1000 755\n"
	if got := c.Must("run", "--rm", "wd:1"); got != want {
		t.Errorf("the image has\n%s\nwant\n%s", got, want)
	}
	// The rebuild takes both layers from the cache.
	if out := mustBuild(c, "-t", "wd:2", dir); countLines(out, "CACHED") != 2 {
		t.Errorf("rebuild: want 2 cached WORKDIR layers:\n%s", out)
	}
	if got := inspectImage(c, "wd:2").ID; got != img.ID {
		t.Errorf("the rebuild made %s, not %s", got, img.ID)
	}
}
