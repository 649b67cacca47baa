package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// The fuzz targets feed the layer unpacker and the archive loaders
// arbitrary input and check that nothing outside the target is written
// (a sibling directory of the target, and a directory at a fixed absolute
// path that the seeds' symlinks name) and that bad input is an error, not
// a panic. `make fuzz` runs each for a while; a plain `go test` runs the
// seeds.

// fuzzBudget bounds what one input may expand to (tar content, after
// decompression): a small input may declare a sparse file of terabytes,
// or be a compression bomb, and the point here is not the disk space.
const fuzzBudget = 8 << 20

const fuzzOutsideEnv = "BERTH_FUZZ_OUTSIDE"

// fuzzOutside is a directory at an absolute path the seeds can name.
// Fuzzing workers are started with the coordinator's environment, so they
// share the one the coordinator made.
func fuzzOutside(f *testing.F) string {
	if os.Geteuid() != 0 {
		f.Skip("needs root (unpacking sets owners and makes device nodes)")
	}
	if d := os.Getenv(fuzzOutsideEnv); d != "" {
		return d
	}
	d, err := os.MkdirTemp("", "berth-fuzz-outside-")
	if err != nil {
		f.Fatal(err)
	}
	populateOutside(f, d)
	os.Setenv(fuzzOutsideEnv, d)
	f.Cleanup(func() {
		os.Unsetenv(fuzzOutsideEnv)
		os.RemoveAll(d)
	})
	return d
}

