package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/safetree"
)

// CopyOptions are cp's flags.
type CopyOptions struct {
	Archive    bool // -a: keep owners
	FollowLink bool // -L: follow a symlink given as the source
}

// ctrTree is the part of a container's filesystem that holds a path: its
// root, or the volume or bind mount that covers the path, opened as a
// tree the container controls.
type ctrTree struct {
	root    *safetree.Root
	inner   string // the path inside root
	display string // CONTAINER:PATH, for errors
}

// openTree opens the tree holding the container path p. A volume or bind
// mount covering p is a tree of its own: its source is what the container
// sees there.
func (s *Store) openTree(r *Record, merged, p string) (*ctrTree, error) {
	p = path.Clean("/" + p)
	best, src := "", ""
	for _, m := range r.Mounts {
		if m.Type == "tmpfs" || m.Source == "" {
			continue
		}
		d := path.Clean(m.Destination)
		if (p == d || strings.HasPrefix(p, d+"/")) && len(d) > len(best) {
			best, src = d, m.Source
		}
	}
	dir, inner := merged, p
	if best != "" {
		dir, inner = src, strings.TrimPrefix(p, best)
	}
	root, err := safetree.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &ctrTree{root: root, inner: "/" + strings.TrimPrefix(inner, "/"), display: r.Name + ":" + p}, nil
}

// withRoot runs fn with the container's root mounted.
func (s *Store) withRoot(r *Record, fn func(merged string) error) error {
	merged, release, err := s.MountRoot(r)
	if err != nil {
		return err
	}
	defer release()
	return fn(merged)
}

// destination is where a copy lands: a directory handle and the name the
// copied node takes in it ("" to merge the source's content into it).
type destination struct {
	dir  *os.File
	name string
}

// planDest decides, as docker cp does, where a source (a directory or
// not, its content only for SRC/.) lands for the destination path dst:
// into dst when it is a directory, else as dst. stat and open look the
// destination up on its side.
func planDest(srcDir, contents bool, srcBase, dst string, stat func(string) (*unix.Stat_t, error), open func(string) (*os.File, error)) (*destination, error) {
	st, err := stat(dst)
	switch {
	case err == nil && safetree.IsDir(st):
		d, err := open(dst)
		if err != nil {
			return nil, err
		}
		if contents {
			return &destination{dir: d}, nil
		}
		return &destination{dir: d, name: srcBase}, nil
	case err == nil && srcDir:
		return nil, fmt.Errorf("%s: cannot copy a directory onto a non-directory", dst)
	case err != nil && !errors.Is(err, unix.ENOENT):
		return nil, err
	case err != nil && strings.HasSuffix(dst, "/") && !srcDir:
		return nil, fmt.Errorf("%s: no such directory", dst)
	}
	parent, base := path.Split(strings.TrimSuffix(dst, "/"))
	if parent == "" {
		parent = "."
	}
	d, err := open(parent)
	if err != nil {
		return nil, err
	}
	pst, err := safetree.Stat(d)
	if err != nil || !safetree.IsDir(pst) {
		d.Close()
		return nil, fmt.Errorf("%s: not a directory", parent)
	}
	return &destination{dir: d, name: base}, nil
}

// pump writes the tree at src into dest through a tar stream, the one
// form both sides speak; read and write map the owners on each side
// (see idShift), nil where the side is the host's.
func pump(src *os.File, name string, dest *os.File, opts CopyOptions, read, write safetree.OwnerMap) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := safetree.WriteTar(tw, src, safetree.TarOptions{Name: name, Owners: read})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
		done <- err
	}()
	err := safetree.Extract(dest, pr, safetree.ExtractOptions{KeepOwners: opts.Archive, Owners: write})
	pr.CloseWithError(errExtractEnded)
	// The reading side's failure is the first cause; the writing side
	// then only sees errExtractEnded.
	if werr := <-done; werr != nil && !errors.Is(werr, errExtractEnded) {
		return werr
	}
	return err
}

var errExtractEnded = errors.New("extraction ended")

func isContents(p string) bool { return p == "." || strings.HasSuffix(p, "/.") }

// CopyOut copies the container path src to the host path dst (docker cp
// CTR:SRC DST).
func (s *Store) CopyOut(r *Record, src, dst string, opts CopyOptions) error {
	return s.withRoot(r, func(merged string) error {
		t, err := s.openTree(r, merged, src)
		if err != nil {
			return err
		}
		defer t.root.Close()
		h, err := t.root.Open(t.inner, opts.FollowLink || isContents(src) || strings.HasSuffix(src, "/"))
		if err != nil {
			return fmt.Errorf("%s:%w", r.Name, err)
		}
		defer h.Close()
		st, err := safetree.Stat(h)
		if err != nil {
			return err
		}
		srcDir := safetree.IsDir(st)
		d, err := planDest(srcDir, srcDir && isContents(src), path.Base(path.Clean("/"+src)), dst, hostStat, hostOpenDir)
		if err != nil {
			return err
		}
		defer d.dir.Close()
		_, toCtr := idShift(r)
		return pump(h, d.name, d.dir, opts, toCtr, nil)
	})
}

// CopyOutTar writes the container path src as a tar stream to w (docker cp
// CTR:SRC -).
func (s *Store) CopyOutTar(r *Record, src string, w io.Writer, opts CopyOptions) error {
	return s.withRoot(r, func(merged string) error {
		t, err := s.openTree(r, merged, src)
		if err != nil {
			return err
		}
		defer t.root.Close()
		h, err := t.root.Open(t.inner, opts.FollowLink || isContents(src))
		if err != nil {
			return fmt.Errorf("%s:%w", r.Name, err)
		}
		defer h.Close()
		name := path.Base(path.Clean("/" + src))
		if name == "/" {
			name = "."
		}
		_, toCtr := idShift(r)
		tw := tar.NewWriter(w)
		if err := safetree.WriteTar(tw, h, safetree.TarOptions{Name: name, Owners: toCtr}); err != nil {
			return err
		}
		return tw.Close()
	})
}

// CopyIn copies the host path src into the container at dst (docker cp
// SRC CTR:DST).
func (s *Store) CopyIn(r *Record, src, dst string, opts CopyOptions) error {
	flags := unix.O_PATH | unix.O_CLOEXEC
	if !opts.FollowLink && !isContents(src) && !strings.HasSuffix(src, "/") {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(src, flags, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	h := os.NewFile(uintptr(fd), src)
	defer h.Close()
	st, err := safetree.Stat(h)
	if err != nil {
		return err
	}
	srcDir := safetree.IsDir(st)
	return s.withRoot(r, func(merged string) error {
		t, err := s.openTree(r, merged, dst)
		if err != nil {
			return err
		}
		defer t.root.Close()
		inner := t.inner
		if strings.HasSuffix(dst, "/") && inner != "/" {
			inner += "/"
		}
		d, err := planDest(srcDir, srcDir && isContents(src), filepath.Base(filepath.Clean(src)), inner,
			func(p string) (*unix.Stat_t, error) { return t.stat(p) },
			func(p string) (*os.File, error) { return t.root.Open(p, true) })
		if err != nil {
			return fmt.Errorf("%s:%w", r.Name, err)
		}
		defer d.dir.Close()
		toHost, _ := idShift(r)
		return pump(h, d.name, d.dir, opts, nil, toHost)
	})
}

// CopyInTar extracts the tar stream rd into the container directory dst
// (docker cp - CTR:DST).
func (s *Store) CopyInTar(r *Record, rd io.Reader, dst string, opts CopyOptions) error {
	return s.withRoot(r, func(merged string) error {
		t, err := s.openTree(r, merged, dst)
		if err != nil {
			return err
		}
		defer t.root.Close()
		d, err := t.root.Open(t.inner, true)
		if err != nil {
			return fmt.Errorf("%s:%w", r.Name, err)
		}
		defer d.Close()
		if st, err := safetree.Stat(d); err != nil || !safetree.IsDir(st) {
			return fmt.Errorf("%s: destination must be a directory", t.display)
		}
		toHost, _ := idShift(r)
		return safetree.Extract(d, rd, safetree.ExtractOptions{KeepOwners: opts.Archive, Owners: toHost})
	})
}

func (t *ctrTree) stat(p string) (*unix.Stat_t, error) {
	h, err := t.root.Open(p, true)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return safetree.Stat(h)
}

func hostStat(p string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return &st, nil
}

func hostOpenDir(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Export writes the container's whole filesystem as a tar stream.
func (s *Store) Export(r *Record, w io.Writer) error {
	return s.withRoot(r, func(merged string) error {
		root, err := safetree.OpenRoot(merged)
		if err != nil {
			return err
		}
		defer root.Close()
		_, toCtr := idShift(r)
		tw := tar.NewWriter(w)
		if err := safetree.WriteTar(tw, root.Handle(), safetree.TarOptions{Owners: toCtr}); err != nil {
			return fmt.Errorf("export %s: %w", r.Name, err)
		}
		return tw.Close()
	})
}

// LayerTar writes the container's changes (its overlay upper dir) as an
// image layer: whiteouts and opaque directories in the .wh. form.
func (s *Store) LayerTar(r *Record, w io.Writer) error {
	root, err := safetree.OpenRoot(s.UpperDir(r.ID))
	if err != nil {
		return err
	}
	defer root.Close()
	// A committed image of a container with id maps has the owners the
	// container sees, as podman's.
	_, toCtr := idShift(r)
	tw := tar.NewWriter(w)
	if err := safetree.WriteTar(tw, root.Handle(), safetree.TarOptions{Layer: true, Skip: netMountpoint, Owners: toCtr}); err != nil {
		return fmt.Errorf("commit %s: %w", r.Name, err)
	}
	return tw.Close()
}
