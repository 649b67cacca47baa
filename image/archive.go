package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Archive formats for Save.
const (
	FormatDocker = "docker-archive"
	FormatOCI    = "oci-archive"
)

const annotationContainerdName = "io.containerd.image.name"

// dockerManifestEntry is one image of a docker save archive's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// extracted is an archive unpacked into a temp dir; links are followed by
// lookup, never created on disk.
type extracted struct {
	tmp   *tempEntry
	dir   string
	links map[string]string // archive path -> archive path it stands for
}

func (e *extracted) resolve(name string) (string, error) {
	p, err := cleanName(name)
	if err != nil {
		return "", err
	}
	for i := 0; i < 16; i++ {
		t, ok := e.links[p]
		if !ok {
			return filepath.Join(e.dir, p), nil
		}
		p = t
	}
	return "", fmt.Errorf("archive: too many links resolving %q", name)
}

func (e *extracted) open(name string) (*os.File, error) {
	p, err := e.resolve(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: %w", name, errors.Unwrap(err))
	}
	return f, nil
}

func (e *extracted) readSmall(name string) ([]byte, error) {
	f, err := e.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}

func (e *extracted) exists(name string) bool {
	p, err := e.resolve(name)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

func (s *Store) extractArchive(r io.Reader) (*extracted, error) {
	dr, _, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	defer dr.Close()
	tmp, err := s.createTemp("load", true, 0o700)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	e := &extracted{tmp: tmp, dir: tmp.path, links: map[string]string{}}
	tr := tar.NewReader(dr)
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			e.tmp.Remove()
			if n == 0 {
				return nil, fmt.Errorf("archive: not a tar archive: %w", err)
			}
			return nil, fmt.Errorf("archive: %w", err)
		}
		n++
		p, err := cleanName(hdr.Name)
		if err != nil {
			e.tmp.Remove()
			return nil, fmt.Errorf("archive: %w", err)
		}
		switch hdr.Typeflag {
		//lint:ignore SA1019 old archives still carry the pre-POSIX regular-file type
		case tar.TypeReg, tar.TypeRegA:
			dst := filepath.Join(e.dir, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				e.tmp.Remove()
				return nil, fmt.Errorf("archive: %w", err)
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err == nil {
				bp := copyBufPool.Get().(*[]byte)
				_, err = io.CopyBuffer(f, tr, *bp)
				copyBufPool.Put(bp)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
			if err != nil {
				e.tmp.Remove()
				return nil, fmt.Errorf("archive: %s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			t := hdr.Linkname
			if !path.IsAbs(t) {
				t = path.Join(path.Dir(p), t)
			}
			t, err := cleanName(t)
			if err != nil {
				e.tmp.Remove()
				return nil, fmt.Errorf("archive: %w", err)
			}
			e.links[p] = t
		case tar.TypeLink:
			t, err := cleanName(hdr.Linkname)
			if err != nil {
				e.tmp.Remove()
				return nil, fmt.Errorf("archive: %w", err)
			}
			e.links[p] = t
		}
	}
	return e, nil
}

// fileDesc hashes a file of the archive and describes it as a layer.
func (e *extracted) layerDesc(name string) (ocispec.Descriptor, error) {
	f, err := e.open(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	var head [4]byte
	n, _ := io.ReadFull(f, head[:])
	mt := ocispec.MediaTypeImageLayer
	switch {
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		mt = ocispec.MediaTypeImageLayerGzip
	case n == 4 && head == [4]byte{0x28, 0xb5, 0x2f, 0xfd}:
		mt = ocispec.MediaTypeImageLayerZstd
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("archive: %w", err)
	}
	dg := digest.SHA256.Digester()
	size, err := io.Copy(dg.Hash(), f)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("archive: %s: %w", name, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dg.Digest(), Size: size}, nil
}

// Load reads a docker save archive or an OCI layout archive (plain,
// gzip or zstd) into the store. It returns what it loaded, as
// "Loaded image: name:tag" or "Loaded image ID: sha256:..." lines.
func (s *Store) Load(r io.Reader) ([]string, error) {
	out, err := s.load(r)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	s.emitLoaded(out)
	return out, nil
}

func (s *Store) load(r io.Reader) ([]string, error) {
	unlock, err := s.opLock(false, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, err := s.extractArchive(r)
	if err != nil {
		return nil, err
	}
	defer e.tmp.Remove()
	switch {
	case e.exists("manifest.json"):
		return s.loadDocker(e)
	case e.exists("index.json"):
		return s.loadOCI(e)
	}
	return nil, fmt.Errorf("archive has neither manifest.json (docker save) nor index.json (OCI layout)")
}

func (s *Store) loadDocker(e *extracted) ([]string, error) {
	b, err := e.readSmall("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("archive manifest.json: %w", err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("archive manifest.json lists no image")
	}
	var out []string
	for _, ent := range entries {
		cfgRaw, err := e.readSmall(ent.Config)
		if err != nil {
			return nil, err
		}
		cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgRaw), Size: int64(len(cfgRaw))}
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{}}
		for _, l := range ent.Layers {
			d, err := e.layerDesc(l)
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, d)
		}
		files := map[digest.Digest]string{}
		for i, l := range ent.Layers {
			files[m.Layers[i].Digest] = l
		}
		mb, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		var tags []string
		for _, t := range ent.RepoTags {
			r, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("archive: tag %q: %w", t, err)
			}
			tags = append(tags, r.Tagged())
		}
		if err := s.importManifest(e, mb, cfgRaw, files, tags); err != nil {
			return nil, err
		}
		out = append(out, loadedLines(cfgDesc.Digest, tags)...)
	}
	return out, nil
}

