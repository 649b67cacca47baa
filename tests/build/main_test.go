// Package build tests berth build: images built from the busybox test
// image, checked by running them and by what inspect shows.
package build

import (
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }
