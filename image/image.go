package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
)

// Image is a stored image.
type Image struct {
	ID             digest.Digest // config digest
	ManifestDigest digest.Digest
	MediaType      string // manifest media type
	Manifest       ocispec.Manifest
	Config         ocispec.Image
	RawManifest    []byte
	RawConfig      []byte
	RepoTags       []string // full names, docker.io/library/busybox:latest
	RepoDigests    []string
	ChainIDs       []digest.Digest
	Size           int64 // unpacked size of all layers
	Added          time.Time

	store *Store
}

// LayerDirs are the unpacked layer directories, lowest first.
func (img *Image) LayerDirs() []string { return img.store.diffDirs(img.ChainIDs) }

func (s *Store) diffDirs(chain []digest.Digest) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = filepath.Join(s.layerDir(c), "diff")
	}
	return out
}

// Created is the image's creation time from its config.
func (img *Image) Created() time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return time.Time{}
}

func (s *Store) loadImage(idx *indexFile, rec *imageRecord) (*Image, error) {
	img := &Image{ID: rec.ID, ManifestDigest: rec.Manifest, MediaType: rec.MediaType, Added: rec.Added, store: s}
	var err error
	if img.RawManifest, err = s.ReadBlob(rec.Manifest); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", shortID(rec.ID), err)
	}
	if err := json.Unmarshal(img.RawManifest, &img.Manifest); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", shortID(rec.ID), err)
	}
	if img.RawConfig, err = s.ReadBlob(rec.ID); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", shortID(rec.ID), err)
	}
	if err := json.Unmarshal(img.RawConfig, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", shortID(rec.ID), err)
	}
	img.ChainIDs = ChainIDs(img.Config.RootFS.DiffIDs)
	s.chains.Store(img.ID, img.ChainIDs)
	for _, c := range img.ChainIDs {
		img.Size += s.layerSize(c)
	}
	for t, id := range idx.Tags {
		if id == rec.ID {
			img.RepoTags = append(img.RepoTags, t)
		}
	}
	sort.Strings(img.RepoTags)
	img.RepoDigests = append([]string(nil), rec.RepoDigests...)
	return img, nil
}

// lookup finds the record ref names: a name[:tag], name@digest, an image
// ID or a unique ID prefix. byID tells whether it matched by ID.
func lookup(idx *indexFile, ref string) (rec *imageRecord, byID bool, err error) {
	if r, perr := ParseReference(ref); perr == nil {
		if r.Digest != "" {
			want := r.Name() + "@" + r.Digest.String()
			for _, rec := range idx.Images {
				for _, rd := range rec.RepoDigests {
					if rd == want {
						return rec, false, nil
					}
				}
			}
			for _, rec := range idx.Images {
				if rec.Manifest == r.Digest {
					return rec, false, nil
				}
			}
		} else if id, ok := idx.Tags[r.Tagged()]; ok {
			if rec := idx.Images[id]; rec != nil {
				return rec, false, nil
			}
		}
	}
	if isHexPrefix(ref) {
		p := "sha256:" + strings.TrimPrefix(ref, "sha256:")
		var found *imageRecord
		for id, rec := range idx.Images {
			if strings.HasPrefix(id.String(), p) {
				if found != nil {
					return nil, false, fmt.Errorf("image ID prefix %q is ambiguous", ref)
				}
				found = rec
			}
		}
		if found != nil {
			return found, true, nil
		}
	}
	return nil, false, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// LayerDirsOf returns the unpacked layer directories of the image with
// this ID, lowest first. An image this process has loaded already (run
// resolves its image, then starts the container) is not read again.
// Otherwise only the image's config is read, for its layers' diff IDs,
// not the index, the manifest and the sizes that Resolve reads.
func (s *Store) LayerDirsOf(id string) ([]string, error) {
	if chain, ok := s.chains.Load(digest.Digest(id)); ok {
		return s.diffDirs(chain.([]digest.Digest)), nil
	}
	if dirs, ok := s.layerDirsFromConfig(digest.Digest(id)); ok {
		return dirs, nil
	}
	// Resolve says best what is wrong.
	img, err := s.Resolve(id)
	if err != nil {
		return nil, err
	}
	return img.LayerDirs(), nil
}

func (s *Store) layerDirsFromConfig(id digest.Digest) ([]string, bool) {
	if id.Validate() != nil {
		return nil, false
	}
	b, err := s.ReadBlob(id)
	if err != nil {
		return nil, false
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if json.Unmarshal(b, &cfg) != nil || len(cfg.RootFS.DiffIDs) == 0 {
		return nil, false
	}
	chain := ChainIDs(cfg.RootFS.DiffIDs)
	dirs := s.diffDirs(chain)
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			return nil, false
		}
	}
	s.chains.Store(id, chain)
	return dirs, true
}

// Resolve finds a stored image by name, name@digest, ID or ID prefix.
func (s *Store) Resolve(ref string) (*Image, error) {
	idx, err := s.viewIndex()
	if err != nil {
		return nil, err
	}
	rec, _, err := lookup(idx, ref)
	if err != nil {
		return nil, err
	}
	return s.loadImage(idx, rec)
}