func loadedLines(id digest.Digest, tags []string) []string {
	if len(tags) == 0 {
		return []string{"Loaded image ID: " + id.String()}
	}
	var out []string
	for _, t := range tags {
		n, tg := SplitTagged(t)
		out = append(out, "Loaded image: "+FamiliarName(n)+":"+tg)
	}
	return out
}

// importManifest stores one image whose blobs are files of the archive
// (files maps layer digests to archive paths) and registers it.
func (s *Store) importManifest(e *extracted, mraw, cfgRaw []byte, files map[digest.Digest]string, tags []string) error {
	m, err := parseManifest(mraw, ocispec.MediaTypeImageManifest)
	if err != nil {
		return err
	}
	if digest.FromBytes(cfgRaw) != m.Config.Digest {
		return fmt.Errorf("config digest mismatch: expected %s, got %s", m.Config.Digest, digest.FromBytes(cfgRaw))
	}
	cfg, err := parseConfig(cfgRaw, m)
	if err != nil {
		return err
	}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
	for i, l := range m.Layers {
		needBlob, needUnpack := !s.HasBlob(l.Digest), !s.HasLayer(chains[i])
		if !needBlob && !needUnpack {
			continue
		}
		f, err := e.open(files[l.Digest])
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		err = s.ingestLayer(f, l, cfg.RootFS.DiffIDs[i], chains[i], needBlob, needUnpack)
		f.Close()
		if err != nil {
			return err
		}
	}
	if _, err := s.WriteBlob(cfgRaw); err != nil {
		return err
	}
	md, err := s.WriteBlob(mraw)
	if err != nil {
		return err
	}
	return s.register(md, ocispec.MediaTypeImageManifest, m.Config.Digest, tags, "")
}

func (s *Store) loadOCI(e *extracted) ([]string, error) {
	b, err := e.readSmall("index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("archive index.json: %w", err)
	}
	blobName := func(d digest.Digest) (string, error) {
		if err := d.Validate(); err != nil {
			return "", fmt.Errorf("archive: bad digest %q", d)
		}
		return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
	}
	readBlob := func(d digest.Digest) ([]byte, error) {
		n, err := blobName(d)
		if err != nil {
			return nil, err
		}
		b, err := e.readSmall(n)
		if err != nil {
			return nil, err
		}
		if got := digest.FromBytes(b); got != d {
			return nil, fmt.Errorf("blob digest mismatch: expected %s, got %s", d, got)
		}
		return b, nil
	}
	plat, _ := ParsePlatform("")
	var out []string
	for _, d := range idx.Manifests {
		name := d.Annotations[annotationContainerdName]
		if name == "" {
			if rn := d.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(rn, "/:") {
				name = rn
			}
		}
		if isIndex(d.MediaType) {
			ib, err := readBlob(d.Digest)
			if err != nil {
				return nil, err
			}
			var sub ocispec.Index
			if err := json.Unmarshal(ib, &sub); err != nil {
				return nil, fmt.Errorf("archive: nested index: %w", err)
			}
			if d, err = plat.pick(sub); err != nil {
				return nil, err
			}
		}
		if !isManifest(d.MediaType) {
			return nil, fmt.Errorf("unsupported manifest media type %q", d.MediaType)
		}
		mraw, err := readBlob(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := parseManifest(mraw, d.MediaType)
		if err != nil {
			return nil, err
		}
		cfgRaw, err := readBlob(m.Config.Digest)
		if err != nil {
			return nil, err
		}
		files := map[digest.Digest]string{}
		for _, l := range m.Layers {
			if files[l.Digest], err = blobName(l.Digest); err != nil {
				return nil, err
			}
		}
		var tags []string
		if name != "" {
			r, err := ParseReference(name)
			if err != nil {
				return nil, fmt.Errorf("archive: image name %q: %w", name, err)
			}
			if r.Tag != "" {
				tags = append(tags, r.Tagged())
			}
		}
		if err := s.importManifestRaw(e, mraw, d.MediaType, cfgRaw, files, tags); err != nil {
			return nil, err
		}
		out = append(out, loadedLines(m.Config.Digest, tags)...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("archive index.json lists no image")
	}
	return out, nil
}

// importManifestRaw is importManifest keeping the manifest's media type.
func (s *Store) importManifestRaw(e *extracted, mraw []byte, mt string, cfgRaw []byte, files map[digest.Digest]string, tags []string) error {
	if mt == ocispec.MediaTypeImageManifest {
		return s.importManifest(e, mraw, cfgRaw, files, tags)
	}
	m, err := parseManifest(mraw, mt)
	if err != nil {
		return err
	}
	// Blobs first through importManifest's checks, then the record with
	// the right media type.
	if err := s.importManifest(e, mraw, cfgRaw, files, nil); err != nil {
		return err
	}
	return s.register(digest.FromBytes(mraw), mt, m.Config.Digest, tags, "")
}

// Save writes images to w as a docker save archive (FormatDocker, also an
// OCI layout) or an OCI layout archive (FormatOCI).
func (s *Store) Save(w io.Writer, refs []string, format string) error {
	if err := s.save(w, refs, format); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	for _, ref := range refs {
		id := ref
		if img, err := s.Resolve(ref); err == nil {
			id = img.ID.String()
		}
		s.emit("save", id, ref)
	}
	return nil
}

type savedImage struct {
	img  *Image
	tags []string // full name:tag
}

func (s *Store) save(w io.Writer, refs []string, format string) error {
	if len(refs) == 0 {
		return fmt.Errorf("no image given")
	}
	var imgs []savedImage
	for _, ref := range refs {
		img, err := s.Resolve(ref)
		if err != nil {
			return err
		}
		var tags []string
		if r, err := ParseReference(ref); err == nil && r.Tag != "" && contains(img.RepoTags, r.Tagged()) {
			tags = []string{r.Tagged()}
		} else if !isHexPrefix(ref) {
			tags = img.RepoTags
		}
		imgs = append(imgs, savedImage{img, tags})
	}
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	now := time.Now()
	addBytes := func(name string, b []byte) error {
		if written[name] {
			return nil
		}
		written[name] = true
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(b)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	addFile := func(name string, f *os.File) error {
		defer f.Close()
		if written[name] {
			return nil
		}
		written[name] = true
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: fi.Size(), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		_, err = io.CopyBuffer(tw, f, *bp)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	var dockerManifest []dockerManifestEntry
	blob := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	addIndex := func(d ocispec.Descriptor, tags []string) {
		if len(tags) == 0 {
			index.Manifests = append(index.Manifests, d)
		}
		for _, t := range tags {
			dd := d
			_, tag := SplitTagged(t)
			dd.Annotations = map[string]string{annotationContainerdName: t, ocispec.AnnotationRefName: tag}
			index.Manifests = append(index.Manifests, dd)
		}
	}
	for _, si := range imgs {
		img := si.img
		if err := addBytes(blob(img.ID), img.RawConfig); err != nil {
			return err
		}
		if format == FormatOCI {
			for _, l := range img.Manifest.Layers {
				f, err := s.OpenBlob(l.Digest)
				if err != nil {
					return err
				}
				if err := addFile(blob(l.Digest), f); err != nil {
					return err
				}
			}
			if err := addBytes(blob(img.ManifestDigest), img.RawManifest); err != nil {
				return err
			}
			addIndex(ocispec.Descriptor{MediaType: img.MediaType, Digest: img.ManifestDigest, Size: int64(len(img.RawManifest))}, si.tags)
			continue
		}
		// Docker archive: uncompressed layers named by diff id, plus an
		// OCI manifest for them so the archive is an OCI layout too.
		ent := dockerManifestEntry{Config: blob(img.ID), RepoTags: []string{}}
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.ID, Size: int64(len(img.RawConfig))}}
		for i, l := range img.Manifest.Layers {
			diffID := img.Config.RootFS.DiffIDs[i]
			size, err := s.addUncompressed(tw, blob(diffID), l.Digest, written, now)
			if err != nil {
				return err
			}
			ent.Layers = append(ent.Layers, blob(diffID))
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
		}
		for _, t := range si.tags {
			n, tg := SplitTagged(t)
			ent.RepoTags = append(ent.RepoTags, FamiliarName(n)+":"+tg)
		}
		dockerManifest = append(dockerManifest, ent)
		mb, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := digest.FromBytes(mb)
		if err := addBytes(blob(md), mb); err != nil {
			return err
		}
		addIndex(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb))}, si.tags)
	}
	if format != FormatOCI {
		mb, err := json.Marshal(dockerManifest)
		if err != nil {
			return err
		}
		if err := addBytes("manifest.json", mb); err != nil {
			return err
		}
	}
	ib, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := addBytes("index.json", ib); err != nil {
		return err
	}
	if err := addBytes(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	return tw.Close()
}

