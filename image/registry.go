package image

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// RemoteOptions are shared by pull, push and login.
type RemoteOptions struct {
	// InsecureTLS (--tls-verify=false) allows plain HTTP and unverified
	// certificates.
	InsecureTLS bool
	// Keychain finds credentials; nil means DefaultKeychain.
	Keychain authn.Keychain
	// Progress receives progress output; Quiet silences it.
	Progress io.Writer
	Quiet    bool
}

// PullOptions tune Pull.
type PullOptions struct {
	RemoteOptions
	// Platform is os/arch[/variant]; empty means the host's.
	Platform string
	// Jobs is how many layers are fetched at once (default 4).
	Jobs int
}

// PushOptions tune Push.
type PushOptions struct {
	RemoteOptions
}

func (o RemoteOptions) nameOpts() []name.Option {
	if o.InsecureTLS {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o RemoteOptions) remoteOpts(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = DefaultKeychain()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if o.InsecureTLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --tls-verify=false
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(tr),
		remote.WithUserAgent("berth"),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		remote.WithJobs(4),
	}
}

func parseRemote(ref string, o RemoteOptions) (Reference, name.Reference, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return r, nil, err
	}
	nr, err := name.ParseReference(r.String(), o.nameOpts()...)
	if err != nil {
		return r, nil, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	return r, nr, nil
}

// Platform is os/arch/variant.
type Platform struct{ OS, Arch, Variant string }

// ParsePlatform parses "os/arch[/variant]"; "" is the host's platform.
func ParsePlatform(s string) (Platform, error) {
	if s == "" {
		p := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
		if p.Arch == "arm64" {
			p.Variant = "v8"
		}
		return p, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("invalid platform %q (want os/arch[/variant])", s)
	}
	p := Platform{OS: parts[0], Arch: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Arch
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pick chooses the manifest for p in an index.
func (p Platform) pick(idx ocispec.Index) (ocispec.Descriptor, error) {
	var best *ocispec.Descriptor
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if d.Platform == nil || d.Platform.OS != p.OS || d.Platform.Architecture != p.Arch {
			continue
		}
		if p.Variant != "" && d.Platform.Variant != "" && d.Platform.Variant != p.Variant {
			continue
		}
		if best == nil || (p.Variant != "" && d.Platform.Variant == p.Variant) {
			best = d
		}
	}
	if best == nil {
		var have []string
		for _, d := range idx.Manifests {
			if d.Platform != nil && d.Platform.OS != "unknown" {
				have = append(have, Platform{d.Platform.OS, d.Platform.Architecture, d.Platform.Variant}.String())
			}
		}
		return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s in the manifest list (has %s)", p, strings.Join(have, ", "))
	}
	return *best, nil
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

func checkConfigMediaType(mt string) error {
	if mt == ocispec.MediaTypeImageConfig || mt == MediaTypeDockerConfig {
		return nil
	}
	return fmt.Errorf("unsupported config media type %q", mt)
}

// parseManifest checks a manifest's media types.
func parseManifest(b []byte, mediaType string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("parse manifest: %w", err)
	}
	if m.MediaType != "" && mediaType != "" && m.MediaType != mediaType {
		return m, fmt.Errorf("manifest says media type %q, served as %q", m.MediaType, mediaType)
	}
	if m.SchemaVersion != 2 {
		return m, fmt.Errorf("unsupported manifest schema version %d", m.SchemaVersion)
	}
	if err := checkConfigMediaType(m.Config.MediaType); err != nil {
		return m, err
	}
	if m.Config.Digest.Validate() != nil {
		return m, fmt.Errorf("manifest has a bad config digest %q", m.Config.Digest)
	}
	for _, l := range m.Layers {
		if err := checkLayerMediaType(l.MediaType); err != nil {
			return m, err
		}
		if err := l.Digest.Validate(); err != nil || l.Digest.Algorithm() != digest.SHA256 {
			return m, fmt.Errorf("manifest has a bad layer digest %q", l.Digest)
		}
	}
	return m, nil
}

// parseConfig reads an image config and checks it matches the manifest.
func parseConfig(b []byte, m ocispec.Manifest) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse image config: %w", err)
	}
	if len(c.RootFS.DiffIDs) != len(m.Layers) {
		return c, fmt.Errorf("image config lists %d layers, manifest %d", len(c.RootFS.DiffIDs), len(m.Layers))
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return c, fmt.Errorf("image config has a bad diff id %q", d)
		}
	}
	return c, nil
}

// Pull fetches ref from its registry into the store and returns the image.
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	img, err := s.pull(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	s.emit("pull", ref, ref)
	return img, nil
}

