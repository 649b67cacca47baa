package monitorbin

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedProgramIsCurrent guards against a berth that embeds a lean
// monitor built from older source: the file under bin/ outlives the
// source it came from, and `go build .` takes whatever is there.
func TestEmbeddedProgramIsCurrent(t *testing.T) {
	embedded, err := fs.ReadFile(files, "bin/"+name)
	if err != nil {
		t.Skip("built without the lean monitor (make builds and embeds it)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain here (as in the VM tests); the host suite checks this")
	}
	out := filepath.Join(t.TempDir(), name)
	// The Makefile's flags, so the build is byte for byte the same.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/berth-monitor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embedded, fresh) {
		t.Fatal("the embedded lean monitor is not built from the current cmd/berth-monitor: run make")
	}
}

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "monitor")
	p, err := Install(dir)
	if err == ErrNotBuilt {
		t.Skip("built without the lean monitor (make builds and embeds it)")
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o755 || filepath.Dir(p) != dir {
		t.Fatalf("installed %s: %v %v", p, st, err)
	}
	again, err := Install(dir)
	if err != nil || again != p {
		t.Fatalf("second install: %s %v, want %s", again, err, p)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("install dir holds %d files, want 1", len(ents))
	}
}