// populateOutside fills a directory a bad layer could aim at.
func populateOutside(t testing.TB, d string) {
	for _, p := range []string{"b", "dir/sub"} {
		if err := os.MkdirAll(filepath.Join(d, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"sentinel", "dir/file", "passwd"} {
		if err := os.WriteFile(filepath.Join(d, p), []byte("do not touch "+p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes every entry under dir (but skip) by its metadata
// and content, to compare before and after.
func snapshot(t *testing.T, dir, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%d nlink=%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Nlink)
		if p == dir || p == filepath.Dir(skip) {
			// Its mtime changes when the target is made in it.
			desc = fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			desc += " sha256=" + hex.EncodeToString(h[:])
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		sz, _ := unix.Llistxattr(p, nil)
		if sz > 0 {
			buf := make([]byte, sz)
			n, _ := unix.Llistxattr(p, buf)
			desc += " xattrs=" + strings.ReplaceAll(string(buf[:n]), "\x00", ",")
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s removed", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed: %s, was %s", what, p, a, b)
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared (%s)", what, p, a)
		}
	}
}

// withinBudget tells whether the tar stream r declares at most budget
// bytes of content; it stops at the first error, as the unpacker does.
func withinBudget(r io.Reader, budget int64) bool {
	dr, _, err := Decompress(io.LimitReader(r, budget+1<<20))
	if err != nil {
		return true // the loader fails on it as well
	}
	defer dr.Close()
	tr := tar.NewReader(io.LimitReader(dr, budget))
	var total int64
	for {
		hdr, err := tr.Next()
		if err != nil {
			return true
		}
		if hdr.Size < 0 || hdr.Size > budget-total {
			return false
		}
		total += hdr.Size
	}
}

// archiveWithinBudget is withinBudget for an archive and every file in
// it (layers are tars too, maybe compressed).
func archiveWithinBudget(b []byte) bool {
	if !withinBudget(bytes.NewReader(b), fuzzBudget) {
		return false
	}
	dr, _, err := Decompress(bytes.NewReader(b))
	if err != nil {
		return true
	}
	defer dr.Close()
	tr := tar.NewReader(io.LimitReader(dr, fuzzBudget))
	for {
		if _, err := tr.Next(); err != nil {
			return true
		}
		if !withinBudget(tr, fuzzBudget) {
			return false
		}
	}
}

// fuzzTarget makes <tmp>/target with a sibling <tmp>/outside for one
// input, and returns a check to run after it.
func fuzzTarget(t *testing.T, outside string) (string, func()) {
	tmp := t.TempDir()
	target := filepath.Join(tmp, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	populateOutside(t, filepath.Join(tmp, "outside"))
	before := snapshot(t, tmp, target)
	beforeShared := snapshot(t, outside, "")
	return target, func() {
		t.Helper()
		sameSnapshot(t, "next to the target", before, snapshot(t, tmp, target))
		sameSnapshot(t, "outside", beforeShared, snapshot(t, outside, ""))
		if fi, err := os.Lstat(target); err != nil || !fi.IsDir() {
			t.Errorf("the target is no longer a directory: %v %v", fi, err)
		}
	}
}

func oneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("multi-line error: %q", err)
	}
}

// craftedLayers are layers that try to leave their root, the ones the
// unpack tests refuse or defuse, aimed at the sibling (../outside) and at
// the shared directory outside (by absolute path).
func craftedLayers(t testing.TB, outside string) [][]byte {
	withX := func(e tarEntry, kv ...string) tarEntry {
		e.hdr.PAXRecords = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			e.hdr.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
		}
		return e
	}
	sets := [][]tarEntry{
		{dir("./", 0o755), dir("etc/", 0o755), file("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644), hardlink("etc/hl", "etc/passwd"),
			symlink("bin", "usr/bin"), tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev/fifo", Mode: 0o600}},
			file("gone/.wh.old", nil, 0o644), dir("opq/", 0o755), file("opq/.wh..wh..opq", nil, 0o644)},
		{file("../outside/evil", []byte("x"), 0o644)},
		{dir("a/", 0o755), file("a/../../outside/evil", []byte("x"), 0o644)},
		{symlink("o", outside), file("o/evil", []byte("x"), 0o644)},
		{symlink("up", "../outside"), file("up/evil", []byte("x"), 0o644)},
		{symlink("up", "../../../../../../.."+outside), dir("up/b/", 0o700)},
		{hardlink("h", "../outside/sentinel")},
		{symlink("s", outside), hardlink("h", "s/sentinel")},
		{hardlink("h", outside+"/sentinel")},
		{symlink("s", outside), file("s/.wh.sentinel", nil, 0o644)},
		{symlink("s", outside), file("s/.wh..wh..opq", nil, 0o644)},
		{symlink("x", outside+"/sentinel"), file("x", []byte("mine"), 0o644)},
		{symlink("x", outside+"/passwd"), withX(symlink("x", outside+"/passwd"), "user.x", "y")},
		{dir("a/", 0o755), dir("a/b/", 0o700), symlink("a", outside)},
		{dir("a/", 0o755), dir("a/b/", 0o700), file(".wh.a", nil, 0o644), symlink("a", outside)},
		{dir("a/", 0o755), dir("a/dir/", 0o700), symlink("a", "../outside"), dir("a/dir/", 0o700)},
		{withX(dir("d/", 0o755), "trusted.overlay.redirect", outside, "trusted.overlay.opaque", "y", "user.k", "v")},
		{dir("d/", 0o755), file("d/f", []byte("1"), 0o644), file("d", []byte("now a file"), 0o600), dir("d/", 0o700)},
		{file("f", []byte("x"), 0o4755), hardlink("f2", "f"), file("f", []byte("y"), 0o644)},
	}
	var out [][]byte
	for _, s := range sets {
		out = append(out, makeTar(t, s...))
	}
	return out
}

func FuzzUnpack(f *testing.F) {
	outside := fuzzOutside(f)
	for _, l := range craftedLayers(f, outside) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !withinBudget(bytes.NewReader(b), fuzzBudget) {
			t.Skip("declares more content than the fuzzing budget")
		}
		target, check := fuzzTarget(t, outside)
		_, err := Unpack(target, bytes.NewReader(b), UnpackOptions{})
		oneLine(t, err)
		check()
	})
}

// testArchive writes files (name, content) as a tar.
func testArchive(t testing.TB, files ...[2]string) []byte {
	var entries []tarEntry
	for _, f := range files {
		entries = append(entries, file(f[0], []byte(f[1]), 0o644))
	}
	return makeTar(t, entries...)
}

// dockerArchive is a docker save archive of ti (uncompressed layers, as
// docker writes them) tagged fuzz:1.
func dockerArchive(t testing.TB, layers ...[]byte) []byte {
	ti := makeTestImage(t, runtime.GOARCH, "none", layers...)
	blob := func(b rawBlob) string { return "blobs/sha256/" + b.desc().Digest.Encoded() }
	ent := dockerManifestEntry{Config: blob(ti.config), RepoTags: []string{"fuzz:1"}}
	files := [][2]string{{blob(ti.config), string(ti.config.data)}}
	for _, l := range ti.layers {
		ent.Layers = append(ent.Layers, blob(l))
		files = append(files, [2]string{blob(l), string(l.data)})
	}
	mb, _ := json.Marshal([]dockerManifestEntry{ent})
	files = append(files, [2]string{"manifest.json", string(mb)})
	return testArchive(t, files...)
}

// ociArchive is an OCI layout archive of an image of layers, compressed
// with compress, named fuzz:1.
func ociArchive(t testing.TB, compress string, layers ...[]byte) []byte {
	ti := makeTestImage(t, runtime.GOARCH, compress, layers...)
	blob := func(b rawBlob) string { return "blobs/sha256/" + b.desc().Digest.Encoded() }
	files := [][2]string{{blob(ti.config), string(ti.config.data)}}
	for _, l := range ti.layers {
		files = append(files, [2]string{blob(l), string(l.data)})
	}
	md := rawBlob{ocispec.MediaTypeImageManifest, ti.manifest}
	files = append(files, [2]string{blob(md), string(ti.manifest)})
	d := md.desc()
	d.Annotations = map[string]string{annotationContainerdName: "docker.io/library/fuzz:1", ocispec.AnnotationRefName: "1"}
	ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{d}})
	files = append(files, [2]string{"index.json", string(ib)}, [2]string{ocispec.ImageLayoutFile, `{"imageLayoutVersion":"1.0.0"}`})
	return testArchive(t, files...)
}

