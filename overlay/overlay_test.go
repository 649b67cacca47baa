package overlay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layout makes n layers the way the image store lays them out.
func layout(t *testing.T, n int, withLinks bool) []string {
	root := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 5))
	var dirs []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%064d", i)
		d := filepath.Join(root, "layers", id, "diff")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d", i)), []byte("x"), 0o644)
		if withLinks {
			short := fmt.Sprintf("L%025d", i)
			os.WriteFile(filepath.Join(root, "layers", id, "link"), []byte(short), 0o644)
			os.MkdirAll(filepath.Join(root, "l"), 0o755)
			if err := os.Symlink(filepath.Join("..", "layers", id, "diff"), filepath.Join(root, "l", short)); err != nil {
				t.Fatal(err)
			}
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func TestOptions(t *testing.T) {
	dirs := layout(t, 3, false)
	data, chdir, err := Options(dirs, "/u", "/w")
	if err != nil || chdir != "" {
		t.Fatal(err, chdir)
	}
	want := "lowerdir=" + dirs[2] + ":" + dirs[1] + ":" + dirs[0] + ",upperdir=/u,workdir=/w"
	if data != want {
		t.Errorf("got %s", data)
	}
	if _, _, err := Options(layout(t, 100, false), "/u", "/w"); err == nil {
		t.Error("100 long layer paths without short links accepted")
	}
	data, chdir, err = Options(layout(t, 128, true), "/u", "/w")
	if err != nil || chdir == "" || len(data) > maxData || !strings.HasPrefix(data, "lowerdir=l/L") {
		t.Errorf("short links: %v %q %d", err, chdir, len(data))
	}
	if _, _, err := Options(nil, "/u", "/w"); err == nil {
		t.Error("no layers accepted")
	}
	if _, _, err := Options([]string{"/a:b"}, "/u", "/w"); err == nil {
		t.Error("colon in path accepted")
	}
}

func TestMountUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dirs := layout(t, 40, true)
	c := t.TempDir()
	merged := filepath.Join(c, "m")
	if err := Mount(dirs, filepath.Join(c, "u"), filepath.Join(c, "w"), merged, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(merged) })
	if _, err := os.Stat(filepath.Join(merged, "f39")); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(merged, "x"), nil, 0o644); err == nil {
		t.Error("readonly mount writable")
	}
	if err := Unmount(merged); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(merged); err != nil {
		t.Errorf("second unmount: %v", err)
	}
	// One layer, no upper: a read-only bind.
	if err := Mount(dirs[:1], "", "", merged, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(merged, "f0")); err != nil {
		t.Error(err)
	}
}

// UnmountDetached says whether the mount was busy and only detached: a
// file open in it keeps it in use.
func TestUnmountDetached(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (make test runs as root)")
	}
	dirs := layout(t, 2, true)
	c := t.TempDir()
	merged := filepath.Join(c, "m")
	for _, busy := range []bool{false, true} {
		if err := Mount(dirs, filepath.Join(c, "u"), filepath.Join(c, "w"), merged, false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Unmount(merged) })
		var f *os.File
		if busy {
			var err error
			if f, err = os.Open(filepath.Join(merged, "f0")); err != nil {
				t.Fatal(err)
			}
		}
		detached, err := UnmountDetached(merged)
		if f != nil {
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if detached != busy {
			t.Errorf("busy %v: detached %v", busy, detached)
		}
		if detached, err := UnmountDetached(merged); err != nil || detached {
			t.Errorf("unmount of nothing: detached %v, %v", detached, err)
		}
	}
}
