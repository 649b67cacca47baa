package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/buildctx"
)

// buildContext opens the build context once per build.
func (bd *build) buildContext() (*buildctx.Context, error) {
	bd.ctxMu.Lock()
	defer bd.ctxMu.Unlock()
	if bd.context != nil {
		return bd.context, nil
	}
	if bd.o.ContextDir == "" {
		return nil, errNoContext
	}
	abs, err := filepath.Abs(bd.o.ContextDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	hashes := filepath.Join(bd.b.DataRoot, "build", "context", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(hashes, 0o700); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	c, err := buildctx.Open(abs, bd.o.DockerfilePath, hashes)
	if err != nil {
		return nil, err
	}
	bd.context = c
	return c, nil
}

// closeContext releases the build context, if opened.
func (bd *build) closeContext() {
	if bd.context != nil {
		bd.context.Close()
	}
}

// reportContext says how many files of the context were read to hash
// them: an unchanged file is not read again.
func (bd *build) reportContext() {
	if bd.context != nil {
		bd.prog.plain("#0 context: %d files read for checksums", bd.context.FilesRead())
	}
}

// readOnlyRoot mounts layers read-only and opens them as a COPY --from
// source; the cleanup unmounts.
func (bd *build) readOnlyRoot(lowers []string) (*buildctx.Context, func(), error) {
	dir, unmount, err := bd.b.mountReadOnly(lowers)
	if err != nil {
		return nil, nil, err
	}
	c, err := buildctx.OpenRoot(dir, "")
	if err != nil {
		unmount()
		return nil, nil, err
	}
	return c, func() { c.Close(); unmount() }, nil
}

// copySource is where a COPY or ADD reads: the context, a stage or an
// image; the cleanup releases it.
func (bd *build) copySource(st *stage, from string) (*buildctx.Context, string, func(), error) {
	if from == "" {
		c, err := bd.buildContext()
		return c, "context", func() {}, err
	}
	if j := bd.df.stageIndex(from, st.idx); j >= 0 {
		src, err := bd.wait(j)
		if err != nil {
			return nil, "", nil, err
		}
		c, cleanup, err := bd.readOnlyRoot(bd.layerDirs(src))
		return c, "stage " + src.key.String(), cleanup, err
	}
	img, err := bd.getImage(from)
	if err != nil {
		return nil, "", nil, err
	}
	c, cleanup, err := bd.readOnlyRoot(img.LayerDirs())
	return c, "image " + img.ID.String(), cleanup, err
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// copyStep runs a COPY or ADD: the sources' checksum decides whether the
// cached layer serves; otherwise they are copied into the stage's root
// through an overlay, whose upper dir is the layer.
func (bd *build) copyStep(st *stage, cmd instructions.Command, step int, text string) error {
	op := "COPY"
	var sd instructions.SourcesAndDest
	var from, chown, chmod, checksum string
	var excludes []string
	var parents, add bool
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		sd, from, chown, chmod, excludes, parents = c.SourcesAndDest, c.From, c.Chown, c.Chmod, c.ExcludePatterns, c.Parents
	case *instructions.AddCommand:
		op, add = "ADD", true
		sd, chown, chmod, checksum, excludes = c.SourcesAndDest, c.Chown, c.Chmod, c.Checksum, c.ExcludePatterns
	}
	// Heredoc sources, expanded with the stage's variables when asked.
	var inline []buildctx.Inline
	for _, sc := range sd.SourceContents {
		data := sc.Data
		if sc.Expand {
			var err error
			if data, err = expander(st.lex, envVars(st.args, st.cfg.Config.Env))(data); err != nil {
				return err
			}
		}
		inline = append(inline, buildctx.Inline{Name: sc.Path, Data: []byte(data)})
	}
	dest := sd.DestPath
	if !path.IsAbs(dest) {
		wd := st.cfg.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		slash := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join(wd, dest)
		if slash && dest != "/" {
			dest += "/"
		}
	}
	var local, urls []string
	for _, s := range sd.SourcePaths {
		if add && isURL(s) {
			urls = append(urls, s)
		} else {
			local = append(local, s)
		}
	}
	start := time.Now()
	var srcCtx *buildctx.Context
	var srcs []buildctx.Source
	var sums []string
	if len(local) > 0 {
		c, what, cleanup, err := bd.copySource(st, from)
		if err != nil {
			return err
		}
		defer cleanup()
		srcCtx = c
		if srcs, err = c.ResolveExclude(op, local, excludes); err != nil {
			return err
		}
		sum, err := c.Checksum(srcs)
		if err != nil {
			return err
		}
		sums = append(sums, what, sum.String())
	}
	var downloads []*buildctx.Download
	defer func() {
		for _, d := range downloads {
			d.Close()
		}
	}()
	for _, u := range urls {
		d, err := buildctx.Fetch(bd.ctx, u, filepath.Join(bd.b.DataRoot, "build"), checksum)
		if err != nil {
			return err
		}
		downloads = append(downloads, d)
		sums = append(sums, u, d.Digest.String(), d.ModTime.String())
	}
	for _, in := range inline {
		sums = append(sums, "inline", in.Name, string(in.Data))
	}
	if len(sd.SourcePaths)+len(inline) > 1 && !strings.HasSuffix(dest, "/") {
		return fmt.Errorf("when using %s with more than one source file, the destination must be a directory and end with a /", op)
	}
	desc, err := json.Marshal(struct {
		Op, Dest, Chown, Chmod string
		Sums, Excludes         []string
		Parents                bool
	}{op, dest, chown, chmod, sums, excludes, parents})
	if err != nil {
		return err
	}
	key := keyOf(st.key.String(), op, string(desc))
	// As BuildKit words it.
	createdBy := op
	if parents {
		createdBy += " --parents"
	}
	if chown != "" {
		createdBy += " --chown=" + chown
	}
	if chmod != "" {
		createdBy += " --chmod=" + chmod
	}
	for _, src := range sd.SourcePaths {
		createdBy += " " + src
	}
	for _, in := range inline {
		createdBy += " <<" + in.Name
	}
	createdBy += " " + sd.DestPath + " # buildkit"
	if !st.noCache {
		if rec, ok := bd.b.cacheGet(key); ok {
			bd.prog.line(step, "CACHED")
			st.addLayerStep(key, rec)
			return nil
		}
	}
	opts := buildctx.CopyOptions{Chown: chown, Chmod: chmod, ExtractArchives: add, Parents: parents}
	lowers := bd.layerDirs(st)
	dir, upper, release, err := bd.b.overlayStep(lowers, func(merged string) error {
		fd, err := unix.Open(merged, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		root := os.NewFile(uintptr(fd), merged)
		defer root.Close()
		if srcCtx != nil {
			if err := srcCtx.Copy(root, dest, srcs, opts); err != nil {
				return err
			}
		}
		for _, d := range downloads {
			if err := d.CopyTo(root, dest, opts); err != nil {
				return err
			}
		}
		if len(inline) > 0 {
			return buildctx.CopyInline(root, dest, inline, opts)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(dir)
		release()
	}()
	var parent digest.Digest
	if len(st.chains) > 0 {
		parent = st.chains[len(st.chains)-1]
	}
	layer, chain, err := bd.b.addUpperLayer(upper, parent, nil)
	if err != nil {
		return fmt.Errorf("layer of %s: %w", op, err)
	}
	rec := &cacheRecord{Layer: layer, Chain: chain, Created: time.Now().UTC(), CreatedBy: createdBy}
	if err := bd.b.cachePut(key, rec); err != nil {
		return err
	}
	st.addLayerStep(key, rec)
	bd.prog.done(step, start)
	return nil
}

// export copies the stage's files into dir (-o type=local,dest=dir).
func (bd *build) export(st *stage, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	c, cleanup, err := bd.readOnlyRoot(bd.layerDirs(st))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer cleanup()
	srcs, err := c.Resolve([]string{"."})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	root := os.NewFile(uintptr(fd), dir)
	defer root.Close()
	if err := c.Copy(root, "/", srcs, buildctx.CopyOptions{}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
