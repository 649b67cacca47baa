package state

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

func TestRewriteInPlace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rec.json")
	rec := PadRecord([]byte(`{"a":1}`), 512)
	if len(rec)%4096 != 0 || len(rec) < 512 {
		t.Fatalf("padded to %d bytes", len(rec))
	}
	var v map[string]int
	if err := json.Unmarshal(rec, &v); err != nil || v["a"] != 1 {
		t.Fatalf("padded record does not parse: %v %v", v, err)
	}
	if err := os.WriteFile(p, rec, 0o600); err != nil {
		t.Fatal(err)
	}
	// A record grown by less than its padding fits in place.
	grown := PadRecord([]byte(`{"a":1,"b":"`+strings.Repeat("x", 4000)+`"}`), 512)
	if err := RewriteInPlace(p, grown, unix.ENOSPC); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	// Padded to 8 KiB it does not fit in 4; its padding is given up.
	b, _ := os.ReadFile(p)
	var w map[string]any
	if err := json.Unmarshal(b, &w); err != nil || len(b) > 4096 || w["b"] != strings.Repeat("x", 4000) {
		t.Errorf("after rewrite: %d bytes, %v", len(b), err)
	}
	// One that does not fit is refused with the original error, and the
	// file is left as it was.
	if err := RewriteInPlace(p, []byte(strings.Repeat(" ", 9000)+"{}"), unix.ENOSPC); !errors.Is(err, unix.ENOSPC) {
		t.Errorf("too big: %v", err)
	}
	if b2, _ := os.ReadFile(p); string(b2) != string(b) {
		t.Errorf("a refused rewrite changed the file")
	}
}