func FuzzLoad(f *testing.F) {
	outside := fuzzOutside(f)
	ok := makeTar(f, dir("./", 0o755), dir("bin/", 0o755), file("bin/sh", []byte("#!fake"), 0o755), symlink("bin/ash", "sh"))
	f.Add(dockerArchive(f, ok))
	f.Add(gzipBytes(f, ociArchive(f, "gzip", ok)))
	f.Add(zstdBytes(f, dockerArchive(f, ok)))
	for i, l := range craftedLayers(f, outside) {
		switch i % 3 {
		case 0:
			f.Add(dockerArchive(f, ok, l))
		case 1:
			f.Add(ociArchive(f, "gzip", l))
		default:
			f.Add(gzipBytes(f, ociArchive(f, "zstd", ok, l)))
		}
	}
	// Archives whose own names and links aim outside.
	f.Add(testArchive(f, [2]string{"../outside/evil", "x"}, [2]string{"manifest.json", "[]"}))
	f.Add(testArchive(f, [2]string{"manifest.json", `[{"Config":"../../outside/sentinel","Layers":["` + outside + `/sentinel"]}]`}))
	f.Add(makeTar(f, symlink("manifest.json", outside+"/sentinel"), symlink("index.json", "../../outside/sentinel")))
	f.Add(makeTar(f, symlink("blobs", outside), file("blobs/x", []byte("x"), 0o644), hardlink("index.json", "../outside/passwd")))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !archiveWithinBudget(b) {
			t.Skip("expands beyond the fuzzing budget")
		}
		target, check := fuzzTarget(t, outside)
		s, err := Open(target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Load(bytes.NewReader(b))
		oneLine(t, err)
		check()
		// Nothing of a load is left behind, failed or not.
		if ents, err := os.ReadDir(filepath.Join(s.Root(), "tmp")); err != nil || len(ents) != 0 {
			t.Errorf("tmp/ after load: %v %v", ents, err)
		}
	})
}

func FuzzImport(f *testing.F) {
	outside := fuzzOutside(f)
	for i, l := range craftedLayers(f, outside) {
		switch i % 3 {
		case 0:
			f.Add(l)
		case 1:
			f.Add(gzipBytes(f, l))
		default:
			f.Add(zstdBytes(f, l))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !withinBudget(bytes.NewReader(b), fuzzBudget) {
			t.Skip("expands beyond the fuzzing budget")
		}
		target, check := fuzzTarget(t, outside)
		s, err := Open(target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Import(bytes.NewReader(b), "fuzz:1", nil)
		oneLine(t, err)
		check()
		if ents, err := os.ReadDir(filepath.Join(s.Root(), "tmp")); err != nil || len(ents) != 0 {
			t.Errorf("tmp/ after import: %v %v", ents, err)
		}
	})
}
