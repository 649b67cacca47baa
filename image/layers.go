package image

import (
	"archive/tar"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Docker's media types, which registries and archives still use.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignGzip  = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// ChainIDs computes the chain ids of a layer stack, lowest first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		out[i] = ChainID(parent, d)
		parent = out[i]
	}
	return out
}

// ChainID is the chain id of the layer with diff id diffID on top of the
// layer with chain id parent ("" for a base layer).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// checkLayerMediaType refuses layer media types berth cannot unpack.
func checkLayerMediaType(mt string) error {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		//lint:ignore SA1019 images with non-distributable layers exist and must still unpack
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip,
		//lint:ignore SA1019 images with non-distributable layers exist and must still unpack
		ocispec.MediaTypeImageLayerNonDistributableZstd,
		MediaTypeDockerLayer, MediaTypeDockerLayerGzip, MediaTypeDockerForeignGzip:
		return nil
	}
	return fmt.Errorf("unsupported layer media type %q", mt)
}

// HasLayer reports whether the layer with this chain id is unpacked.
func (s *Store) HasLayer(chain digest.Digest) bool {
	if chain.Validate() != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.layerDir(chain), "link"))
	return err == nil
}

func (s *Store) layerSize(chain digest.Digest) int64 {
	b, err := os.ReadFile(filepath.Join(s.layerDir(chain), "size"))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// unpackToTemp unpacks the uncompressed tar r into a new temp layer dir
// (<tmp>/diff). It returns the dir, locked, the diff id of r and the
// content size.
func (s *Store) unpackToTemp(r io.Reader) (*tempEntry, digest.Digest, int64, error) {
	tmp, err := s.createTemp("layer", true, 0o755)
	if err != nil {
		return nil, "", 0, fmt.Errorf("unpack layer: %w", err)
	}
	diff := filepath.Join(tmp.path, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		tmp.Remove()
		return nil, "", 0, fmt.Errorf("unpack layer: %w", err)
	}
	dg := digest.SHA256.Digester()
	tr := io.TeeReader(r, dg.Hash())
	size, err := Unpack(diff, tr, UnpackOptions{})
	if err == nil {
		// The tar may end before its stream does (padding): hash it all.
		_, err = io.Copy(io.Discard, tr)
		if err != nil {
			err = fmt.Errorf("read layer: %w", err)
		}
	}
	if err != nil {
		tmp.Remove()
		return nil, "", 0, err
	}
	return tmp, dg.Digest(), size, nil
}

var shortIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// commitLayer moves a complete temp layer dir to layers/<chain>. The
// rename is the commit point: a layer dir with a link file is whole.
func (s *Store) commitLayer(t *tempEntry, chain digest.Digest, size int64) error {
	defer t.Remove() // after the rename, only drops the lock
	tmp := t.path
	if s.HasLayer(chain) {
		return nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("commit layer: %w", err)
	}
	short := shortIDEncoding.EncodeToString(b[:])[:26]
	if err := os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		return fmt.Errorf("commit layer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "link"), []byte(short), 0o600); err != nil {
		return fmt.Errorf("commit layer: %w", err)
	}
	lnk := filepath.Join(s.root, "l", short)
	if err := os.Symlink(filepath.Join("..", "layers", chain.Encoded(), "diff"), lnk); err != nil {
		return fmt.Errorf("commit layer: %w", err)
	}
	// The temp dir is the final dir's sibling's child: same filesystem.
	if err := os.Rename(tmp, s.layerDir(chain)); err != nil {
		os.Remove(lnk)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return nil // another berth unpacked it first
		}
		return fmt.Errorf("commit layer %s: %w", chain, err)
	}
	t.Release()
	return nil
}

