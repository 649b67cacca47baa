package safetree

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func tarOf(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "x"
			h.Size = 1
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func openDir(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Entries never land outside the destination: not through a symlink
// already there, one the archive makes, "..", or a hard link.
func TestExtractStaysInside(t *testing.T) {
	outside := t.TempDir()
	for name, hdrs := range map[string][]*tar.Header{
		"existing link": {{Name: "out/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"archive link": {{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "l/x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"dotdot":    {{Name: "../x", Typeflag: tar.TypeReg, Mode: 0o644}},
		"hard link": {{Name: "h", Typeflag: tar.TypeLink, Linkname: "out/victim"}},
	} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			if err := os.Symlink(outside, filepath.Join(dest, "out")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "victim"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			err := Extract(openDir(t, dest), bytes.NewReader(tarOf(t, hdrs...)), ExtractOptions{})
			if err == nil {
				t.Errorf("extract accepted it")
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Errorf("extract wrote outside: %v", ents)
			}
			if fi, _ := os.Stat(filepath.Join(outside, "victim")); fi != nil && fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Errorf("hard link made to a file outside")
			}
		})
	}
}

// A file, device or symlink where an entry goes is replaced, not written
// through.
func TestExtractReplaces(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	dest := t.TempDir()
	os.Symlink(victim, filepath.Join(dest, "f"))
	if err := unix.Mknod(filepath.Join(dest, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	a := tarOf(t, &tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644}, &tar.Header{Name: "null", Typeflag: tar.TypeReg, Mode: 0o644})
	if err := Extract(openDir(t, dest), bytes.NewReader(a), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("written through the symlink: %q", b)
	}
	for _, n := range []string{"f", "null"} {
		if fi, err := os.Lstat(filepath.Join(dest, n)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s not replaced by a file: %v %v", n, fi, err)
		}
	}
}

// WriteTar lists symlinks as links and devices as nodes, following and
// opening neither.
func TestWriteTarFollowsNothing(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o600)
	src := t.TempDir()
	os.Symlink(outside, filepath.Join(src, "link"))
	if err := unix.Mknod(filepath.Join(src, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
		t.Fatal(err)
	}
	root, err := OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := WriteTar(tw, root.Handle(), TarOptions{}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	tr := tar.NewReader(&buf)
	seen := map[string]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("%s carries the outside file", h.Name)
		}
		seen[h.Name] = h.Typeflag
	}
	if seen["link"] != tar.TypeSymlink || seen["zero"] != tar.TypeChar || len(seen) != 2 {
		t.Errorf("entries: %v", seen)
	}
	// Resolution stays inside too: link/secret is the root's, not outside's.
	if _, err := root.Open("/link/secret", true); err == nil {
		t.Errorf("Open followed a symlink out of the root")
	}
}

// A device node swapped in for a regular file after the walk saw it is
// never opened by WriteTar: inotify, which reports every successful open
// of the node, sees none, and the entry is archived as the node it now is.
func TestWriteTarSwappedDeviceNeverOpened(t *testing.T) {
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	out := tarSwapped(t, func(src, f string) {
		// /dev/null's numbers where the file was, once stat'ed.
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(f, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.InotifyAddWatch(in, f, unix.IN_OPEN); err != nil {
			t.Fatal(err)
		}
	})
	// Taken again as what it is now: a node.
	h, err := tar.NewReader(out).Next()
	if err != nil || h.Name != "f" || h.Typeflag != tar.TypeChar {
		t.Errorf("entry %+v, %v: want f as a character device", h, err)
	}
	buf := make([]byte, 4096)
	if k, err := unix.Read(in, buf); err == nil && k > 0 {
		t.Errorf("the device node was opened (%d bytes of inotify events)", k)
	} else if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("read inotify: %v", err)
	}
}

// A regular file replaced by another between the walk's stat and its
// open is archived as the file there now, whole: never the old header
// with the new file's bytes.
func TestWriteTarSwappedFileTakenAgain(t *testing.T) {
	out := tarSwapped(t, func(src, f string) {
		n := filepath.Join(src, "new")
		if err := os.WriteFile(n, []byte("swapped in, longer"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(n, f); err != nil {
			t.Fatal(err)
		}
	})
	tr := tar.NewReader(out)
	h, err := tr.Next()
	if err != nil || h.Name != "f" {
		t.Fatalf("entry %+v, %v: want f", h, err)
	}
	body, err := io.ReadAll(tr)
	if err != nil || string(body) != "swapped in, longer" || h.Size != int64(len(body)) {
		t.Errorf("f archived with size %d and %q (%v), want the new file whole", h.Size, body, err)
	}
}

// tarSwapped archives, with WriteTar through OpenRoot, a directory that
// holds the regular file f ("data"), calling swap once, right after the
// walk stat'ed f, to put something else in its place.
func tarSwapped(t *testing.T, swap func(src, f string)) *bytes.Buffer {
	t.Helper()
	src := t.TempDir()
	f := filepath.Join(src, "f")
	if err := os.WriteFile(f, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := OpenRoot(src)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	swapped := false
	skip := func(e *Entry) bool {
		if e.Rel == "f" && !swapped {
			swapped = true
			swap(src, f)
		}
		return false
	}
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	if err := WriteTar(tw, root.Handle(), TarOptions{Skip: skip}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return &out
}

// CopyFd copies large files whole, by copy_file_range on one filesystem
// and by reads and writes across two (where the kernel refuses the
// former, a refusal remembered for the pair), and small files whole too.
func TestCopyFdAcrossFilesystems(t *testing.T) {
	src := t.TempDir()
	other := t.TempDir()
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(other, unix.MNT_DETACH)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+7) // past several buffers, odd size
	small := []byte("small\n")
	for name, data := range map[string][]byte{"big": big, "small": small} {
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyTo := func(dstDir, name string) {
		t.Helper()
		in, err := unix.Open(filepath.Join(src, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(in)
		var sst, dst unix.Stat_t
		unix.Fstat(in, &sst)
		unix.Stat(dstDir, &dst)
		dfd, err := unix.Open(dstDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dfd)
		err = CreateFile(dfd, name+"-copy", name, func(out int) error {
			return CopyFd(out, in, sst.Size, sst.Dev, dst.Dev)
		}, FileAttrs{Mode: 0o644})
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dstDir, name+"-copy"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(src, name))
		if !bytes.Equal(got, want) {
			t.Errorf("%s to %s: %d bytes copied, want %d identical", name, dstDir, len(got), len(want))
		}
	}
	same := t.TempDir()
	for _, d := range []string{same, other} {
		copyTo(d, "big")
		copyTo(d, "small")
	}
	var sst, ost unix.Stat_t
	unix.Stat(src, &sst)
	unix.Stat(other, &ost)
	if _, failed := rangeFails.Load([2]uint64{sst.Dev, ost.Dev}); !failed {
		t.Log("copy_file_range worked across the filesystems here")
	}
	// Again, now that the pair is remembered.
	os.Remove(filepath.Join(other, "big-copy"))
	copyTo(other, "big")
}
