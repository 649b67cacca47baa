package containers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

// -v with a missing host path creates the directory, as Docker does;
// --mount type=bind does not; a run refused for a bad flag creates none.
func TestRunVolumeCreatesHostDir(t *testing.T) {
	c := rig.NewContainerEnv(t)
	host := filepath.Join(t.TempDir(), "made", "here")
	c.Must("run", "--rm", "-v", host+":/data", rig.TestImage, "sh", "-c", "echo hi > /data/f")
	if b, err := os.ReadFile(filepath.Join(host, "f")); err != nil || string(b) != "hi\n" {
		t.Errorf("-v with a missing host dir: %q %v", b, err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	r := c.Berth("run", "--rm", "--mount", "type=bind,src="+missing+",dst=/data", rig.TestImage, "true")
	if !rig.UsageError(r) || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("--mount with a missing source: %+v", r)
	}
	r = c.Berth("run", "--rm", "-v", missing+":/data", "--memory", "lots", rig.TestImage, "true")
	if !rig.UsageError(r) {
		t.Errorf("-v with a bad --memory: %+v", r)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a refused run left %s (%v)", missing, err)
	}
}
