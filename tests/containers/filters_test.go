package containers

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

func TestPsFiltersBeforeSinceLabelNetwork(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("create", "--name", "a", "--label", "keep=1", rig.TestImage, "true")
	c.Must("create", "--name", "b", "--network", "host", rig.TestImage, "true")
	c.Must("create", "--name", "d", "--label", "keep=2", rig.TestImage, "true")
	names := func(filters ...string) string {
		args := []string{"ps", "-a", "--format", "{{.Names}}"}
		for _, f := range filters {
			args = append(args, "--filter", f)
		}
		out := strings.Fields(c.Must(args...))
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ f, want string }{
		{"before=d", "b,a"},
		{"since=a", "d,b"},
		{"label!=keep", "b"},
		{"label!=keep=1", "d,b"},
		{"network=host", "b"},
	} {
		if got := names(tc.f); got != tc.want {
			t.Errorf("ps --filter %s: %s, want %s", tc.f, got, tc.want)
		}
	}
	if r := c.Berth("ps", "-a", "--filter", "before=nosuch"); r.Code == 0 {
		t.Errorf("before= an unknown container: %+v", r)
	}
	c.Must("rm", "a", "b", "d")
}

func writeTar(t *testing.T, files map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for n, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImagesFiltersAndPruneConfirm(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("import", "--change", "LABEL tier=a", writeTar(t, map[string]string{"one": "1"}), "img1:1")
	time.Sleep(1100 * time.Millisecond)
	mid := time.Now()
	time.Sleep(1100 * time.Millisecond)
	c.Must("import", "--change", "LABEL tier=b", writeTar(t, map[string]string{"two": "2"}), "img2:1")
	repos := func(f string) string {
		return strings.Join(strings.Fields(c.Must("images", "--format", "{{.Repository}}", "--filter", f)), ",")
	}
	for _, tc := range []struct{ f, want string }{
		{"label=tier=a", "img1"},
		{"label=tier", "img2,img1"},
		{"since=img1:1", "img2"},
		{"until=" + fmt.Sprint(mid.Unix()), "img1," + rig.TestImage},
	} {
		got := repos(tc.f)
		if tc.f[:5] == "until" {
			// The test image's own creation time is fixed by mkimage.
			if !strings.Contains(got, "img1") || strings.Contains(got, "img2") {
				t.Errorf("images --filter %s: %s", tc.f, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("images --filter %s: %s, want %s", tc.f, got, tc.want)
		}
	}
	if got := repos("before=img2:1"); !strings.Contains(got, "img1") || strings.Contains(got, "img2") {
		t.Errorf("images --filter before=img2:1: %s", got)
	}
	// prune asks first; no is no.
	c.Must("import", writeTar(t, map[string]string{"three": "3"})) // dangling
	count := func() int { return len(strings.Fields(c.Must("images", "-q", "--filter", "dangling=true"))) }
	if n := count(); n != 1 {
		t.Fatalf("%d dangling images, want 1", n)
	}
	r := c.BerthIn([]byte("n\n"), "image", "prune")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Are you sure you want to continue? [y/N]") || count() != 1 {
		t.Errorf("image prune answered no: %+v, %d dangling left", r, count())
	}
	c.BerthIn([]byte("y\n"), "image", "prune")
	if n := count(); n != 0 {
		t.Errorf("image prune answered yes left %d dangling", n)
	}
}