// List returns all images, newest first.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.viewIndex()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, rec := range idx.Images {
		img, err := s.loadImage(idx, rec)
		if err != nil {
			logrus.Warnf("image store: skipping %s: %v", shortID(rec.ID), err)
			continue
		}
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := out[i].Created(), out[j].Created()
		if !ci.Equal(cj) {
			return ci.After(cj)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// register records a complete image (every blob and layer present) and
// points tags at it.
func (s *Store) register(manifest digest.Digest, mediaType string, config digest.Digest, tags []string, repoDigest string) error {
	return s.updateIndex(func(idx *indexFile) error {
		rec := idx.Images[config]
		if rec == nil {
			rec = &imageRecord{ID: config, Added: time.Now().UTC()}
			idx.Images[config] = rec
		}
		rec.Manifest, rec.MediaType = manifest, mediaType
		if repoDigest != "" && !contains(rec.RepoDigests, repoDigest) {
			rec.RepoDigests = append(rec.RepoDigests, repoDigest)
		}
		for _, t := range tags {
			idx.Tags[t] = config
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Create stores a new image made of config and layers (already added with
// AddLayer) and tags it. The config's rootfs is filled in from layers.
func (s *Store) Create(config ocispec.Image, layers []LayerDesc, tags ...string) (*Image, error) {
	names, err := tagNames(tags)
	if err != nil {
		return nil, err
	}
	if config.OS == "" {
		config.OS = runtime.GOOS
	}
	if config.Architecture == "" {
		config.Architecture = runtime.GOARCH
	}
	if config.Created == nil {
		now := time.Now().UTC()
		config.Created = &now
	}
	config.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	for _, l := range layers {
		config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, l.DiffID)
	}
	cb, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	return s.createImage(cb, layers, names)
}

// CreateFromConfig stores a new image of a config the caller marshalled
// (with fields ocispec.Image lacks, such as Docker's Healthcheck) and
// layers added with AddLayer, and tags it. The config's rootfs must list
// the layers' diff ids.
func (s *Store) CreateFromConfig(cb []byte, layers []LayerDesc, tags ...string) (*Image, error) {
	names, err := tagNames(tags)
	if err != nil {
		return nil, err
	}
	return s.createImage(cb, layers, names)
}

// tagNames are the full names of tags, refused when one is a digest.
func tagNames(tags []string) ([]string, error) {
	var names []string
	for _, t := range tags {
		r, err := ParseReference(t)
		if err != nil {
			return nil, err
		}
		if r.Digest != "" {
			return nil, fmt.Errorf("cannot tag with a digest reference %q", t)
		}
		names = append(names, r.Tagged())
	}
	return names, nil
}

func (s *Store) createImage(cb []byte, layers []LayerDesc, names []string) (*Image, error) {
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, l.Blob)
	}
	cd, err := s.WriteBlob(cb)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cb))}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	md, err := s.WriteBlob(mb)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	if err := s.register(md, ocispec.MediaTypeImageManifest, cd, names, ""); err != nil {
		return nil, err
	}
	return s.Resolve(cd.String())
}

// Tag makes target name the image src names.
func (s *Store) Tag(src, target string) error {
	r, err := ParseReference(target)
	if err != nil {
		return err
	}
	if r.Digest != "" {
		return fmt.Errorf("tag %q: a tag cannot contain a digest", target)
	}
	var id digest.Digest
	if err := s.updateIndex(func(idx *indexFile) error {
		rec, _, err := lookup(idx, src)
		if err != nil {
			return err
		}
		idx.Tags[r.Tagged()] = rec.ID
		id = rec.ID
		return nil
	}); err != nil {
		return err
	}
	s.emit("tag", id.String(), target)
	return nil
}

func (s *Store) inUse(id digest.Digest) (bool, error) {
	if _, err := os.Stat(filepath.Join(s.root, "mounts", id.Encoded())); err == nil {
		return true, nil
	}
	if s.users == nil {
		return false, nil
	}
	used, err := s.users.ImageInUse(id.String())
	if err != nil {
		return false, fmt.Errorf("check whether image %s is in use: %w", shortID(id), err)
	}
	return used, nil
}

