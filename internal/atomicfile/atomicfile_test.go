package atomicfile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	for _, w := range []func(string, []byte, os.FileMode) error{Write, WriteSync} {
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := w(p, []byte("new"), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != "new" {
			t.Fatalf("after write: %q, %v", b, err)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Errorf("temp files left: %v", ents)
		}
	}
	if err := Write(filepath.Join(dir, "no", "such"), []byte("x"), 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
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
