package image

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/overlay"
)

func TestParseReference(t *testing.T) {
	cases := map[string]string{
		"busybox":                         "docker.io/library/busybox:latest",
		"busybox:1.36":                    "docker.io/library/busybox:1.36",
		"library/busybox":                 "docker.io/library/busybox:latest",
		"index.docker.io/library/alpine":  "docker.io/library/alpine:latest",
		"user/app:v1":                     "docker.io/user/app:v1",
		"127.0.0.1:5000/team/app:1.2":     "127.0.0.1:5000/team/app:1.2",
		"localhost/app":                   "localhost/app:latest",
		"quay.io/a/b/c@sha256:" + hex64(): "quay.io/a/b/c@sha256:" + hex64(),
		"app:v1@sha256:" + hex64():        "docker.io/library/app:v1@sha256:" + hex64(),
	}
	for in, want := range cases {
		r, err := ParseReference(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if r.String() != want {
			t.Errorf("%s: got %s, want %s", in, r, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a//b", "a:b:c:d", "x@sha256:12", "-a", "a:" + strings.Repeat("t", 200)} {
		if _, err := ParseReference(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if FamiliarName("docker.io/library/busybox") != "busybox" || FamiliarName("docker.io/u/a") != "u/a" || FamiliarName("127.0.0.1:5000/a") != "127.0.0.1:5000/a" {
		t.Error("FamiliarName")
	}
}

func hex64() string { return strings.Repeat("ab", 32) }

// buildImage adds layers (given as tars) one on another and creates an
// image tagged tag.
func buildImage(t testing.TB, s *Store, tag string, layers ...[]byte) *Image {
	t.Helper()
	var descs []LayerDesc
	var parent digest.Digest
	for _, l := range layers {
		d, err := s.AddLayer(parent, bytes.NewReader(l))
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
		if parent == "" {
			parent = d.DiffID
		} else {
			parent = digest.FromString(parent.String() + " " + d.DiffID.String())
		}
	}
	cfg := ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
	var tags []string
	if tag != "" {
		tags = append(tags, tag)
	}
	img, err := s.Create(cfg, descs, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func countDirs(t testing.TB, p string) int {
	ents, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestStoreSharesLayers(t *testing.T) {
	s := newStore(t)
	base := randomLayer(t, "base", 1<<20)
	a := buildImage(t, s, "app-a:1", base, randomLayer(t, "a", 1000))
	b := buildImage(t, s, "app-b:1", base, randomLayer(t, "b", 1000))
	if a.LayerDirs()[0] != b.LayerDirs()[0] {
		t.Fatalf("base layer not shared: %s vs %s", a.LayerDirs()[0], b.LayerDirs()[0])
	}
	if n := countDirs(t, filepath.Join(s.Root(), "layers")); n != 3 {
		t.Errorf("%d layer dirs, want 3", n)
	}
	// The base content is on disk once: one inode, one link.
	var nfiles int
	filepath.Walk(filepath.Join(s.Root(), "layers"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Name() == "base" {
			nfiles++
		}
		return nil
	})
	if nfiles != 1 {
		t.Errorf("base file stored %d times", nfiles)
	}
	got, err := s.Resolve("docker.io/library/app-a:1")
	if err != nil || got.ID != a.ID {
		t.Fatalf("resolve: %v %v", got, err)
	}
	if got, err := s.Resolve(a.ID.Encoded()[:12]); err != nil || got.ID != a.ID {
		t.Fatalf("resolve by id prefix: %v", err)
	}
	if got, err := s.Resolve("app-a@" + a.ManifestDigest.String()); err != nil || got.ID != a.ID {
		t.Fatalf("resolve by digest: %v", err)
	}
	if _, err := s.Resolve("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve missing: %v", err)
	}
	// Tag, untag, delete; layers nobody needs go away, shared ones stay.
	if err := s.Tag("app-a:1", "app-a:latest"); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Remove("app-a:1", false)
	if err != nil || len(rep) != 1 || !strings.HasPrefix(rep[0], "Untagged: app-a:1") {
		t.Fatalf("untag: %v %v", rep, err)
	}
	s.users = usedImage(a.ID.String())
	if _, err := s.Remove("app-a", false); !errors.Is(err, ErrInUse) {
		t.Fatalf("remove in-use image: %v", err)
	}
	s.users = nil
	rep, err = s.Remove("app-a", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", rep)
	if n := countDirs(t, filepath.Join(s.Root(), "layers")); n != 2 {
		t.Errorf("%d layer dirs after rmi, want 2", n)
	}
	if n := countDirs(t, filepath.Join(s.Root(), "l")); n != 2 {
		t.Errorf("%d short links after rmi, want 2", n)
	}
	if _, err := os.Stat(b.LayerDirs()[0]); err != nil {
		t.Errorf("shared layer removed: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("list: %v %v", list, err)
	}
	// Prune -a removes everything unused.
	removed, freed, err := s.Prune(true)
	if err != nil || len(removed) != 1 || freed < 1<<20 {
		t.Fatalf("prune: %v %d %v", removed, freed, err)
	}
	if n := countDirs(t, filepath.Join(s.Root(), "blobs/sha256")); n != 0 {
		t.Errorf("%d blobs left", n)
	}
}

func TestOverlayDeepStack(t *testing.T) {
	s := newStore(t)
	const n = 128
	layers := make([][]byte, n)
	for i := range layers {
		layers[i] = makeTar(t, dir("d/", 0o755), file(fmt.Sprintf("d/f%03d", i), []byte(fmt.Sprint(i)), 0o644), file("top", []byte(fmt.Sprint(i)), 0o644))
	}
	// Layer 5 deletes f002; layer 7 makes d/ opaque then adds f007.
	layers[5] = makeTar(t, file("d/.wh.f002", nil, 0), file("d/f005", []byte("5"), 0o644))
	layers[7] = makeTar(t, dir("d/", 0o755), file("d/.wh..wh..opq", nil, 0), file("d/f007", []byte("7"), 0o644))
	img := buildImage(t, s, "deep:1", layers...)
	dirs := img.LayerDirs()
	if len(dirs) != n {
		t.Fatalf("%d layer dirs", len(dirs))
	}
	c := t.TempDir()
	merged := filepath.Join(c, "merged")
	if err := overlay.Mount(dirs, filepath.Join(c, "upper"), filepath.Join(c, "work"), merged, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := overlay.Unmount(merged); err != nil {
			t.Error(err)
		}
	})
	if b, err := os.ReadFile(filepath.Join(merged, "top")); err != nil || string(b) != fmt.Sprint(n-1) {
		t.Errorf("top = %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(merged, "d"))
	if len(ents) != n-7 || ents[0].Name() != "f007" {
		t.Errorf("d/ has %d entries, first %v", len(ents), ents[0].Name())
	}
	if err := os.WriteFile(filepath.Join(merged, "new"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c, "upper", "new")); err != nil {
		t.Errorf("write did not go to upper: %v", err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "new")); err == nil {
			t.Fatal("write reached a lower layer")
		}
	}
	if err := overlay.Unmount(merged); err != nil {
		t.Fatal(err)
	}
	// Read-only, no upper.
	if err := overlay.Mount(dirs, "", "", merged, true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(merged, "x"), nil, 0o644); err == nil {
		t.Error("read-only mount is writable")
	}
}

// TestLayerDirsOf checks the short way to an image's layers (its config
// alone, or what this process loaded already) against Resolve, and that a
// missing image still gets Resolve's error.
func TestLayerDirsOf(t *testing.T) {
	s := newStore(t)
	img := buildImage(t, s, "app:1", randomLayer(t, "base", 1000), randomLayer(t, "top", 1000))
	want := strings.Join(img.LayerDirs(), ":")
	fresh, err := Open(filepath.Dir(s.Root()))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{fresh, fresh, s} {
		dirs, err := st.LayerDirsOf(img.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(dirs, ":"); got != want || len(dirs) != 2 {
			t.Errorf("LayerDirsOf = %s, want %s", got, want)
		}
	}
	missing := "sha256:" + hex64()
	if _, err := fresh.LayerDirsOf(missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("LayerDirsOf(%s): %v, want ErrNotFound", missing, err)
	}
}

// usedImage is a Users that says one image is in use.
type usedImage string

func (u usedImage) ImageInUse(id string) (bool, error) { return id == string(u), nil }
