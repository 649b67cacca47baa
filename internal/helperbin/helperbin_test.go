package helperbin

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var programs = []string{Monitor, Init}

// TestEmbeddedProgramsAreCurrent guards against a berth that embeds a
// helper built from older source: the files under bin/ outlive the source
// they came from, and `go build .` takes whatever is there.
func TestEmbeddedProgramsAreCurrent(t *testing.T) {
	for _, name := range programs {
		t.Run(name, func(t *testing.T) {
			embedded, err := fs.ReadFile(files, "bin/"+name)
			if err != nil {
				t.Skip("built without the helper programs (make builds and embeds them)")
			}
			if _, err := exec.LookPath("go"); err != nil {
				t.Skip("no Go toolchain here (as in the VM tests); the host suite checks this")
			}
			out := filepath.Join(t.TempDir(), name)
			// The Makefile's flags, so the build is byte for byte the same.
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/"+name)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(embedded, fresh) {
				t.Fatalf("the embedded %s is not built from the current cmd/%s: run make", name, name)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "helpers")
	for _, name := range programs {
		p, err := Install(dir, name)
		if err == ErrNotBuilt {
			t.Skip("built without the helper programs (make builds and embeds them)")
		}
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o755 || filepath.Dir(p) != dir {
			t.Fatalf("installed %s: %v %v", p, st, err)
		}
		want, _ := fs.ReadFile(files, "bin/"+name)
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
			t.Errorf("%s: installed file differs from the embedded program", name)
		}
		again, err := Install(dir, name)
		if err != nil || again != p {
			t.Fatalf("second install: %s %v, want %s", again, err, p)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != len(programs) {
		t.Errorf("install dir holds %d files, want %d", len(ents), len(programs))
	}
	if _, err := Install(dir, "no-such-program"); err != ErrNotBuilt {
		t.Errorf("unknown program: %v, want ErrNotBuilt", err)
	}
}
