package image

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// slowReader trickles a body out so a pull can be interrupted mid-blob.
type slowReader struct{ r io.ReadCloser }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(20 * time.Millisecond)
	if len(p) > 16<<10 {
		p = p[:16<<10]
	}
	return s.r.Read(p)
}
func (s slowReader) Close() error { return s.r.Close() }

// TestCLIPullInterruptedBySIGINT interrupts `berth pull` with a real SIGINT
// while one layer is stored and another is still arriving: no image may be
// listed, and the next pull must not fetch the stored layer again.
func TestCLIPullInterruptedBySIGINT(t *testing.T) {
	requireRoot(t)
	reg := startRegistry(t, nil)
	small := makeTar(t, file("small", []byte("small layer"), 0o644))
	big := makeTar(t, file("big", randomBytes(t, 8<<20), 0o644))
	ti := makeTestImage(t, "amd64", "none", small, big)
	pushTestImage(t, "http://"+reg, "team/slow", "1", ti)
	smallDigest, bigDigest := digest.FromBytes(small), digest.FromBytes(big)

	var mu sync.Mutex
	gets := map[digest.Digest]int{}
	throttle := true
	target, _ := url.Parse("http://" + reg)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		p := resp.Request.URL.Path
		mu.Lock()
		defer mu.Unlock()
		for _, d := range []digest.Digest{smallDigest, bigDigest} {
			if strings.HasSuffix(p, "/blobs/"+d.String()) && resp.Request.Method == http.MethodGet {
				gets[d]++
				if d == bigDigest && throttle {
					resp.Body = slowReader{resp.Body}
				}
			}
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ref := ln.Addr().String() + "/team/slow:1"

	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(berth(t), "--data-root", data, "pull", "-q", "--tls-verify=false", ref)
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	blob := filepath.Join(data, "image/blobs/sha256", smallDigest.Encoded())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(blob); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("small layer never stored; stderr %s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("interrupted pull exited 0")
	}
	if s := strings.TrimSpace(errb.String()); s == "" || strings.Contains(s, "\n") {
		t.Errorf("want a one-line error, got %q", s)
	}
	c := &cli{t: t, bin: berth(t), root: data}
	if out := c.ok("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("a partial image is listed: %q", out)
	}
	before, err := os.Stat(blob)
	if err != nil {
		t.Fatalf("verified blob gone after interrupt: %v", err)
	}

	mu.Lock()
	throttle = false
	mu.Unlock()
	c.ok("pull", "-q", "--tls-verify=false", ref)
	after, err := os.Stat(blob)
	if err != nil || !os.SameFile(before, after) {
		t.Errorf("the stored layer was replaced on the second pull (%v)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gets[smallDigest] != 1 {
		t.Errorf("small layer fetched %d times, want 1", gets[smallDigest])
	}
	if out := c.ok("images", "-q"); strings.TrimSpace(out) == "" {
		t.Error("image missing after the second pull")
	}
}