// ingestLayer reads one compressed layer blob from r, verifying it against
// desc, and stores the blob and/or the unpacked layer (chain id chain,
// whose uncompressed content must hash to diffID).
func (s *Store) ingestLayer(r io.Reader, desc ocispec.Descriptor, diffID, chain digest.Digest, storeBlob, unpack bool) error {
	if err := checkLayerMediaType(desc.MediaType); err != nil {
		return err
	}
	var bw *blobWriter
	var dg digest.Digester
	if storeBlob {
		var err error
		if bw, err = s.newBlobWriter(); err != nil {
			return err
		}
		defer bw.Abort() // no-op after Commit renamed it
		r = io.TeeReader(r, bw)
	} else {
		dg = digest.SHA256.Digester()
		r = io.TeeReader(r, dg.Hash())
	}
	var tmp *tempEntry
	var size int64
	if unpack {
		dr, _, err := Decompress(r)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		var got digest.Digest
		tmp, got, size, err = s.unpackToTemp(dr)
		dr.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		defer tmp.Remove() // no-op once committed
		if got != diffID {
			// Read the rest first: a truncated blob is the likelier story.
			if _, err := io.Copy(io.Discard, r); err != nil {
				return fmt.Errorf("layer %s: %w", desc.Digest, err)
			}
			if d := sumOf(bw, dg); d != desc.Digest {
				return fmt.Errorf("layer blob digest mismatch: expected %s, got %s", desc.Digest, d)
			}
			return fmt.Errorf("layer %s: uncompressed content hashes to %s, config says %s", desc.Digest, got, diffID)
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if bw != nil {
		if _, err := bw.Commit(desc.Digest, desc.Size); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
	} else if d := dg.Digest(); d != desc.Digest {
		return fmt.Errorf("layer blob digest mismatch: expected %s, got %s", desc.Digest, d)
	}
	if unpack {
		return s.commitLayer(tmp, chain, size)
	}
	return nil
}

func sumOf(bw *blobWriter, dg digest.Digester) digest.Digest {
	if bw != nil {
		return bw.Digest()
	}
	return dg.Digest()
}

// LayerDesc is a stored layer: its blob and its diff id.
type LayerDesc struct {
	Blob   ocispec.Descriptor
	DiffID digest.Digest
}

// writeLayerBlob stores the gzip-compressed blob of the uncompressed layer
// tar r, which consume reads (to the end) as the blob is written.
func (s *Store) writeLayerBlob(r io.Reader, consume func(io.Reader) error) (ocispec.Descriptor, error) {
	bw, err := s.newBlobWriter()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer bw.Abort()
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer: %w", err)
	}
	if err := consume(io.TeeReader(r, zw)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer: %w", err)
	}
	n := bw.n
	blob, err := bw.Commit("", -1)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("add layer: %w", err)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: blob, Size: n}, nil
}

// AddLayer stores the uncompressed layer tar r on top of the layer with
// chain id parent ("" for a base layer): the blob gzip-compressed, the
// layer unpacked. Commit and build use it.
func (s *Store) AddLayer(parent digest.Digest, r io.Reader) (LayerDesc, error) {
	var (
		tmp    *tempEntry
		diffID digest.Digest
		size   int64
	)
	blob, err := s.writeLayerBlob(r, func(in io.Reader) error {
		var err error
		tmp, diffID, size, err = s.unpackToTemp(in)
		return err
	})
	if tmp != nil {
		defer tmp.Remove()
	}
	if err != nil {
		return LayerDesc{}, err
	}
	if err := s.commitLayer(tmp, ChainID(parent, diffID), size); err != nil {
		return LayerDesc{}, err
	}
	return LayerDesc{Blob: blob, DiffID: diffID}, nil
}

// AddLayerDir stores a layer whose files are already in dir, in the
// unpacked layers' form (an overlay upper dir: whiteouts as 0/0 character
// devices, opaque directories by xattr), and whose uncompressed tar r
// streams. The blob is written from r; dir itself becomes the layer's
// directory (renamed: build's step layers are not written twice). dir is
// gone afterwards unless an error says otherwise.
func (s *Store) AddLayerDir(parent digest.Digest, dir string, r io.Reader) (LayerDesc, error) {
	dg := digest.SHA256.Digester()
	var size int64
	blob, err := s.writeLayerBlob(r, func(r io.Reader) error {
		in := io.TeeReader(r, dg.Hash())
		tr := tar.NewReader(in)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				size += h.Size
			}
		}
		// The tar may end before its stream does (padding): hash it all.
		_, err := io.Copy(io.Discard, in)
		return err
	})
	if err != nil {
		return LayerDesc{}, err
	}
	diffID := dg.Digest()
	chain := ChainID(parent, diffID)
	desc := LayerDesc{Blob: blob, DiffID: diffID}
	if s.HasLayer(chain) {
		return desc, os.RemoveAll(dir)
	}
	tmp, err := s.createTemp("layer", true, 0o755)
	if err != nil {
		return LayerDesc{}, fmt.Errorf("add layer: %w", err)
	}
	if err := os.Rename(dir, filepath.Join(tmp.path, "diff")); err != nil {
		// Another filesystem: unpack the blob just written instead.
		tmp.Remove()
		f, err := s.OpenBlob(blob.Digest)
		if err != nil {
			return LayerDesc{}, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return LayerDesc{}, fmt.Errorf("add layer: %w", err)
		}
		t, _, sz, err := s.unpackToTemp(zr)
		if err != nil {
			return LayerDesc{}, fmt.Errorf("add layer: %w", err)
		}
		return desc, s.commitLayer(t, chain, sz)
	}
	if err := s.commitLayer(tmp, chain, size); err != nil {
		return LayerDesc{}, err
	}
	return desc, nil
}
