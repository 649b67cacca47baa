package build

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/tests/rig"
)

// writeContext makes a build context of files (name -> content) in a
// fresh directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mustBuild builds and fails the test unless it works; it returns the
// progress output.
func mustBuild(c *rig.ContainerEnv, args ...string) string {
	c.T.Helper()
	r := c.Berth(append([]string{"build"}, args...)...)
	if r.Code != 0 {
		c.T.Fatalf("berth build %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stderr
}

// imageConfig is what berth image inspect shows of an image's config.
type imageConfig struct {
	ID     string `json:"Id"`
	Config struct {
		User         string
		Env          []string
		Cmd          []string
		Entrypoint   []string
		WorkingDir   string
		Labels       map[string]string
		ExposedPorts map[string]struct{}
		Volumes      map[string]struct{}
		StopSignal   string
		Healthcheck  *struct {
			Test     []string
			Interval int64
			Retries  int
		}
		OnBuild []string
		Shell   []string
	}
	RootFS struct {
		Layers []string
	}
}

func inspectImage(c *rig.ContainerEnv, ref string) imageConfig {
	c.T.Helper()
	out := c.Must("image", "inspect", ref)
	var list []imageConfig
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		c.T.Fatalf("image inspect %s: %v\n%s", ref, err, out)
	}
	return list[0]
}

// countLines counts the lines of out that contain s.
func countLines(out, s string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// writeTar writes a tar archive of files.
func writeTar(t *testing.T, p string, files map[string]string) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
