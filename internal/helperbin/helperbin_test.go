package helperbin

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedProgramsAreCurrent guards against a berth that embeds a
// helper built from older source: the files under bin/ outlive the source
// they came from, and `go build .` takes whatever is there.
func TestEmbeddedProgramsAreCurrent(t *testing.T) {
	for _, name := range programs {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeProgram(&buf, name); err != nil {
				t.Skip("built without the helper programs (make builds and embeds them)")
			}
			if _, err := exec.LookPath("go"); err != nil {
				t.Skip("no Go toolchain here (as in the VM tests); the host suite checks this")
			}
			out := filepath.Join(t.TempDir(), name)
			// The Makefile's flags, so the build is byte for byte the same.
			args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out, "../../cmd/" + name}
			if name == Build {
				args = []string{"build", "-trimpath", "-tags", "urfave_cli_no_docs,berth_build", "-ldflags", "-s -w", "-o", out, "../.."}
			}
			cmd := exec.Command("go", args...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), fresh) {
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
		var want bytes.Buffer
		if err := writeProgram(&want, name); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, want.Bytes()) {
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

func TestPruneKeepsCurrentAndRunning(t *testing.T) {
	dir := t.TempDir()
	current, err := Install(dir, Init)
	if err == ErrNotBuilt {
		t.Skip("built without the helper programs (make builds and embeds them)")
	}
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, Init+"-0123456789abcdef")
	running := filepath.Join(dir, Init+"-fedcba9876543210")
	others := []string{Init + "-0123", ".tmp-" + Init + "-42", Monitor + "-0123456789abcdef", "notes"}
	for _, p := range append([]string{stale, running}, others...) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := os.WriteFile(p, []byte("old build"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removed, freed, err := Prune(Init, func(fi fs.FileInfo) bool { return fi.Name() == filepath.Base(running) }, filepath.Join(dir, "missing"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale || freed != int64(len("old build")) {
		t.Errorf("removed %q (%d bytes), want only %s (9 bytes)", removed, freed, stale)
	}
	for _, p := range append([]string{current, running}, others...) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v; Prune must leave it", p, err)
		}
	}
	if r, n, err := Prune(Init, func(fs.FileInfo) bool { return false }, filepath.Join(dir, "missing")); err != nil || r != nil || n != 0 {
		t.Errorf("Prune of a missing directory: %q, %d, %v", r, n, err)
	}
}

// Each berth installs and prunes only under its own roots: a prune with
// other roots must not remove this berth's programs, even another
// build's copies that nothing runs.
func TestDirsKeepToTheirRoots(t *testing.T) {
	if _, ok := copyName(Init); !ok {
		t.Skip("built without the helper programs (make builds and embeds them)")
	}
	mine := Dirs{StateRoot: t.TempDir(), DataRoot: t.TempDir()}
	other := Dirs{StateRoot: t.TempDir(), DataRoot: t.TempDir()}
	var stale []string
	for _, name := range programs {
		p, err := mine.Install(name)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(mine.StateRoot, subdir); filepath.Dir(p) != want {
			t.Errorf("%s installed at %s, want under %s", name, p, want)
		}
		old := filepath.Join(filepath.Dir(p), name+"-0123456789abcdef")
		if err := os.WriteFile(old, []byte("old build"), 0o755); err != nil {
			t.Fatal(err)
		}
		stale = append(stale, old)
	}
	// An old berth put the monitor under <root>/monitor: that is pruned too.
	legacy := filepath.Join(mine.StateRoot, legacySubdir, Monitor+"-fedcba9876543210")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte("old build"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale = append(stale, legacy)
	if removed, _, err := other.Prune(); err != nil || len(removed) != 0 {
		t.Fatalf("prune with other roots: removed %q, %v", removed, err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("prune with other roots took %s: %v", p, err)
		}
	}
	removed, _, err := mine.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != len(stale) {
		t.Errorf("prune removed %q, want %q", removed, stale)
	}
	for _, name := range programs {
		if _, err := mine.Install(name); err != nil {
			t.Errorf("this build's %s after prune: %v", name, err)
		}
	}
}

// TestInstallWhileForking: a program installed while other goroutines
// fork and exec all the time can be executed at once; a child forked while
// Install had the file open for writing used to make that exec fail with
// ETXTBSY.
func TestInstallWhileForking(t *testing.T) {
	if _, ok := copyName(Monitor); !ok {
		t.Fatal("berth-monitor is not embedded: run make")
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for i := 0; i < 2; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = exec.Command("/bin/true").Run()
			}
		}()
	}
	defer func() {
		close(stop)
		<-done
		<-done
	}()
	for i := 0; i < 30; i++ {
		path, err := Install(t.TempDir(), Monitor)
		if err != nil {
			t.Fatal(err)
		}
		// Its usage error is enough: what matters is that it ran.
		cmd := exec.Command(path)
		if err := cmd.Start(); err != nil {
			t.Fatalf("round %d: exec of the program just installed: %v", i, err)
		}
		_ = cmd.Wait()
	}
}
