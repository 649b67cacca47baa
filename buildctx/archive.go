package buildctx

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/safetree"
)

// decompressor returns a reader of r's uncompressed content when r starts
// with the magic of gzip, bzip2 or xz (r itself otherwise).
func decompressor(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return xz.NewReader(br)
	}
	return br, nil
}

// looksLikeTar tells whether the stream starts with a tar header.
func looksLikeTar(br *bufio.Reader) bool {
	block, err := br.Peek(512)
	if err != nil {
		return false
	}
	if _, err := tar.NewReader(bytes.NewReader(block)).Next(); err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		return bytes.Equal(block[257:262], []byte("ustar")) || err == nil
	}
	return false
}

// openArchive opens the source file n as a tar stream when it is one
// (possibly compressed); nil when it is not an archive.
func openArchive(f io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	r, err := decompressor(br)
	if err != nil {
		return nil, nil // a damaged compressed file is copied as it is, as Docker does
	}
	tbr := bufio.NewReaderSize(r, 64<<10)
	if !looksLikeTar(tbr) {
		return nil, nil
	}
	return tbr, nil
}

// extractArchive extracts the file src into the directory dest when it is
// a tar archive; done is false (and nothing written) when it is not.
// Entries keep the archive's owners unless --chown is given, and its
// modes unless --chmod is; nothing leaves dest (safetree.Extract's rules).
func (c *Context) extractArchive(dstRoot *os.File, dest string, src Source, a *attrs) (done bool, err error) {
	err = c.walk(src, func(n *node) error {
		fd, err := c.openFile(n)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		r, err := openArchive(safetree.FDReader(fd))
		if err != nil || r == nil {
			return err
		}
		done = true
		dfd, _, err := mkdirAll(dstRoot, dest)
		if err != nil {
			return err
		}
		dir := os.NewFile(uintptr(dfd), dest)
		defer dir.Close()
		return extractInto(dir, r, a)
	})
	return done, err
}

// extractInto extracts the tar stream r into the O_PATH directory handle
// dir, rewriting owners and modes as a says.
func extractInto(dir *os.File, r io.Reader, a *attrs) error {
	if a.owner == nil && !a.hasMode {
		return safetree.Extract(dir, r, safetree.ExtractOptions{KeepOwners: true})
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(rewriteTar(pw, r, a))
	}()
	err := safetree.Extract(dir, pr, safetree.ExtractOptions{KeepOwners: true})
	pr.CloseWithError(errors.New("extraction ended"))
	return err
}

// rewriteTar copies the tar stream r to w with --chown/--chmod applied.
func rewriteTar(w io.Writer, r io.Reader, a *attrs) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if a.owner != nil {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = a.owner.UID, a.owner.GID, "", ""
		}
		if a.hasMode && hdr.Typeflag != tar.TypeSymlink && hdr.Typeflag != tar.TypeLink {
			hdr.Mode = int64(a.mode)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