func (s *Store) pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, nref, err := parseRemote(ref, opts.RemoteOptions)
	if err != nil {
		return nil, err
	}
	plat, err := ParsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	unlock, err := s.opLock(false, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ropts := opts.remoteOpts(ctx)
	prog := newProgress(opts.Progress, opts.Quiet)
	defer prog.wait()

	desc, err := remote.Get(nref, ropts...)
	if err != nil {
		return nil, err
	}
	topDigest := digest.Digest(desc.Digest.String())
	mt, raw := string(desc.MediaType), desc.Manifest
	if digest.FromBytes(raw) != topDigest {
		return nil, fmt.Errorf("manifest digest mismatch: expected %s, got %s", topDigest, digest.FromBytes(raw))
	}
	if isIndex(mt) {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("parse manifest list: %w", err)
		}
		chosen, err := plat.pick(idx)
		if err != nil {
			return nil, err
		}
		logrus.Debugf("pull: %s for %s is %s", r, plat, chosen.Digest)
		desc, err = remote.Get(nref.Context().Digest(chosen.Digest.String()), ropts...)
		if err != nil {
			return nil, err
		}
		mt, raw = string(desc.MediaType), desc.Manifest
		if got := digest.FromBytes(raw); got != chosen.Digest {
			return nil, fmt.Errorf("manifest digest mismatch: expected %s, got %s", chosen.Digest, got)
		}
	}
	if !isManifest(mt) {
		return nil, fmt.Errorf("unsupported manifest media type %q", mt)
	}
	m, err := parseManifest(raw, mt)
	if err != nil {
		return nil, err
	}
	mdig := digest.FromBytes(raw)

	// Config.
	var cfgRaw []byte
	if s.HasBlob(m.Config.Digest) {
		cfgRaw, err = s.ReadBlob(m.Config.Digest)
	} else {
		cfgRaw, err = fetchSmallBlob(nref, m.Config, ropts)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(cfgRaw, m)
	if err != nil {
		return nil, err
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)

	// Layers, in parallel.
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = 4
	}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for i, l := range m.Layers {
		needBlob, needUnpack := !s.HasBlob(l.Digest), !s.HasLayer(chains[i])
		id := shortID(l.Digest)
		if !needBlob && !needUnpack {
			prog.layer(id, "Exists", l.Size).done("Already exists")
			continue
		}
		wg.Add(1)
		go func(i int, l ocispec.Descriptor) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				fail(ctx.Err())
				return
			}
			defer func() { <-sem }()
			lp := prog.layer(id, "Downloading", l.Size)
			var rc io.ReadCloser
			var err error
			if needBlob {
				rc, err = openRemoteBlob(nref, l, ropts)
			} else {
				rc, err = s.OpenBlob(l.Digest)
			}
			if err == nil {
				err = s.ingestLayer(lp.reader(rc), l, cfg.RootFS.DiffIDs[i], chains[i], needBlob, needUnpack)
				rc.Close()
			}
			if err != nil {
				lp.fail()
				fail(err)
				return
			}
			lp.done("Pull complete")
		}(i, l)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := s.WriteBlob(cfgRaw); err != nil {
		return nil, err
	}
	if _, err := s.WriteBlob(raw); err != nil {
		return nil, err
	}
	var tags []string
	if r.Tag != "" {
		tags = append(tags, r.Tagged())
	}
	if err := s.register(mdig, mt, m.Config.Digest, tags, r.Name()+"@"+topDigest.String()); err != nil {
		return nil, err
	}
	prog.wait()
	prog.printf("Digest: %s", topDigest)
	return s.Resolve(m.Config.Digest.String())
}

func openRemoteBlob(nref name.Reference, d ocispec.Descriptor, ropts []remote.Option) (io.ReadCloser, error) {
	l, err := remote.Layer(nref.Context().Digest(d.Digest.String()), ropts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	return rc, nil
}

func fetchSmallBlob(nref name.Reference, d ocispec.Descriptor, ropts []remote.Option) ([]byte, error) {
	rc, err := openRemoteBlob(nref, d, ropts)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 32<<20))
	if err != nil {
		return nil, err
	}
	if got := digest.FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob digest mismatch: expected %s, got %s", d.Digest, got)
	}
	return b, nil
}

// ---- push ----

// storeImage presents a stored image to go-containerregistry.
type storeImage struct {
	s    *Store
	img  *Image
	prog *progress
}

func (si *storeImage) RawConfigFile() ([]byte, error) { return si.img.RawConfig, nil }
func (si *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(si.img.MediaType), nil
}
func (si *storeImage) RawManifest() ([]byte, error) { return si.img.RawManifest, nil }
func (si *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range si.img.Manifest.Layers {
		if l.Digest.String() == h.String() {
			return &storeLayer{si: si, desc: l}, nil
		}
	}
	if h.String() == si.img.ID.String() {
		return partial.ConfigLayer(si)
	}
	return nil, fmt.Errorf("image %s has no blob %s", shortID(si.img.ID), h)
}

