package containers

import (
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }
