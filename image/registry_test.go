package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

func plainOpts(out *bytes.Buffer) PullOptions {
	return PullOptions{RemoteOptions: RemoteOptions{InsecureTLS: true, Keychain: &Keychain{}, Progress: out}}
}

func TestPushPullRoundTrip(t *testing.T) {
	src := newStore(t)
	reg := startRegistry(t, nil)
	base := randomLayer(t, "base", 2<<20)
	img := buildImage(t, src, "app:1.3", base, randomLayer(t, "app", 100<<10))
	ref := reg + "/team/app:1.3"
	if err := src.Tag("app:1.3", ref); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	dig, err := src.Push(context.Background(), ref, PushOptions{plainOpts(&out).RemoteOptions})
	if err != nil {
		t.Fatal(err)
	}
	if dig != img.ManifestDigest {
		t.Fatalf("pushed %s, have %s", dig, img.ManifestDigest)
	}
	if strings.Count(out.String(), "Pushed") != 2 {
		t.Errorf("push output: %q", out.String())
	}
	// Pushing again sends no blob.
	out.Reset()
	if _, err := src.Push(context.Background(), ref, PushOptions{plainOpts(&out).RemoteOptions}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "Pushed") {
		t.Errorf("second push uploaded blobs: %q", out.String())
	}
	if sk, err := exec.LookPath("skopeo"); err == nil {
		b, err := exec.Command(sk, "inspect", "--tls-verify=false", "docker://"+ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect: %v", err)
		}
		var info struct{ Digest string }
		json.Unmarshal(b, &info)
		if info.Digest != dig.String() {
			t.Errorf("skopeo sees %s, berth pushed %s", info.Digest, dig)
		}
	}

	dst := newStore(t)
	out.Reset()
	got, err := dst.Pull(context.Background(), ref, plainOpts(&out))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || got.ManifestDigest != img.ManifestDigest {
		t.Fatalf("pulled %s/%s, pushed %s/%s", got.ID, got.ManifestDigest, img.ID, img.ManifestDigest)
	}
	if strings.Count(out.String(), "Pull complete") != 2 {
		t.Errorf("pull output: %q", out.String())
	}
	for i, d := range got.LayerDirs() {
		if err := exec.Command("diff", "-r", d, img.LayerDirs()[i]).Run(); err != nil {
			t.Errorf("layer %d differs", i)
		}
	}
	if len(got.RepoTags) != 1 || got.RepoTags[0] != ref || len(got.RepoDigests) != 1 {
		t.Errorf("tags %v digests %v", got.RepoTags, got.RepoDigests)
	}
	if _, err := dst.Resolve(reg + "/team/app@" + dig.String()); err != nil {
		t.Errorf("resolve by digest: %v", err)
	}
	// Again: nothing downloaded.
	out.Reset()
	if _, err := dst.Pull(context.Background(), ref, plainOpts(&out)); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "Already exists") != 2 {
		t.Errorf("second pull: %q", out.String())
	}
	// An image on the same base shares the base layer on disk.
	pushTestImage(t, "http://"+reg, "team/other", "1", makeTestImage(t, "amd64", "gzip", base, randomLayer(t, "other", 1000)))
	out.Reset()
	other, err := dst.Pull(context.Background(), reg+"/team/other:1", plainOpts(&out))
	if err != nil {
		t.Fatal(err)
	}
	if other.LayerDirs()[0] != got.LayerDirs()[0] {
		t.Errorf("base layer not shared")
	}
	if n := countDirs(t, filepath.Join(dst.Root(), "layers")); n != 3 {
		t.Errorf("%d layer dirs for 2 images of 2 layers sharing one, want 3", n)
	}
}