type storeLayer struct {
	si   *storeImage
	desc ocispec.Descriptor
}

func (l *storeLayer) Digest() (v1.Hash, error) { return v1.NewHash(l.desc.Digest.String()) }
func (l *storeLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) {
	return types.MediaType(l.desc.MediaType), nil
}

// Compressed is called only for blobs the registry lacks.
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.si.s.OpenBlob(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	lp := l.si.prog.layer(shortID(l.desc.Digest), "Pushing", l.desc.Size)
	return &progressCloser{Reader: lp.reader(f), f: f, lp: lp}, nil
}

type progressCloser struct {
	io.Reader
	f  *os.File
	lp *layerProgress
}

func (p *progressCloser) Close() error {
	p.lp.done("Pushed")
	return p.f.Close()
}

// Push uploads the stored image named ref to the registry ref names and
// returns the manifest digest. Blobs the registry has are not sent.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (digest.Digest, error) {
	d, err := s.push(ctx, ref, ref, opts)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	s.emit("push", ref, ref)
	return d, nil
}

// PushAs uploads the stored image src to the registry reference dst.
func (s *Store) PushAs(ctx context.Context, src, dst string, opts PushOptions) (digest.Digest, error) {
	d, err := s.push(ctx, src, dst, opts)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", dst, err)
	}
	s.emit("push", dst, dst)
	return d, nil
}

func (s *Store) push(ctx context.Context, src, dst string, opts PushOptions) (digest.Digest, error) {
	img, err := s.Resolve(src)
	if err != nil {
		return "", err
	}
	r, nref, err := parseRemote(dst, opts.RemoteOptions)
	if err != nil {
		return "", err
	}
	for _, l := range img.Manifest.Layers {
		if !s.HasBlob(l.Digest) {
			return "", fmt.Errorf("layer blob %s is missing from the store", l.Digest)
		}
	}
	prog := newProgress(opts.Progress, opts.Quiet)
	defer prog.wait()
	vimg, err := partial.CompressedToImage(&storeImage{s: s, img: img, prog: prog})
	if err != nil {
		return "", err
	}
	if err := remote.Write(nref, vimg, opts.remoteOpts(ctx)...); err != nil {
		return "", err
	}
	if err := s.updateIndex(func(idx *indexFile) error {
		if rec := idx.Images[img.ID]; rec != nil {
			rd := r.Name() + "@" + img.ManifestDigest.String()
			if !contains(rec.RepoDigests, rd) {
				rec.RepoDigests = append(rec.RepoDigests, rd)
			}
		}
		return nil
	}); err != nil {
		return "", err
	}
	prog.wait()
	tag := r.Tag
	if tag == "" {
		tag = "latest"
	}
	prog.printf("%s: digest: %s size: %d", tag, img.ManifestDigest, len(img.RawManifest))
	return img.ManifestDigest, nil
}

// Login checks user/password against the registry (basic or bearer-token
// auth) and saves them in authFile.
func Login(ctx context.Context, registry, user, password, authFile string, opts RemoteOptions) error {
	if err := CheckLogin(ctx, registry, user, password, opts); err != nil {
		return err
	}
	return SaveLogin(authFile, registry, user, password)
}

// CheckLogin verifies credentials without saving them.
func CheckLogin(ctx context.Context, registry, user, password string, opts RemoteOptions) error {
	reg, err := name.NewRegistry(normalizeRegistry(registry), opts.nameOpts()...)
	if err != nil {
		return fmt.Errorf("login: invalid registry %q: %w", registry, err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	if opts.InsecureTLS {
		base.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --tls-verify=false
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	tr, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("login %s: %w", registry, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("login %s: unauthorized: incorrect username or password", registry)
	}
	return fmt.Errorf("login %s: registry answered %s", registry, resp.Status)
}

// normalizeRegistry maps Docker Hub's names to one.
func normalizeRegistry(r string) string {
	r = strings.TrimPrefix(strings.TrimPrefix(r, "https://"), "http://")
	r = strings.TrimSuffix(strings.TrimSuffix(r, "/v1/"), "/")
	if r == "" || r == "docker.io" || r == "index.docker.io" || r == "registry-1.docker.io" {
		return "index.docker.io"
	}
	return r
}

// RegistryKey is the host a login is stored under.
func RegistryKey(r string) string {
	n := normalizeRegistry(r)
	if n == "index.docker.io" {
		return "docker.io"
	}
	return n
}