// Remove deletes the image ref names, Docker's way: removing one of
// several tags only untags; an image a container uses is refused unless
// force (then it is only untagged). It returns "Untagged: ..." and
// "Deleted: ..." lines.
func (s *Store) Remove(ref string, force bool) ([]string, error) {
	var report []string
	var id digest.Digest
	err := s.updateIndex(func(idx *indexFile) error {
		report = nil
		rec, byID, err := lookup(idx, ref)
		if err != nil {
			return err
		}
		id = rec.ID
		var tags []string
		for t, id := range idx.Tags {
			if id == rec.ID {
				tags = append(tags, t)
			}
		}
		sort.Strings(tags)
		if !byID {
			r, _ := ParseReference(ref)
			if r.Digest == "" && len(tags) > 1 {
				delete(idx.Tags, r.Tagged())
				report = append(report, "Untagged: "+FamiliarName(r.Name())+":"+r.Tag)
				return nil
			}
		} else if len(tags) > 1 && !force {
			return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, shortID(rec.ID))
		}
		used, err := s.inUse(rec.ID)
		if err != nil {
			return err
		}
		if used && !force {
			return fmt.Errorf("%w: unable to remove %s (must force) - image %s is being used by a container", ErrInUse, ref, shortID(rec.ID))
		}
		for _, t := range tags {
			delete(idx.Tags, t)
			n, tg := SplitTagged(t)
			report = append(report, "Untagged: "+FamiliarName(n)+":"+tg)
		}
		if used {
			return nil // forced: untagged, kept for the container
		}
		for _, rd := range rec.RepoDigests {
			n, d, _ := strings.Cut(rd, "@")
			report = append(report, "Untagged: "+FamiliarName(n)+"@"+d)
		}
		delete(idx.Images, rec.ID)
		report = append(report, "Deleted: "+rec.ID.String())
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.emitReport(id.String(), report)
	if _, err := s.GC(); err != nil {
		logrus.Warnf("image store: garbage collection: %v", err)
	}
	return report, nil
}

// Prune removes dangling images (no tag), or every image no container
// uses when all is set. It returns the removed IDs and the bytes freed.
func (s *Store) Prune(all bool) ([]string, int64, error) {
	var removed []string
	err := s.updateIndex(func(idx *indexFile) error {
		removed = nil
		tagged := map[digest.Digest]bool{}
		for _, id := range idx.Tags {
			tagged[id] = true
		}
		for id := range idx.Images {
			if tagged[id] && !all {
				continue
			}
			used, err := s.inUse(id)
			if err != nil {
				return err
			}
			if used {
				continue
			}
			for t, tid := range idx.Tags {
				if tid == id {
					delete(idx.Tags, t)
				}
			}
			delete(idx.Images, id)
			removed = append(removed, id.String())
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Strings(removed)
	for _, id := range removed {
		s.emit("delete", id, "")
	}
	freed, err := s.GC()
	// Leftovers of killed berths: whatever no live berth holds locked.
	freed += s.sweepTmp(0)
	return removed, freed, err
}

// GC deletes blobs and layers no image needs. It is skipped (0, nil) while
// another berth adds content.
func (s *Store) GC() (int64, error) {
	unlock, err := s.opLock(true, false)
	if err != nil {
		logrus.Debugf("image store: gc skipped, store busy: %v", err)
		return 0, nil
	}
	defer unlock()
	idx, err := s.viewIndex()
	if err != nil {
		return 0, err
	}
	blobs := map[string]bool{}
	chains := map[string]bool{}
	for _, rec := range idx.Images {
		blobs[rec.Manifest.Encoded()] = true
		blobs[rec.ID.Encoded()] = true
		img, err := s.loadImage(idx, rec)
		if err != nil {
			return 0, fmt.Errorf("gc: %w (refusing to collect)", err)
		}
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest.Encoded()] = true
		}
		for _, c := range img.ChainIDs {
			chains[c.Encoded()] = true
		}
	}
	if err := s.pinned(blobs, chains); err != nil {
		return 0, fmt.Errorf("gc: %w (refusing to collect)", err)
	}
	var freed int64
	bdir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(bdir)
	if err != nil {
		return 0, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		if blobs[e.Name()] {
			continue
		}
		if fi, err := e.Info(); err == nil {
			freed += fi.Size()
		}
		if err := os.Remove(filepath.Join(bdir, e.Name())); err != nil {
			logrus.Warnf("gc: %v", err)
		}
	}
	ldir := filepath.Join(s.root, "layers")
	if ents, err = os.ReadDir(ldir); err != nil {
		return freed, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		if chains[e.Name()] {
			continue
		}
		dir := filepath.Join(ldir, e.Name())
		freed += s.layerSize(digest.NewDigestFromEncoded(digest.SHA256, e.Name()))
		if link, err := os.ReadFile(filepath.Join(dir, "link")); err == nil && !strings.ContainsAny(string(link), "/.") {
			os.Remove(filepath.Join(s.root, "l", string(link)))
		}
		// Rename first so a crash never leaves a half-deleted layer
		// that looks whole.
		tmp, err := s.createTemp("del", true, 0o700)
		if err != nil {
			logrus.Warnf("gc: %v", err)
			continue
		}
		if err := os.Rename(dir, filepath.Join(tmp.path, "layer")); err != nil {
			logrus.Warnf("gc: %v", err)
		}
		tmp.Remove()
	}
	// Dangling short links.
	if ents, err = os.ReadDir(filepath.Join(s.root, "l")); err == nil {
		for _, e := range ents {
			p := filepath.Join(s.root, "l", e.Name())
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				os.Remove(p)
			}
		}
	}
	return freed, nil
}

// LayerSizes are the unpacked sizes of the image's layers, lowest first.
func (s *Store) LayerSizes(img *Image) []int64 {
	out := make([]int64, len(img.ChainIDs))
	for i, c := range img.ChainIDs {
		out[i] = s.layerSize(c)
	}
	return out
}
