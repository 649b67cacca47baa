package build

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/crashpoint"
	"github.com/berth-project/berth/internal/lockfile"
	"github.com/berth-project/berth/overlay"
	"github.com/berth-project/berth/safetree"
)

// stubFiles are the mount points a container start makes for berth's own
// /etc files: never part of a step's layer.
var stubFiles = []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"}

// inLowers says whether rel exists in one of the layer directories,
// looked up inside each: a layer's own symlinks cannot point it at the
// host.
func inLowers(lowers []string, rel string) bool {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	for _, l := range lowers {
		dfd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		fd, err := unix.Openat2(dfd, rel, how)
		unix.Close(dfd)
		if err == nil {
			unix.Close(fd)
			return true
		}
	}
	return false
}

// skipSet is what of an upper dir is not the step's change: the empty
// mount points made for the step's mounts (stubs, relative paths) that
// the lower layers lack, and the directories above them that hold
// nothing else (made, or copied up, only for the mount point).
func skipSet(upper string, lowers []string, stubs []string) (map[string]bool, error) {
	root, err := safetree.OpenRoot(upper)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	isStub := map[string]bool{}
	for _, s := range append(stubs, stubFiles...) {
		isStub[s] = true
	}
	type ent struct {
		dir   bool
		empty bool
	}
	ents := map[string]ent{}
	var order []string
	err = safetree.Walk(root.Handle(), true, func(e *safetree.Entry) error {
		typ := e.Stat.Mode & unix.S_IFMT
		ents[e.Rel] = ent{dir: typ == unix.S_IFDIR, empty: typ == unix.S_IFREG && e.Stat.Size == 0 || typ == unix.S_IFDIR}
		order = append(order, e.Rel)
		if p := path.Dir(e.Rel); p != "." {
			if pe, ok := ents[p]; ok && pe.dir {
				pe.empty = false
				ents[p] = pe
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, rel := range order {
		if isStub[rel] && ents[rel].empty && !inLowers(lowers, rel) {
			skip[rel] = true
		}
	}
	if len(skip) == 0 {
		return skip, nil
	}
	kept := map[string]bool{} // directories with something kept below
	for _, rel := range order {
		if skip[rel] {
			continue
		}
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			kept[p] = true
		}
	}
	for rel := range skip {
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if !kept[p] {
				skip[p] = true
			}
		}
	}
	return skip, nil
}

// addUpperLayer stores the upper dir of a step as a layer on top of the
// layer with chain id parent, without skip. It reads only the upper dir:
// the step's changes, never the whole tree; and the upper dir becomes the
// layer's directory, so its files are not written twice.
func (b *Builder) addUpperLayer(upper string, parent digest.Digest, skip map[string]bool) (image.LayerDesc, digest.Digest, error) {
	if err := removeSkipped(upper, skip); err != nil {
		return image.LayerDesc{}, "", err
	}
	root, err := safetree.OpenRoot(upper)
	if err != nil {
		return image.LayerDesc{}, "", err
	}
	defer root.Close()
	pr, pw := io.Pipe()
	go func() {
		// Buffered: an io.Pipe write waits for its reader, and a tar of
		// many small files is three small writes per file.
		bw := bufio.NewWriterSize(pw, 256<<10)
		tw := tar.NewWriter(bw)
		err := safetree.WriteTar(tw, root.Handle(), safetree.TarOptions{Layer: true})
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	desc, err := b.Images.AddLayerDir(parent, upper, pr)
	pr.Close()
	if err != nil {
		return image.LayerDesc{}, "", err
	}
	return desc, image.ChainID(parent, desc.DiffID), nil
}

// removeSkipped deletes the skipped entries of an upper dir (empty mount
// points and the directories made for them), deepest first, by
// descriptors that follow no symlink: what a step left there must not
// send the removal out of it.
func removeSkipped(upper string, skip map[string]bool) error {
	if len(skip) == 0 {
		return nil
	}
	rels := make([]string, 0, len(skip))
	for rel := range skip {
		rels = append(rels, rel)
	}
	sort.Slice(rels, func(i, j int) bool { return len(rels[i]) > len(rels[j]) })
	top, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	defer unix.Close(top)
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
	for _, rel := range rels {
		dfd, err := unix.Openat2(top, path.Dir(rel), how)
		if err != nil {
			return fmt.Errorf("layer: %s: %w", rel, err)
		}
		err = unix.Unlinkat(dfd, path.Base(rel), 0)
		if errors.Is(err, unix.EISDIR) {
			err = unix.Unlinkat(dfd, path.Base(rel), unix.AT_REMOVEDIR)
		}
		unix.Close(dfd)
		if err != nil {
			return fmt.Errorf("layer: remove %s: %w", rel, err)
		}
	}
	return nil
}

// scratchDir is an empty directory that stands as the lower layer of a
// stage with none.
func (b *Builder) scratchDir() (string, error) {
	dir := filepath.Join(b.DataRoot, "build", "empty")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return dir, nil
}

// tempDir makes a directory under <data-root>/build/tmp, locked until
// release: sweepTmp takes what no live build holds (the mounts and files
// of a build that was killed).
func (b *Builder) tempDir(prefix string) (dir string, release func(), err error) {
	tmp := filepath.Join(b.DataRoot, "build", "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", nil, fmt.Errorf("build: %w", err)
	}
	if dir, err = os.MkdirTemp(tmp, prefix); err != nil {
		return "", nil, fmt.Errorf("build: %w", err)
	}
	lock, err := lockfile.OpenDir(dir, unix.LOCK_EX)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() { lock.Close() }, nil
}

// sweepTmp removes what killed builds left under build/tmp: each entry
// whose lock it can take, its mounts first. A mount it cannot undo keeps
// its entry.
func (b *Builder) sweepTmp() {
	tmp := filepath.Join(b.DataRoot, "build", "tmp")
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		dir := filepath.Join(tmp, e.Name())
		lock, err := lockfile.OpenDir(dir, unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			continue // a live build's, or not a directory
		}
		ok := true
		for _, p := range []string{filepath.Join(dir, "merged"), filepath.Join(dir, "mnt")} {
			if m, err := mountinfo.Mounted(p); err == nil && m {
				if err := overlay.Unmount(p); err != nil {
					logrus.Warnf("build: unmount leftover %s: %v", p, err)
					ok = false
				}
			}
		}
		if ok {
			if err := os.RemoveAll(dir); err != nil {
				logrus.Warnf("build: remove leftover %s: %v", dir, err)
			}
		}
		lock.Close()
	}
}

// mountReadOnly mounts layers read-only in a fresh locked directory; the
// cleanup unmounts and removes it.
func (b *Builder) mountReadOnly(lowers []string) (string, func(), error) {
	return b.mountLayers(lowers, false)
}

// mountLayers mounts layers in a fresh locked directory: read-only, or
// with a scratch upper dir that takes the writes (rw). The cleanup
// unmounts and removes it all, writes included.
func (b *Builder) mountLayers(lowers []string, rw bool) (string, func(), error) {
	if len(lowers) == 0 {
		empty, err := b.scratchDir()
		if err != nil {
			return "", nil, err
		}
		lowers = []string{empty}
	}
	// The mount point is below the locked directory: a lock taken on
	// the mount's path would be on the mount's root instead.
	dir, release, err := b.tempDir("from-")
	if err != nil {
		return "", nil, err
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		os.RemoveAll(dir)
		release()
		return "", nil, fmt.Errorf("build: %w", err)
	}
	upper, work := "", ""
	if rw {
		upper, work = filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	}
	if err := overlay.Mount(lowers, upper, work, mnt, !rw); err != nil {
		os.RemoveAll(dir)
		release()
		return "", nil, err
	}
	return mnt, func() {
		defer release()
		if err := overlay.Unmount(mnt); err != nil {
			logrus.Warnf("unmount %s: %v", mnt, err)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

// overlayStep mounts the layers with a fresh upper dir, calls fn with the
// merged root and unmounts it. The caller removes dir (returned with the
// upper dir in it) when done with the upper dir, then calls release.
func (b *Builder) overlayStep(lowers []string, fn func(merged string) error) (dir, upper string, release func(), err error) {
	if len(lowers) == 0 {
		empty, err := b.scratchDir()
		if err != nil {
			return "", "", nil, err
		}
		lowers = []string{empty}
	}
	dir, release, err = b.tempDir("step-")
	if err != nil {
		return "", "", nil, err
	}
	fail := func(err error) (string, string, func(), error) {
		os.RemoveAll(dir)
		release()
		return "", "", nil, err
	}
	upper = filepath.Join(dir, "upper")
	merged := filepath.Join(dir, "merged")
	if err := os.Mkdir(merged, 0o755); err != nil {
		return fail(fmt.Errorf("build: %w", err))
	}
	if err := overlay.Mount(lowers, upper, filepath.Join(dir, "work"), merged, false); err != nil {
		return fail(err)
	}
	crashpoint.At("build-overlay-step")
	ferr := fn(merged)
	if err := overlay.Unmount(merged); err != nil {
		// Never remove a tree that may still be mounted.
		release()
		return "", "", nil, fmt.Errorf("build: unmount %s: %w", merged, err)
	}
	if ferr != nil {
		return fail(ferr)
	}
	return dir, upper, release, nil
}