func TestPullZstdAndPlatforms(t *testing.T) {
	reg := startRegistry(t, nil)
	base := "http://" + reg
	amd := makeTestImage(t, "amd64", "zstd", randomLayer(t, "z", 300<<10))
	arm := makeTestImage(t, "arm64", "none", randomLayer(t, "u", 1000))
	pushTestImage(t, base, "multi", "amd", amd)
	pushTestImage(t, base, "multi", "arm", arm)
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: arm.manifestDigest(), Size: int64(len(arm.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: amd.manifestDigest(), Size: int64(len(amd.manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
	}}
	ib, _ := json.Marshal(idx)
	pushRaw(t, base, "multi", "latest", nil, ib, ocispec.MediaTypeImageIndex)

	s := newStore(t)
	opts := plainOpts(&bytes.Buffer{})
	img, err := s.Pull(context.Background(), reg+"/multi", opts)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Architecture != "amd64" || img.Manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Errorf("got %s image, layer %s", img.Config.Architecture, img.Manifest.Layers[0].MediaType)
	}
	if _, err := os.Stat(filepath.Join(img.LayerDirs()[0], "data", "z")); err != nil {
		t.Error(err)
	}
	opts.Platform = "linux/arm64"
	img2, err := s.Pull(context.Background(), reg+"/multi", opts)
	if err != nil {
		t.Fatal(err)
	}
	if img2.Config.Architecture != "arm64" {
		t.Errorf("got %s", img2.Config.Architecture)
	}
	opts.Platform = "linux/s390x"
	if _, err := s.Pull(context.Background(), reg+"/multi", opts); err == nil || !strings.Contains(err.Error(), "no image for platform") {
		t.Errorf("missing platform: %v", err)
	}
}

func TestBasicAuthLogin(t *testing.T) {
	reg := startRegistry(t, map[string]string{"alice": "s3cret"})
	s := newStore(t)
	buildImage(t, s, reg+"/team/app:1.2", randomLayer(t, "a", 1000))
	authFile := filepath.Join(t.TempDir(), "config.json")
	ro := RemoteOptions{InsecureTLS: true, Keychain: &Keychain{Files: []string{authFile}}, Quiet: true}
	_, err := s.Push(context.Background(), reg+"/team/app:1.2", PushOptions{ro})
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("anonymous push: %v", err)
	}
	t.Logf("anonymous: %v", err)
	if err := Login(context.Background(), reg, "alice", "wrong", authFile, ro); err == nil {
		t.Fatal("login with a bad password worked")
	}
	if err := Login(context.Background(), reg, "alice", "s3cret", authFile, ro); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(authFile)
	if !strings.Contains(string(b), base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))) {
		t.Errorf("auth file: %s", b)
	}
	if _, err := s.Push(context.Background(), reg+"/team/app:1.2", PushOptions{ro}); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t)
	if _, err := s2.Pull(context.Background(), reg+"/team/app:1.2", PullOptions{RemoteOptions: ro}); err != nil {
		t.Fatal(err)
	}
	if ok, err := RemoveLogin(authFile, reg); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

// tokenRegistry is an in-memory registry behind the bearer-token flow.
func tokenRegistry(t *testing.T) string {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != "bob" || p != "pw" || r.URL.Query().Get("service") != "berth-test" || r.URL.Query().Get("scope") == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + u})
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-bob" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="berth-test",scope="repository:x:pull"`, srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestBearerToken(t *testing.T) {
	reg := tokenRegistry(t)
	s := newStore(t)
	img := buildImage(t, s, reg+"/t/app:1", randomLayer(t, "a", 1000))
	authFile := filepath.Join(t.TempDir(), "config.json")
	ro := RemoteOptions{InsecureTLS: true, Keychain: &Keychain{Files: []string{authFile}}, Quiet: true}
	if _, err := s.Push(context.Background(), reg+"/t/app:1", PushOptions{ro}); err == nil {
		t.Fatal("anonymous push worked")
	}
	if err := Login(context.Background(), reg, "bob", "nope", authFile, ro); err == nil {
		t.Fatal("bad login worked")
	}
	if err := Login(context.Background(), reg, "bob", "pw", authFile, ro); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Push(context.Background(), reg+"/t/app:1", PushOptions{ro}); err != nil {
		t.Fatal(err)
	}
	got, err := newStore(t).Pull(context.Background(), reg+"/t/app:1", PullOptions{RemoteOptions: ro})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID {
		t.Fatal("different image")
	}
}

