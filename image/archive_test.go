package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadImport(t *testing.T) {
	src := newStore(t)
	rootfs := makeTar(t, dir("./", 0o755), dir("./bin/", 0o755), file("./bin/sh", []byte("#!fake"), 0o755), symlink("./bin/ash", "sh"))
	img, err := src.Import(bytes.NewReader(gzipBytes(t, rootfs)), "myimage:1", []string{"CMD [\"/bin/sh\"]", "ENV A=b", "WORKDIR /w"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Config.Cmd[0] != "/bin/sh" || img.Config.Config.Env[0] != "A=b" || img.Config.Config.WorkingDir != "/w" {
		t.Errorf("config: %+v", img.Config.Config)
	}
	if b, err := os.ReadFile(filepath.Join(img.LayerDirs()[0], "bin/sh")); err != nil || string(b) != "#!fake" {
		t.Fatalf("imported rootfs: %q %v", b, err)
	}
	if err := src.Tag("myimage:1", "myimage:latest"); err != nil {
		t.Fatal(err)
	}
	two := buildImage(t, src, "busybox:latest", rootfs, randomLayer(t, "x", 5000))

	for _, format := range []string{FormatDocker, FormatOCI} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := src.Save(&buf, []string{"myimage:1", "busybox"}, format); err != nil {
				t.Fatal(err)
			}
			arch := filepath.Join(t.TempDir(), "out.tar")
			os.WriteFile(arch, buf.Bytes(), 0o644)
			if sk, err := exec.LookPath("skopeo"); err == nil && format == FormatDocker {
				out, err := exec.Command(sk, "inspect", "--config", "docker-archive:"+arch+":busybox:latest").Output()
				if err != nil {
					t.Errorf("skopeo cannot read the docker archive: %v", err)
				} else {
					var c struct {
						RootFS struct {
							DiffIDs []string `json:"diff_ids"`
						} `json:"rootfs"`
					}
					json.Unmarshal(out, &c)
					if len(c.RootFS.DiffIDs) != 2 {
						t.Errorf("skopeo config: %s", out)
					}
				}
			}
			dst := newStore(t)
			lines, err := dst.Load(bytes.NewReader(gzipBytes(t, buf.Bytes())))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", lines)
			if !strings.Contains(strings.Join(lines, "\n"), "Loaded image: busybox:latest") {
				t.Errorf("lines: %v", lines)
			}
			got, err := dst.Resolve("busybox")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != two.ID {
				t.Errorf("loaded ID %s, saved %s", got.ID, two.ID)
			}
			if format == FormatOCI && got.ManifestDigest != two.ManifestDigest {
				t.Errorf("oci archive changed the manifest")
			}
			if got.LayerDirs()[0] != mustResolve(t, dst, "myimage:1").LayerDirs()[0] {
				t.Errorf("layer not shared after load")
			}
		})
	}
}

func mustResolve(t *testing.T, s *Store, ref string) *Image {
	img, err := s.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLoadBadArchives(t *testing.T) {
	s := newStore(t)
	evilLayer := makeTar(t, symlink("x", "/"), file("x/tmp/berth-evil", []byte("e"), 0o644))
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + sha(evilLayer) + `"]}}`
	cases := map[string][]byte{
		"not-tar":     []byte("hello, this is not a tar archive at all........."),
		"dotdot":      makeTar(t, file("../../x", []byte("x"), 0o644)),
		"no-manifest": makeTar(t, file("foo", []byte("x"), 0o644)),
		"missing-blob": makeTar(t, file("manifest.json", []byte(`[{"Config":"c.json","RepoTags":["a:1"],"Layers":["nope.tar"]}]`), 0o644),
			file("c.json", []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:`+strings.Repeat("a", 64)+`"]}}`), 0o644)),
		"evil-layer": makeTar(t, file("manifest.json", []byte(`[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l.tar"]}]`), 0o644),
			file("c.json", []byte(cfg), 0o644), file("l.tar", evilLayer, 0o644)),
		"bad-diffid": makeTar(t, file("manifest.json", []byte(`[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l.tar"]}]`), 0o644),
			file("c.json", []byte(strings.Replace(cfg, sha(evilLayer), "sha256:"+strings.Repeat("b", 64), 1)), 0o644), file("l.tar", makeTar(t, file("ok", nil, 0o644)), 0o644)),
	}
	for name, arch := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Load(bytes.NewReader(arch))
			if err == nil {
				t.Fatal("load succeeded")
			}
			t.Logf("%v", err)
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("image listed after a failed load")
			}
		})
	}
	if _, err := os.Lstat("/tmp/berth-evil"); err == nil {
		os.Remove("/tmp/berth-evil")
		t.Fatal("escaped")
	}
	_ = tar.TypeReg
}

func sha(b []byte) string {
	return "sha256:" + strings.TrimPrefix(string(digestOf(b)), "sha256:")
}
