package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Change is one line of `diff`: A added, C changed, D deleted.
type Change struct {
	Kind string
	Path string
}

func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

func isOpaque(path string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(path, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// Changes lists what the container changed against its image, from the
// overlay's upper dir.
func (s *Store) Changes(r *Record) ([]Change, error) {
	upper := filepath.Join(s.Dir(r.ID), "upper")
	img, err := s.Images.Resolve(r.Image)
	if err != nil {
		return nil, err
	}
	lowers := img.LayerDirs()
	inLower := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	var out []Change
	err = filepath.Walk(upper, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == upper {
				return filepath.SkipDir
			}
			return err
		}
		if p == upper {
			return nil
		}
		rel := "/" + strings.TrimPrefix(p, upper+"/")
		switch {
		case isWhiteout(fi):
			out = append(out, Change{"D", rel})
		case inLower(rel):
			out = append(out, Change{"C", rel})
		default:
			out = append(out, Change{"A", rel})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	return out, nil
}

// WriteTar writes the tree under root as a tar stream. With layer, the
// tree is an overlay upper dir and its whiteouts become the .wh. files of
// an image layer.
func WriteTar(root string, w io.Writer, layer bool) error {
	tw := tar.NewWriter(w)
	links := map[uint64]string{}
	err := filepath.Walk(root, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := strings.TrimPrefix(p, root+"/")
		if layer && isWhiteout(fi) {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: filepath.Join(filepath.Dir(rel), ".wh."+fi.Name()), Mode: 0o600, ModTime: fi.ModTime()})
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return fmt.Errorf("tar %s: %w", rel, err)
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		st, _ := fi.Sys().(*syscall.Stat_t)
		if st != nil && fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				links[st.Ino] = rel
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", rel, err)
			}
		}
		if layer && fi.IsDir() && isOpaque(p) {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel + "/.wh..wh..opq", Mode: 0o600, ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
