package containerinit

import (
	"testing"

	"github.com/berth-project/berth/runtime"
)

// Every mount option oci features lists is one the init applies, not one
// it passes on to the filesystem as data.
func TestFeaturesMountOptionsApplied(t *testing.T) {
	for _, o := range runtime.Features().MountOptions {
		if p := parseMountOptions([]string{o}); p.data != "" {
			t.Errorf("mount option %q is listed but passed on as data", o)
		}
	}
}