// addUncompressed writes the blob d decompressed as name; the size of an
// uncompressed tar is not known before it is decompressed, so it goes
// through a temp file.
func (s *Store) addUncompressed(tw *tar.Writer, name string, d digest.Digest, written map[string]bool, now time.Time) (int64, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dr, _, err := Decompress(f)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	defer dr.Close()
	t, err := s.createTemp("save", false, 0o600)
	if err != nil {
		return 0, err
	}
	defer t.Remove()
	tmp, err := os.Open(t.path)
	if err != nil {
		return 0, err
	}
	defer tmp.Close()
	size, err := io.Copy(t.f, dr)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", d, err)
	}
	if written[name] {
		return size, nil
	}
	written[name] = true
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
		return 0, err
	}
	if _, err := io.Copy(tw, tmp); err != nil {
		return 0, err
	}
	return size, nil
}

// Import makes an image of one layer from a rootfs tarball (plain, gzip
// or zstd), applying Dockerfile-style changes ("CMD ...", "ENV k=v").
func (s *Store) Import(r io.Reader, ref string, changes []string) (*Image, error) {
	img, err := s.importRootfs(r, ref, changes)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	s.emit("import", img.ID.String(), ref)
	return img, nil
}

func (s *Store) importRootfs(r io.Reader, ref string, changes []string) (*Image, error) {
	var cfg ocispec.Image
	for _, c := range changes {
		if err := ApplyChange(&cfg.Config, c); err != nil {
			return nil, err
		}
	}
	if ref != "" {
		if _, err := ParseReference(ref); err != nil {
			return nil, err
		}
	}
	unlock, err := s.opLock(false, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	dr, _, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	layer, err := s.AddLayer("", dr)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.History = []ocispec.History{{Created: &now, CreatedBy: "berth import", Comment: "Imported from tarball"}}
	var tags []string
	if ref != "" {
		tags = append(tags, ref)
	}
	return s.Create(cfg, []LayerDesc{layer}, tags...)
}

// ApplyChange applies one Dockerfile-style instruction to an image config.
func ApplyChange(c *ocispec.ImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	list := func() []string {
		var l []string
		if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &l) == nil {
			return l
		}
		return []string{"/bin/sh", "-c", arg}
	}
	kv := func() (string, string, error) {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			k, v, ok = strings.Cut(arg, " ")
		}
		if !ok || k == "" {
			return "", "", fmt.Errorf("change %q: want KEY=VALUE", change)
		}
		return k, strings.Trim(v, `"`), nil
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = list()
	case "ENTRYPOINT":
		c.Entrypoint = list()
	case "ENV":
		k, v, err := kv()
		if err != nil {
			return err
		}
		var env []string
		for _, e := range c.Env {
			if !strings.HasPrefix(e, k+"=") {
				env = append(env, e)
			}
		}
		c.Env = append(env, k+"="+v)
	case "LABEL":
		k, v, err := kv()
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = v
	case "WORKDIR":
		c.WorkingDir = arg
	case "USER":
		c.User = arg
	case "STOPSIGNAL":
		c.StopSignal = arg
	case "EXPOSE":
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			c.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		vols := []string{}
		if json.Unmarshal([]byte(arg), &vols) != nil {
			vols = strings.Fields(arg)
		}
		for _, v := range vols {
			c.Volumes[v] = struct{}{}
		}
	default:
		return fmt.Errorf("change %q: unsupported instruction %q", change, instr)
	}
	return nil
}
