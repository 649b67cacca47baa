// Package network tests berth's networking end to end: berth runs in a
// network namespace of its own that plays the host (rig.NetHost), so no
// bridge, firewall table or sysctl lands on the machine, with an
// "outside" namespace behind it. Traffic goes only to 127.0.0.0/8 and to
// those namespaces and their containers.
package network

import (
	"testing"

	"github.com/berth-project/berth/tests/rig"
)

func TestMain(m *testing.M) { rig.Main(m) }
