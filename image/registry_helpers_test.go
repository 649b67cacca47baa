package image

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry runs Debian's docker-registry on 127.0.0.1 and returns
// its host:port. With users, it requires htpasswd basic auth.
func startRegistry(t testing.TB, users map[string]string) string {
	t.Helper()
	bin := "/usr/bin/docker-registry"
	if _, err := os.Stat(bin); err != nil {
		t.Skip("docker-registry not installed (make deps)")
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", dir, addr)
	if len(users) > 0 {
		hp, err := exec.LookPath("htpasswd")
		if err != nil {
			t.Skip("htpasswd not installed (apache2-utils, make deps)")
		}
		pw := filepath.Join(dir, "htpasswd")
		for u, p := range users {
			out, err := exec.Command(hp, "-Bbn", u, p).Output()
			if err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(pw, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			f.Write(bytes.TrimSpace(out))
			f.Write([]byte("\n"))
			f.Close()
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", pw)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry did not start: %v\n%s", err, logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawBlob is a blob to push as is.
type rawBlob struct {
	mediaType string
	data      []byte
}

func (b rawBlob) desc() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: b.mediaType, Digest: digest.FromBytes(b.data), Size: int64(len(b.data))}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// testImage is an image made by hand for registries: its config and
// layer blobs and manifest.
type testImage struct {
	config   rawBlob
	layers   []rawBlob
	manifest []byte
}

func (ti testImage) manifestDigest() digest.Digest { return digest.FromBytes(ti.manifest) }

// makeTestImage builds an OCI image from uncompressed layer tars,
// compressing each with compress ("gzip", "zstd", "none").
func makeTestImage(t testing.TB, arch string, compress string, tars ...[]byte) testImage {
	var ti testImage
	created := time.Unix(1700000000, 0).UTC()
	cfg := ocispec.Image{Created: &created, Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}},
		RootFS: ocispec.RootFS{Type: "layers"}}
	for _, tb := range tars {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(tb))
		switch compress {
		case "zstd":
			ti.layers = append(ti.layers, rawBlob{ocispec.MediaTypeImageLayerZstd, zstdBytes(t, tb)})
		case "none":
			ti.layers = append(ti.layers, rawBlob{ocispec.MediaTypeImageLayer, tb})
		default:
			ti.layers = append(ti.layers, rawBlob{ocispec.MediaTypeImageLayerGzip, gzipBytes(t, tb)})
		}
	}
	cb, _ := json.Marshal(cfg)
	ti.config = rawBlob{ocispec.MediaTypeImageConfig, cb}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: ti.config.desc()}
	for _, l := range ti.layers {
		m.Layers = append(m.Layers, l.desc())
	}
	ti.manifest, _ = json.Marshal(m)
	return ti
}

// pushRaw uploads blobs and a manifest with the plain distribution API.
func pushRaw(t testing.TB, base, repo, tag string, blobs []rawBlob, manifest []byte, mediaType string) {
	t.Helper()
	for _, b := range blobs {
		resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			t.Fatalf("start upload: %s", resp.Status)
		}
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+digest.FromBytes(b.data).String(), bytes.NewReader(b.data))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload blob: %s", resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %s %s", resp.Status, body)
	}
}

func pushTestImage(t testing.TB, base, repo, tag string, ti testImage) {
	pushRaw(t, base, repo, tag, append([]rawBlob{ti.config}, ti.layers...), ti.manifest, ocispec.MediaTypeImageManifest)
}
