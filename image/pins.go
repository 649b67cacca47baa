package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/atomicfile"
)

// Pin keeps blobs and unpacked layers that no image names from garbage
// collection: the build cache pins the layers of its steps.
type Pin struct {
	Blobs  []digest.Digest `json:"blobs,omitempty"`
	Chains []digest.Digest `json:"chains,omitempty"`
}

func (s *Store) pinPath(name string) string { return filepath.Join(s.root, "pins", name+".json") }

func checkPinName(name string) error {
	if name == "" || strings.ContainsAny(name, "/.") {
		return fmt.Errorf("invalid pin name %q", name)
	}
	return nil
}

// SetPin stores (or replaces) the pin called name.
func (s *Store) SetPin(name string, p Pin) error {
	if err := checkPinName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(s.root, "pins"), 0o700); err != nil {
		return fmt.Errorf("pin %s: %w", name, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("pin %s: %w", name, err)
	}
	if err := atomicfile.Write(s.pinPath(name), b, 0o600); err != nil {
		return fmt.Errorf("pin %s: %w", name, err)
	}
	return nil
}

// RemovePin drops the pin called name; a missing one is no error.
func (s *Store) RemovePin(name string) error {
	if err := checkPinName(name); err != nil {
		return err
	}
	if err := os.Remove(s.pinPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", name, err)
	}
	return nil
}

// pinned adds what every pin keeps to the sets GC keeps.
func (s *Store) pinned(blobs, chains map[string]bool) error {
	ents, err := os.ReadDir(filepath.Join(s.root, "pins"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pins: %w", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.root, "pins", e.Name()))
		if err != nil {
			return fmt.Errorf("pins: %w", err)
		}
		var p Pin
		if err := json.Unmarshal(b, &p); err != nil {
			// A pin that cannot be read keeps nothing; it is not a
			// reason to refuse collecting.
			continue
		}
		for _, d := range p.Blobs {
			blobs[d.Encoded()] = true
		}
		for _, c := range p.Chains {
			chains[c.Encoded()] = true
		}
	}
	return nil
}

// ChainDirs are the unpacked directories of the layers with these chain
// ids, lowest first.
func (s *Store) ChainDirs(chain []digest.Digest) []string { return s.diffDirs(chain) }

// HoldContent keeps garbage collection off until the returned function is
// called, for a caller (build) that adds layers it names only later.
func (s *Store) HoldContent() (func(), error) { return s.opLock(false, true) }

// LayerSize is the unpacked size of the layer with chain id c.
func (s *Store) LayerSize(c digest.Digest) int64 { return s.layerSize(c) }
