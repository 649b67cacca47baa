package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/build/buildroot"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/atomicfile"
)

// The build cache: one record per filesystem step, named by the step's
// key (the parent's key, the instruction as expanded, its environment
// and, for COPY and ADD, the checksum of what it copies). A record names
// the layer the step made; the image store keeps that layer while the
// record's pin exists.
//
//	<dataRoot>/build/cache/<key>.json   records
//	<dataRoot>/build/mounts/<id>/       RUN --mount=type=cache directories

type cacheRecord struct {
	Layer   image.LayerDesc `json:"layer"`
	Chain   digest.Digest   `json:"chain"`
	Created time.Time       `json:"created"`
	// CreatedBy is the step, for builder cache ls.
	CreatedBy string `json:"created_by"`
	// Empty: the step changed no file (a WORKDIR that exists) and has
	// no layer.
	Empty bool `json:"empty,omitempty"`
}

func cacheDir(dataRoot string) string  { return filepath.Join(buildroot.Dir(dataRoot), "cache") }
func mountsDir(dataRoot string) string { return filepath.Join(buildroot.Dir(dataRoot), "mounts") }

func pinName(key digest.Digest) string { return "build-" + key.Encoded() }

func (b *Builder) cachePath(key digest.Digest) string {
	return filepath.Join(cacheDir(b.DataRoot), key.Encoded()+".json")
}

// cacheGet returns the record of key if its layer is still stored.
func (b *Builder) cacheGet(key digest.Digest) (*cacheRecord, bool) {
	data, err := os.ReadFile(b.cachePath(key))
	if err != nil {
		return nil, false
	}
	var rec cacheRecord
	if json.Unmarshal(data, &rec) != nil {
		return nil, false
	}
	if rec.Empty {
		return &rec, true
	}
	if !b.Images.HasLayer(rec.Chain) || !b.Images.HasBlob(rec.Layer.Blob.Digest) {
		return nil, false
	}
	return &rec, true
}

// cachePut records a step's layer and pins it.
func (b *Builder) cachePut(key digest.Digest, rec *cacheRecord) error {
	if rec.Empty {
		// No layer to pin.
	} else if err := b.Images.SetPin(pinName(key), image.Pin{Blobs: []digest.Digest{rec.Layer.Blob.Digest}, Chains: []digest.Digest{rec.Chain}}); err != nil {
		return err
	}
	if err := os.MkdirAll(cacheDir(b.DataRoot), 0o700); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	if err := atomicfile.Write(b.cachePath(key), data, 0o600); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// CacheEntry is one record of the build cache, for system df and
// builder prune.
type CacheEntry struct {
	Key       digest.Digest
	Chain     digest.Digest
	CreatedBy string
	Created   time.Time
	Size      int64
}

// CacheEntries lists the build cache.
func CacheEntries(images *image.Store, dataRoot string) ([]CacheEntry, error) {
	ents, err := os.ReadDir(cacheDir(dataRoot))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	var out []CacheEntry
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(cacheDir(dataRoot), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
		var rec cacheRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			continue
		}
		out = append(out, CacheEntry{Key: digest.NewDigestFromEncoded(digest.SHA256, name), Chain: rec.Chain,
			CreatedBy: rec.CreatedBy, Created: rec.Created, Size: images.LayerSize(rec.Chain)})
	}
	return out, nil
}

// Prune removes the build cache: every record whose layer no image
// needs (all: every record), and the RUN cache mounts (only with all),
// then collects what the image store no longer needs. It returns the
// bytes freed.
func Prune(images *image.Store, dataRoot string, all bool) (int64, error) {
	ents, err := CacheEntries(images, dataRoot)
	if err != nil {
		return 0, err
	}
	used := map[digest.Digest]bool{}
	if !all {
		imgs, err := images.List()
		if err != nil {
			return 0, err
		}
		for _, img := range imgs {
			for _, c := range img.ChainIDs {
				used[c] = true
			}
		}
	}
	for _, e := range ents {
		if used[e.Chain] {
			continue
		}
		if err := images.RemovePin(pinName(e.Key)); err != nil {
			return 0, err
		}
		if err := os.Remove(filepath.Join(cacheDir(dataRoot), e.Key.Encoded()+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("build cache: %w", err)
		}
	}
	freed, err := images.GC()
	if err != nil {
		return freed, err
	}
	if all {
		n, err := PruneMounts(dataRoot, nil)
		freed += n
		if err != nil {
			return freed, err
		}
	}
	return freed, nil
}
