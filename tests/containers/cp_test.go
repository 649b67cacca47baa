package containers

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/tests/rig"
)

// hostSecret makes a host directory the container cannot see, holding a
// file only the host has: what an attack through cp would reach.
func hostSecret(t *testing.T) (dir string, files func() []string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("HOSTSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, func() []string {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
}

// A symlink the container planted where cp writes must be replaced, not
// written through to the host file it names.
func TestCpIntoPlantedSymlink(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secretDir, _ := hostSecret(t)
	target := filepath.Join(secretDir, "secret")
	c.Must("run", "--name", "evil", rig.TestImage, "sh", "-c", "ln -s "+target+" /tmp/report.txt; ln -s "+secretDir+" /tmp/dirlink")
	src := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(src, []byte("report\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", src, "evil:/tmp/")
	// The directory link resolves inside the container, where its target
	// does not exist.
	if r := c.Berth("cp", src, "evil:/tmp/dirlink/"); r.Code != 125 {
		t.Errorf("cp into a directory symlink pointing out: %d %s", r.Code, r.Stderr)
	}
	if got := rig.ReadFile(t, target); got != "HOSTSECRET\n" {
		t.Fatalf("cp wrote through the container's symlink to the host: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(secretDir, "report.txt")); err == nil {
		t.Fatalf("cp followed the container's directory symlink to the host")
	}
	out := t.TempDir()
	c.Must("cp", "evil:/tmp/report.txt", out)
	if fi, err := os.Lstat(filepath.Join(out, "report.txt")); err != nil || !fi.Mode().IsRegular() || rig.ReadFile(t, filepath.Join(out, "report.txt")) != "report\n" {
		t.Errorf("the container's /tmp/report.txt is not the copied file: %v %v", fi, err)
	}
}

// Device nodes a container made are copied as nodes both ways, never
// opened on the host (where no device cgroup applies).
func TestCpDeviceNodes(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "--name", "dev", rig.TestImage, "sh", "-c", "mknod /zero c 1 5 && mknod /nul c 1 3 && mkfifo /fifo")
	out := t.TempDir()
	for _, name := range []string{"zero", "fifo"} {
		cmd := c.Cmd("cp", "dev:/"+name, out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
		err := cmd.Wait()
		timer.Stop()
		if err != nil {
			t.Fatalf("cp dev:/%s: %v %s (a device or fifo opened on the host hangs)", name, err, stderr.String())
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, "zero"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 5 {
		t.Errorf("cp out of a device node: want a 1:5 character device, got mode %o rdev %d (%v)", st.Mode, st.Rdev, err)
	}
	if err := unix.Lstat(filepath.Join(out, "fifo"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("cp out of a fifo: mode %o (%v)", st.Mode, err)
	}
	// Into the container, onto the node: the node is replaced.
	src := filepath.Join(t.TempDir(), "nul")
	if err := os.WriteFile(src, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", src, "dev:/nul")
	back := t.TempDir()
	c.Must("cp", "dev:/nul", back)
	if fi, err := os.Lstat(filepath.Join(back, "nul")); err != nil || !fi.Mode().IsRegular() || rig.ReadFile(t, filepath.Join(back, "nul")) != "data\n" {
		t.Errorf("cp onto a device node wrote into the device instead of replacing it: %v %v", fi, err)
	}
}

// A running container swapping a directory and a symlink to a host path,
// over and over (CVE-2018-15664): cp out and cp in never reach the
// host's files.
func TestCpRaceSwap(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secretDir, hostFiles := hostSecret(t)
	c.Must("run", "-d", "--name", "swap", rig.TestImage, "sh", "-c",
		"mkdir -p /w/dir && echo container > /w/dir/secret && ln -s "+secretDir+" /w/link && exec /probe swap /w/dir /w/link")
	defer c.Berth("rm", "-f", "swap")
	src := filepath.Join(t.TempDir(), "dropped")
	if err := os.WriteFile(src, []byte("dropped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// Hundreds on the host; under the VMs' emulated CPU every berth call
	// costs several times more, and their run is for the older kernel's
	// path resolution, which a hundred rounds exercise.
	iterations := 300
	if testing.Short() || os.Getenv("BERTH_VM") != "" {
		iterations = 100
	}
	var ok, failed int
	for i := 0; i < iterations; i++ {
		dst := filepath.Join(out, "got")
		os.RemoveAll(dst)
		r := c.Berth("cp", "swap:/w/dir/secret", dst)
		if r.Code == 0 {
			ok++
			if got := rig.ReadFile(t, dst); got != "container\n" {
				t.Fatalf("iteration %d: cp out copied a host file: %q", i, got)
			}
		} else {
			failed++
			if strings.Contains(r.Stderr, c.Data) {
				t.Errorf("cp error names a host path: %s", r.Stderr)
			}
		}
		c.Berth("cp", src, "swap:/w/dir/")
		if names := hostFiles(); len(names) != 1 {
			t.Fatalf("iteration %d: cp in wrote into the host directory: %v", i, names)
		}
	}
	t.Logf("cp out: %d copied, %d refused", ok, failed)
	if ok == 0 {
		t.Errorf("cp out never succeeded: the test does not exercise the race")
	}
}

func TestExportRaceSwap(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secretDir, _ := hostSecret(t)
	c.Must("run", "-d", "--name", "swap", rig.TestImage, "sh", "-c",
		"mkdir -p /w/dir && echo container > /w/dir/secret && ln -s "+secretDir+" /w/link && exec /probe swap /w/dir /w/link")
	defer c.Berth("rm", "-f", "swap")
	iterations := 40
	if testing.Short() || os.Getenv("BERTH_VM") != "" {
		iterations = 15
	}
	for i := 0; i < iterations; i++ {
		var buf bytes.Buffer
		cmd := c.Cmd("export", "swap")
		cmd.Stdout = &buf
		if err := cmd.Run(); err != nil {
			t.Fatalf("export: %v", err)
		}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("export tar: %v", err)
			}
			b, _ := io.ReadAll(tr)
			if strings.Contains(string(b), "HOSTSECRET") {
				t.Fatalf("export %d carries the host's file as %s", i, h.Name)
			}
		}
	}
}

// cp's Docker forms: tar streams on stdin/stdout, -a, -L, dir/. merging,
// and errors that name container paths.
func TestCpForms(t *testing.T) {
	c := rig.NewContainerEnv(t)
	c.Must("run", "--name", "f", rig.TestImage, "sh", "-c",
		"mkdir -p /d/sub /existing && echo f > /d/sub/f && echo keep > /existing/keep && echo t > /target && ln -s /target /lnk")
	// CTR:PATH - is a tar stream of the path, named by its base.
	r := c.Berth("cp", "f:/d", "-")
	if r.Code != 0 {
		t.Fatalf("cp f:/d -: %d %s", r.Code, r.Stderr)
	}
	names := tarNames(t, []byte(r.Stdout))
	if !contains(names, "d/") || !contains(names, "d/sub/f") {
		t.Errorf("cp to stdout: entries %v", names)
	}
	// - CTR:PATH extracts a tar stream into a directory.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "a/b.txt", Typeflag: tar.TypeReg, Mode: 0o640, Size: 3, Uid: 1234, Gid: 5678})
	tw.Write([]byte("hi\n"))
	tw.Close()
	if r := c.BerthIn(buf.Bytes(), "cp", "-", "f:/existing"); r.Code != 0 {
		t.Fatalf("cp - f:/existing: %d %s", r.Code, r.Stderr)
	}
	if r := c.BerthIn(buf.Bytes(), "cp", "-a", "-", "f:/d"); r.Code != 0 {
		t.Fatalf("cp -a - f:/d: %d %s", r.Code, r.Stderr)
	}
	// dir/. merges into an existing directory; -a keeps owners.
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "new"), []byte("new\n"), 0o644)
	os.Chown(filepath.Join(hostDir, "new"), 4321, 8765)
	c.Must("cp", hostDir+"/.", "f:/existing")
	c.Must("cp", "-a", filepath.Join(hostDir, "new"), "f:/d/owned")
	out := t.TempDir()
	c.Must("cp", "-a", "f:/existing", out)
	c.Must("cp", "-a", "f:/d", out)
	for name, want := range map[string][3]int{
		"existing/keep":    {0, 0, 0},
		"existing/new":     {0, 0, 0},
		"existing/a/b.txt": {0, 0, 0o640},
		"d/a/b.txt":        {1234, 5678, 0o640},
		"d/owned":          {4321, 8765, 0o644},
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(out, name), &st); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if int(st.Uid) != want[0] || int(st.Gid) != want[1] || want[2] != 0 && int(st.Mode&0o777) != want[2] {
			t.Errorf("%s: owner %d:%d mode %o, want %d:%d %o", name, st.Uid, st.Gid, st.Mode&0o777, want[0], want[1], want[2])
		}
	}
	// -L follows a symlink given as the source; without it the link is copied.
	c.Must("cp", "f:/lnk", filepath.Join(out, "lnk"))
	if l, err := os.Readlink(filepath.Join(out, "lnk")); err != nil || l != "/target" {
		t.Errorf("cp of a symlink: %q %v", l, err)
	}
	c.Must("cp", "-L", "f:/lnk", filepath.Join(out, "followed"))
	if got := rig.ReadFile(t, filepath.Join(out, "followed")); got != "t\n" {
		t.Errorf("cp -L: %q", got)
	}
	// Errors name the container's path, never the host's data root.
	r = c.Berth("cp", "f:/nope/x", out)
	if r.Code != 125 || !strings.Contains(r.Stderr, "f:/nope/x") || strings.Contains(r.Stderr, c.Data) {
		t.Errorf("cp of a missing path: %d %q", r.Code, r.Stderr)
	}
	r = c.Berth("cp", filepath.Join(hostDir, "new"), "f:/nope/dir/")
	if r.Code != 125 || strings.Contains(r.Stderr, c.Data) {
		t.Errorf("cp into a missing directory: %d %q", r.Code, r.Stderr)
	}
	r = c.Berth("cp", hostDir, "f:/target")
	if r.Code != 125 || !strings.Contains(r.Stderr, "not a directory") && !strings.Contains(r.Stderr, "non-directory") {
		t.Errorf("cp of a directory onto a file: %d %q", r.Code, r.Stderr)
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A path under a volume is copied to and from the volume, which is what
// the container sees there, not the image's directory under it; a symlink
// in the volume pointing at the host is not followed.
func TestCpVolume(t *testing.T) {
	c := rig.NewContainerEnv(t)
	secretDir, hostFiles := hostSecret(t)
	c.Must("run", "--name", "v", "-v", "cpvol:/data", rig.TestImage, "sh", "-c",
		"echo in-volume > /data/f && ln -s "+secretDir+" /data/out")
	src := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(src, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Must("cp", src, "v:/data/")
	if r := c.Berth("cp", src, "v:/data/out/"); r.Code != 125 {
		t.Errorf("cp through the volume's symlink to the host: %d %s", r.Code, r.Stderr)
	}
	if names := hostFiles(); len(names) != 1 {
		t.Fatalf("cp into a volume wrote on the host: %v", names)
	}
	if got := c.Must("run", "--rm", "-v", "cpvol:/data", rig.TestImage, "cat", "/data/f", "/data/new"); got != "in-volume\nnew\n" {
		t.Errorf("the volume holds %q", got)
	}
	out := t.TempDir()
	c.Must("cp", "v:/data/f", out)
	if got := rig.ReadFile(t, filepath.Join(out, "f")); got != "in-volume\n" {
		t.Errorf("cp out of the volume: %q", got)
	}
	c.Must("rm", "v")
	c.Must("volume", "rm", "cpvol")
}
