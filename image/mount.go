package image

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-project/berth/overlay"
)

// Mount mounts the image ref read-only (for debugging: berth image mount)
// and returns the mount point. Mounting twice returns the same path.
func (s *Store) Mount(ref string) (string, error) {
	img, err := s.Resolve(ref)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.root, "mounts", img.ID.Encoded())
	merged := filepath.Join(dir, "merged")
	if ok, _ := mountinfo.Mounted(merged); ok {
		return merged, nil
	}
	if len(img.ChainIDs) == 0 {
		return "", fmt.Errorf("mount %s: image has no layers", ref)
	}
	if err := os.MkdirAll(merged, 0o755); err != nil {
		return "", fmt.Errorf("mount %s: %w", ref, err)
	}
	if err := overlay.Mount(img.LayerDirs(), "", "", merged, true); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("mount %s: %w", ref, err)
	}
	return merged, nil
}

// Unmount undoes Mount.
func (s *Store) Unmount(ref string) error {
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, "mounts", img.ID.Encoded())
	if err := overlay.Unmount(filepath.Join(dir, "merged")); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("unmount %s: %w", ref, err)
	}
	return nil
}
