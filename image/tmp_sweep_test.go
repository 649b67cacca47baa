package image

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func tmpEntries(t *testing.T, dataRoot string) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataRoot, "image", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// Prune removes what killed berths left under tmp/, and nothing a live
// writer holds, even from another open of the store.
func TestPruneSweepsDeadTempsOnly(t *testing.T) {
	requireRoot(t)
	data := t.TempDir()
	s, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(s.Root(), "tmp")
	sentinel := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(sentinel, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Leftovers: as a killed berth leaves them, no lock held.
	os.WriteFile(filepath.Join(tmp, "blob-dead"), bytes.Repeat([]byte("x"), 1000), 0o600)
	os.MkdirAll(filepath.Join(tmp, "load-dead", "blobs"), 0o700)
	os.WriteFile(filepath.Join(tmp, "load-dead", "blobs", "f"), bytes.Repeat([]byte("y"), 500), 0o600)
	os.Symlink(filepath.Dir(sentinel), filepath.Join(tmp, "layer-link"))

	// Live writers.
	w, err := s.newBlobWriter()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("a live blob")
	w.Write(body)
	ld, err := s.createTemp("load", true, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer ld.Remove()
	os.WriteFile(filepath.Join(ld.path, "part"), []byte("p"), 0o600)

	// Another open of the store (as another berth would) spares fresh
	// leftovers; its prune takes them.
	s2, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := tmpEntries(t, data); !got["blob-dead"] || !got["load-dead"] {
		t.Fatalf("opening the store removed fresh leftovers: %v", got)
	}
	_, freed, err := s2.Prune(false)
	if err != nil {
		t.Fatal(err)
	}
	got := tmpEntries(t, data)
	for _, n := range []string{"blob-dead", "load-dead", "layer-link"} {
		if got[n] {
			t.Errorf("prune left %s", n)
		}
	}
	if freed < 1500 {
		t.Errorf("prune reported %d bytes freed, want at least 1500", freed)
	}
	if b, err := os.ReadFile(sentinel); err != nil || string(b) != "keep" {
		t.Errorf("the sentinel behind a symlink in tmp/ was touched: %q %v", b, err)
	}
	if !got[filepath.Base(w.tmp.path)] || !got[filepath.Base(ld.path)] {
		t.Fatalf("prune removed a live writer's temp entry: %v", got)
	}
	if _, err := w.Commit(digest.FromBytes(body), int64(len(body))); err != nil {
		t.Fatalf("live blob after prune: %v", err)
	}
	if b, err := s.ReadBlob(digest.FromBytes(body)); err != nil || !bytes.Equal(b, body) {
		t.Errorf("committed blob: %q %v", b, err)
	}
	// A committed blob is not in tmp/ any more, and a second prune still
	// spares the live dir.
	if _, _, err := s2.Prune(false); err != nil {
		t.Fatal(err)
	}
	if got := tmpEntries(t, data); len(got) != 1 || !got[filepath.Base(ld.path)] {
		t.Errorf("tmp/ after commit and prune: %v", got)
	}

	// Opening the store takes leftovers older than an hour.
	old := filepath.Join(tmp, "blob-old")
	os.WriteFile(old, []byte("o"), 0o600)
	then := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, then, then)
	if _, err := Open(data); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(old); err == nil {
		t.Error("an hour-old leftover survived opening the store")
	}
}

// pipeLoad starts `berth load` reading from a pipe the test writes.
func pipeLoad(t *testing.T, bin, data string) (*exec.Cmd, io.WriteCloser, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, "--data-root", data, "load")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, in, &errb
}

// waitNewLoadTemp waits for a tmp/ entry not in seen whose content has
// reached min bytes.
func waitNewLoadTemp(t *testing.T, data string, seen map[string]bool, min int64) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for n := range tmpEntries(t, data) {
			if !seen[n] && diskUsage(filepath.Join(data, "image", "tmp", n)) >= min {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no new temp entry of %d bytes under tmp/ (have %v)", min, tmpEntries(t, data))
	return ""
}

// A `berth load` killed with -9 mid-archive leaves its temp files; `berth
// image prune -f` removes them at once, while a load running at the same
// time keeps its own and completes.
func TestCLIPruneReclaimsKilledLoad(t *testing.T) {
	requireRoot(t)
	bin := berth(t)
	src := newStore(t)
	buildImage(t, src, "big:1", randomLayer(t, "blob", 16<<20))
	var arch bytes.Buffer
	if err := src.Save(&arch, []string{"big:1"}, FormatDocker); err != nil {
		t.Fatal(err)
	}
	half := arch.Len() / 2
	data := filepath.Join(t.TempDir(), "data")
	c := &cli{t: t, bin: bin, root: data}
	c.ok("images", "-q") // makes the store

	// The first load gets half the archive, then is killed.
	killed, in, _ := pipeLoad(t, bin, data)
	go in.Write(arch.Bytes()[:half])
	dead := waitNewLoadTemp(t, data, map[string]bool{}, 4<<20)
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Wait()
	in.Close()
	if !tmpEntries(t, data)[dead] {
		t.Fatalf("the killed load left no %s", dead)
	}

	// The second one is live, stalled half-way, while prune runs.
	live, in2, errb := pipeLoad(t, bin, data)
	wrote := make(chan error, 1)
	go func() { _, err := in2.Write(arch.Bytes()[:half]); wrote <- err }()
	liveTmp := waitNewLoadTemp(t, data, map[string]bool{dead: true}, 4<<20)

	out := c.ok("image", "prune", "-f")
	t.Logf("prune: %s", strings.TrimSpace(out))
	got := tmpEntries(t, data)
	if got[dead] {
		t.Errorf("prune left the killed load's %s", dead)
	}
	if !got[liveTmp] {
		t.Fatalf("prune removed the live load's %s", liveTmp)
	}
	if strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("prune reported nothing reclaimed: %q", out)
	}

	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if _, err := in2.Write(arch.Bytes()[half:]); err != nil {
		t.Fatal(err)
	}
	in2.Close()
	if err := live.Wait(); err != nil {
		t.Fatalf("the live load failed after prune: %v: %s", err, errb.String())
	}
	if out := c.ok("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "big:1") {
		t.Errorf("images after the live load: %q", out)
	}
	if got := tmpEntries(t, data); len(got) != 0 {
		t.Errorf("tmp/ not empty after the load: %v", got)
	}
}
