package buildctx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/safetree"
)

// Download is a file fetched for ADD <url>, held in an unlinked
// temporary file until Close.
type Download struct {
	// Name is the file name ADD gives it in a directory: the last
	// component of the URL's path.
	Name string
	// ModTime is the server's Last-Modified, zero when it sent none.
	ModTime time.Time
	// Digest is the sha256 of the content (the cache key of the ADD).
	Digest digest.Digest
	file   *os.File
}

// Fetch downloads rawURL (http or https) into an unlinked file in tmpDir
// ("" for the system's). A non-empty checksum (ADD --checksum, such as
// "sha256:...") must match the content.
func Fetch(ctx context.Context, rawURL, tmpDir, checksum string) (*Download, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ADD failed: invalid URL %q", rawURL)
	}
	var want digest.Digest
	if checksum != "" {
		if want, err = digest.Parse(checksum); err != nil {
			return nil, fmt.Errorf("ADD failed: invalid --checksum %q: %w", checksum, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD failed: %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD failed: fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("ADD failed: fetch %s: %s", rawURL, resp.Status)
	}
	if tmpDir != "" {
		if err := os.MkdirAll(tmpDir, 0o700); err != nil {
			return nil, fmt.Errorf("ADD failed: %w", err)
		}
	}
	f, err := os.CreateTemp(tmpDir, ".berth-add-*")
	if err != nil {
		return nil, fmt.Errorf("ADD failed: %w", err)
	}
	os.Remove(f.Name())
	d := &Download{Name: urlName(u), file: f}
	dig := digest.SHA256.Digester()
	if want != "" {
		if !want.Algorithm().Available() {
			f.Close()
			return nil, fmt.Errorf("ADD failed: invalid --checksum %q: unsupported algorithm", checksum)
		}
		dig = want.Algorithm().Digester()
	}
	if _, err := io.Copy(io.MultiWriter(f, dig.Hash()), resp.Body); err != nil {
		f.Close()
		return nil, fmt.Errorf("ADD failed: fetch %s: %w", rawURL, err)
	}
	d.Digest = dig.Digest()
	if want != "" && d.Digest != want {
		f.Close()
		return nil, fmt.Errorf("ADD failed: checksum of %s does not match: expected %s, got %s", rawURL, want, d.Digest)
	}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			d.ModTime = t
		}
	}
	return d, nil
}

// urlName is the file name of a URL's path ("__unnamed__" for none).
func urlName(u *url.URL) string {
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return "__unnamed__"
	}
	return name
}

// Close removes the downloaded file.
func (d *Download) Close() error { return d.file.Close() }

// CopyTo writes the download into the root filesystem dstRoot at dest,
// as Docker's ADD <url> does: dest ending in "/" (or an existing
// directory) gets the file under its Name, else dest is the file; mode
// 0600 unless --chmod, root's unless --chown, mtime Last-Modified when
// sent. Never extracted. Paths resolve inside dstRoot as for Copy.
func (d *Download) CopyTo(dstRoot *os.File, dest string, opts CopyOptions) error {
	if _, err := d.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ADD failed: %w", err)
	}
	var ts []unix.Timespec
	if !d.ModTime.IsZero() {
		t := unix.NsecToTimespec(d.ModTime.UnixNano())
		ts = []unix.Timespec{t, t}
	}
	if err := writeNamed(dstRoot, dest, d.Name, d.file, 0o600, ts, opts); err != nil {
		return fmt.Errorf("ADD failed: %w", err)
	}
	return nil
}

// Inline is a COPY source written in the Dockerfile itself (a heredoc,
// COPY <<EOF /dest).
type Inline struct {
	Name string // the heredoc's name: the file name in a directory
	Data []byte
}

// CopyInline writes heredoc sources into the root filesystem dstRoot at
// dest as Copy writes files of those names (dest ending in "/" or an
// existing directory, or several files: into it; else dest is the
// file): mode 0644 unless --chmod, root's unless --chown.
func CopyInline(dstRoot *os.File, dest string, files []Inline, opts CopyOptions) error {
	if len(files) > 1 && !strings.HasSuffix(dest, "/") {
		dest += "/"
	}
	for _, f := range files {
		if err := writeNamed(dstRoot, dest, f.Name, bytes.NewReader(f.Data), 0o644, nil, opts); err != nil {
			return fmt.Errorf("COPY failed: %w", err)
		}
	}
	return nil
}

// writeNamed writes r as a file of dstRoot: dest/name when dest ends in
// "/" or is a directory, else dest; with mode (unless --chmod), root's
// (unless --chown), times ts (nil: now). Paths resolve inside dstRoot
// as for Copy, and what is in the way (a link, a device) is replaced,
// never opened.
func writeNamed(dstRoot *os.File, dest, name string, r io.Reader, mode uint32, ts []unix.Timespec, opts CopyOptions) error {
	a, err := prepareAttrs(dstRoot, opts, false)
	if err != nil {
		return err
	}
	target := path.Clean("/" + dest)
	isDir := strings.HasSuffix(dest, "/")
	if !isDir {
		if fd, err := openInRoot(dstRoot, target, unix.O_DIRECTORY); err == nil {
			unix.Close(fd)
			isDir = true
		}
	}
	if isDir {
		if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			return fmt.Errorf("invalid file name %q", name)
		}
		target = path.Join(target, name)
	}
	if target == "/" {
		return errors.New("cannot replace the root directory with a file")
	}
	pfd, _, err := mkdirAll(dstRoot, path.Dir(target))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if a.hasMode {
		mode = a.mode
	}
	uid, gid := a.ids(&unix.Stat_t{})
	fa := safetree.FileAttrs{UID: uid, GID: gid, Mode: mode, Times: ts}
	base := path.Base(target)
	return replace(pfd, base, func() error {
		return safetree.CreateFile(pfd, base, target, func(fd int) error {
			return safetree.CopyReader(fd, r)
		}, fa)
	})
}