// faultRegistry serves an in-memory registry through fault.
func faultRegistry(t *testing.T, fault func(w http.ResponseWriter, r *http.Request) bool) string {
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault != nil && fault(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func assertNoImage(t *testing.T, s *Store) {
	t.Helper()
	list, err := s.List()
	if err != nil || len(list) != 0 {
		t.Errorf("images listed after a failed pull: %d %v", len(list), err)
	}
}

func TestPullBadInput(t *testing.T) {
	var mode, skip atomic.Value
	mode.Store("")
	skip.Store("none")
	reg := faultRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		isBlob := strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Method == http.MethodGet
		switch mode.Load().(string) {
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			return true
		case "401":
			w.WriteHeader(http.StatusUnauthorized)
			return true
		case "drop":
			if isBlob && strings.Contains(r.URL.Path, "sha256:") {
				if r.Header.Get("X-Small") == "" && !strings.HasSuffix(r.URL.Path, "cfg") {
					hj := w.(http.Hijacker)
					c, buf, _ := hj.Hijack()
					buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Type: application/octet-stream\r\n\r\n")
					buf.Write(make([]byte, 1000))
					buf.Flush()
					c.Close()
					return true
				}
			}
		case "corrupt", "corruptlayer":
			if isBlob && (mode.Load() == "corrupt" || !strings.HasSuffix(r.URL.Path, skip.Load().(string))) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(gzipBytes(t, makeTar(t, file("evil", []byte("x"), 0o644))))
				return true
			}
		}
		return false
	})
	base := "http://" + reg
	good := makeTestImage(t, "amd64", "gzip", randomLayer(t, "g", 300<<10))
	pushTestImage(t, base, "good", "1", good)
	skip.Store(good.config.desc().Digest.String())
	// A manifest naming a blob that is not there.
	missing := makeTestImage(t, "amd64", "gzip", randomLayer(t, "m", 1000))
	pushRaw(t, base, "missing", "1", []rawBlob{missing.config}, missing.manifest, ocispec.MediaTypeImageManifest)
	// An unknown layer media type.
	var um ocispec.Manifest
	json.Unmarshal(good.manifest, &um)
	um.Layers[0].MediaType = "application/x-unknown-layer"
	umb, _ := json.Marshal(um)
	pushRaw(t, base, "unknown", "1", nil, umb, ocispec.MediaTypeImageManifest)
	// A tar escaping its layer.
	evil := makeTestImage(t, "amd64", "gzip", makeTar(t, symlink("etc", "/etc"), file("etc/berth-evil", []byte("x"), 0o644)))
	pushTestImage(t, base, "evil", "1", evil)
	evil2 := makeTestImage(t, "amd64", "gzip", makeTar(t, file("../../../../berth-evil", []byte("x"), 0o644)))
	pushTestImage(t, base, "evil2", "1", evil2)

	cases := []struct{ mode, ref, want string }{
		{"", "nosuch:1", "NAME_UNKNOWN"},
		{"", "good:404", "MANIFEST_UNKNOWN"},
		{"500", "good:1", "500"},
		{"401", "good:1", "401"},
		{"drop", "good:1", "EOF"},
		{"corrupt", "good:1", "checksum"},
		{"corruptlayer", "good:1", "checksum"},
		{"", "missing:1", "BLOB_UNKNOWN"},
		{"", "unknown:1", "unsupported layer media type"},
		{"", "evil:1", "symlink"},
		{"", "evil2:1", "leaves the layer"},
	}
	for _, c := range cases {
		t.Run(c.mode+c.ref, func(t *testing.T) {
			mode.Store(c.mode)
			defer mode.Store("")
			s := newStore(t)
			_, err := s.Pull(context.Background(), reg+"/"+c.ref, plainOpts(&bytes.Buffer{}))
			if err == nil {
				t.Fatal("pull succeeded")
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			assertNoImage(t, s)
			if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
				t.Errorf("temp files left: %v", ents)
			}
			if n := countDirs(t, filepath.Join(s.Root(), "layers")); n != 0 {
				t.Errorf("%d layers left", n)
			}
		})
	}
	if _, err := os.Lstat("/etc/berth-evil"); err == nil {
		os.Remove("/etc/berth-evil")
		t.Fatal("a layer wrote /etc/berth-evil")
	}
}

func TestPullInterruptedResumes(t *testing.T) {
	var hold atomic.Bool
	hold.Store(true)
	var mu sync.Mutex
	fetched := map[string]int{}
	release := make(chan struct{})
	ti := makeTestImage(t, "amd64", "gzip", randomLayer(t, "a", 200<<10), randomLayer(t, "b", 200<<10), randomLayer(t, "c", 200<<10))
	slow := ti.layers[2].desc().Digest.String()
	reg := faultRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			mu.Lock()
			fetched[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
			mu.Unlock()
			if hold.Load() && strings.HasSuffix(r.URL.Path, slow) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return true
			}
		}
		return false
	})
	defer close(release)
	pushTestImage(t, "http://"+reg, "app", "1", ti)
	mu.Lock()
	fetched = map[string]int{}
	mu.Unlock()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel (as SIGINT does) once the two other layers are stored.
		for !s.HasBlob(ti.layers[0].desc().Digest) || !s.HasBlob(ti.layers[1].desc().Digest) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := s.Pull(ctx, reg+"/app:1", plainOpts(&bytes.Buffer{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pull: %v", err)
	}
	assertNoImage(t, s)
	hold.Store(false)
	var out bytes.Buffer
	if _, err := s.Pull(context.Background(), reg+"/app:1", plainOpts(&out)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, l := range ti.layers {
		want := 1
		if i == 2 {
			want = 2
		}
		if n := fetched[l.desc().Digest.String()]; n != want {
			t.Errorf("layer %d fetched %d times, want %d", i, n, want)
		}
	}
}

func TestPullFullDisk(t *testing.T) {
	requireRoot(t)
	reg := faultRegistry(t, nil)
	ti := makeTestImage(t, "amd64", "gzip", randomLayer(t, "big", 3<<20))
	pushTestImage(t, "http://"+reg, "big", "1", ti)
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(context.Background(), reg+"/big:1", plainOpts(&bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("pull on a full disk: %v", err)
	}
	t.Logf("%v", err)
	assertNoImage(t, s)
	if ents, _ := os.ReadDir(filepath.Join(s.Root(), "tmp")); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}
