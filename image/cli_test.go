package image

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	berthOnce sync.Once
	berthBin  string
	berthErr  error
)

// berth returns the CLI binary: $BERTH_BIN, or one built from the module
// root (skipping when the tree does not build right now).
func berth(t *testing.T) string {
	t.Helper()
	berthOnce.Do(func() {
		if b := os.Getenv("BERTH_BIN"); b != "" {
			berthBin = b
			return
		}
		dir, err := os.MkdirTemp("", "berth-cli-test")
		if err != nil {
			berthErr = err
			return
		}
		berthBin = filepath.Join(dir, "berth")
		cmd := exec.Command("go", "build", "-o", berthBin, ".")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			berthErr = &buildError{string(out)}
		}
	})
	if berthErr != nil {
		t.Skipf("cannot build berth: %v", berthErr)
	}
	return berthBin
}

type buildError struct{ out string }

func (e *buildError) Error() string { return e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if berthBin != "" && os.Getenv("BERTH_BIN") == "" {
		os.RemoveAll(filepath.Dir(berthBin))
	}
	os.Exit(code)
}

type cli struct {
	t    *testing.T
	bin  string
	root string
	env  []string
}

func (c *cli) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--data-root", c.root}, args...)...)
	cmd.Env = append(os.Environ(), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("berth %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func (c *cli) fail(args ...string) string {
	c.t.Helper()
	_, errs, code := c.run("", args...)
	if code != 125 {
		c.t.Fatalf("berth %s: exit %d, want 125", strings.Join(args, " "), code)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		c.t.Errorf("berth %s: error is not one line: %q", strings.Join(args, " "), errs)
	}
	return errs
}

func TestCLI(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, map[string]string{"alice": "pw"})
	tmp := t.TempDir()
	c := &cli{t: t, bin: berth(t), root: filepath.Join(tmp, "data"), env: []string{"BERTH_AUTH_FILE=" + filepath.Join(tmp, "auth.json"), "DOCKER_CONFIG=" + filepath.Join(tmp, "docker")}}
	rootfs := filepath.Join(tmp, "rootfs.tar")
	os.WriteFile(rootfs, makeTar(t, dir("./", 0o755), dir("./bin/", 0o755), file("./bin/sh", []byte("sh"), 0o755)), 0o644)

	id := strings.TrimSpace(c.ok("import", "-c", "CMD [\"/bin/sh\"]", rootfs, "myimage:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	c.ok("tag", "myimage:1", "myimage:latest")
	c.ok("tag", "myimage:1", reg+"/team/app:1.3")
	out := c.ok("images")
	if !strings.HasPrefix(out, "REPOSITORY") || strings.Count(out, id[7:19]) != 3 {
		t.Errorf("images:\n%s", out)
	}
	if out := c.ok("images", "--filter", "reference=myimage:*", "--format", "{{.Repository}}:{{.Tag}}"); out != "myimage:1\nmyimage:latest\n" {
		t.Errorf("filtered images: %q", out)
	}
	if out := c.ok("images", "-q"); out != id[7:19]+"\n" {
		t.Errorf("images -q: %q", out)
	}
	c.fail("push", "--tls-verify=false", reg+"/team/app:1.3")
	_, errs, code := c.run("wrong\n", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", reg)
	if code != 125 {
		t.Errorf("bad login: %d %s", code, errs)
	}
	if out, errs, code := c.run("pw\n", "login", "--tls-verify=false", "-u", "alice", "--password-stdin", reg); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: %d %s %s", code, out, errs)
	}
	c.ok("push", "--tls-verify=false", reg+"/team/app:1.3")
	var inspect []map[string]any
	if err := json.Unmarshal([]byte(c.ok("image", "inspect", "myimage")), &inspect); err != nil || len(inspect) != 1 || inspect[0]["Id"] != id {
		t.Fatalf("inspect: %v %v", inspect, err)
	}
	if out := c.ok("history", "myimage"); !strings.Contains(out, "berth import") {
		t.Errorf("history: %s", out)
	}
	arch := filepath.Join(tmp, "out.tar")
	c.ok("save", "-o", arch, "myimage:latest")
	c.ok("rmi", "myimage:1", "myimage:latest")
	c.ok("rmi", reg+"/team/app:1.3")
	if out := c.ok("images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
	if n := countDirs(t, filepath.Join(c.root, "image", "layers")); n != 0 {
		t.Errorf("%d layers left after rmi", n)
	}
	if out := c.ok("load", "-i", arch); !strings.Contains(out, "Loaded image: myimage:latest") {
		t.Errorf("load: %q", out)
	}
	if out := c.ok("pull", "-q", "--tls-verify=false", reg+"/team/app:1.3"); strings.TrimSpace(out) != reg+"/team/app:1.3" {
		t.Errorf("pull -q: %q", out)
	}
	mnt := strings.TrimSpace(c.ok("image", "mount", "myimage"))
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if b, err := os.ReadFile(filepath.Join(mnt, "bin/sh")); err != nil || string(b) != "sh" {
		t.Errorf("mounted image: %q %v", b, err)
	}
	c.ok("rmi", reg+"/team/app:1.3") // untags only: myimage:latest remains
	c.fail("rmi", "myimage")         // a mounted image is in use
	c.ok("image", "unmount", "myimage")
	c.ok("logout", reg)
	c.fail("pull", "--tls-verify=false", reg+"/team/app:1.3")
	c.fail("rmi", "nosuch")
	c.fail("pull", "--tls-verify=false", "127.0.0.1:1/x:1")
	if out := c.ok("image", "prune", "-a", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune: %q", out)
	}
}
