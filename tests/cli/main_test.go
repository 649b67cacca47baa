// Package cli tests berth's command line as Docker users and scripts use
// it: flags anywhere, usage errors, --format, inspect's fields, shell
// completion, man pages and the README's examples. Nothing here depends
// on the kernel or the cgroup mode, so the VMs leave it out.
package cli

import (
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }
