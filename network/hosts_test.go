package network

import (
	"os"
	"path/filepath"
	"testing"
)

// A container with no user network reads no other container's state at
// setup or teardown; one on a user network reads them all (its peers).
func TestPeerStatesOnlyOnUserNetworks(t *testing.T) {
	m := &Manager{epDir: t.TempDir()}
	// A state that cannot be read: reading it fails peerStates.
	if err := os.WriteFile(filepath.Join(m.epDir, "other.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*epState{
		{ID: "none", Mode: "none"},
		{ID: "def", Mode: "bridge", Attach: []epNet{{NetworkID: "d", Default: true}}},
	} {
		states, err := m.peerStates(st)
		if err != nil || states != nil {
			t.Errorf("%s: got %v, %v; want no states read", st.ID, states, err)
		}
	}
	user := &epState{ID: "user", Mode: "bridge", Attach: []epNet{{NetworkID: "d", Default: true}, {NetworkID: "u"}}}
	if _, err := m.peerStates(user); err == nil {
		t.Error("user network: the other states were not read")
	}
}
