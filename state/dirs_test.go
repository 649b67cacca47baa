package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindAbandonedSparesHeldDirs(t *testing.T) {
	parent := t.TempDir()
	held, err := CreateDir(filepath.Join(parent, "held"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateDir(filepath.Join(parent, "held"), 0o700); !errors.Is(err, os.ErrExist) {
		t.Errorf("second CreateDir: %v", err)
	}
	gone, err := CreateDir(filepath.Join(parent, "gone"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	gone.Unlock() // its maker died
	if !HeldBy(filepath.Join(parent, "held")) || HeldBy(filepath.Join(parent, "gone")) {
		t.Errorf("HeldBy: held %v, gone %v", HeldBy(filepath.Join(parent, "held")), HeldBy(filepath.Join(parent, "gone")))
	}
	found, err := FindAbandoned(parent, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Name != "gone" {
		t.Fatalf("found %v, want only gone", found)
	}
	// The finder holds it now.
	if !HeldBy(filepath.Join(parent, "gone")) {
		t.Errorf("an abandoned dir is not locked while it is cleaned")
	}
	found[0].Unlock()
	held.Unlock()
}
