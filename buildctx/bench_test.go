package buildctx

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkChecksumNoChange is a rebuild's context hashing: a fresh
// Context over 20,000 unchanged files whose hashes are cached.
func BenchmarkChecksumNoChange(b *testing.B) {
	dir, cacheDir := b.TempDir(), b.TempDir()
	for d := 0; d < 100; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		os.Mkdir(sub, 0o755)
		for f := 0; f < 200; f++ {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), []byte("content"), 0o644)
		}
	}
	time.Sleep(2 * racyWindow)
	run := func() int64 {
		c, err := Open(dir, "", cacheDir)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		srcs, err := c.Resolve([]string{"."})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Checksum(srcs); err != nil {
			b.Fatal(err)
		}
		return c.FilesRead()
	}
	run()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := run(); n != 0 {
			b.Fatalf("%d files read", n)
		}
	}
}

// BenchmarkCopyTree is COPY of a 20,000-file directory into an overlay
// mount (a build step's, here on a tmpfs), with the file writers on
// workers or on the walk's goroutine.
func BenchmarkCopyTree(b *testing.B) {
	dir := b.TempDir()
	for f := 0; f < 20000; f++ {
		os.WriteFile(filepath.Join(dir, "files", fmt.Sprintf("f%05d", f)), nil, 0o644)
		if f == 0 {
			os.Mkdir(filepath.Join(dir, "files"), 0o755)
			os.WriteFile(filepath.Join(dir, "files", "f00000"), []byte("x"), 0o644)
		}
	}
	c, err := Open(dir, "", "")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	srcs, err := c.Resolve([]string{"files"})
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{0, copyWorkers} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			defer func(old int) { copyWorkers = old }(copyWorkers)
			copyWorkers = workers
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				// On a tmpfs: ext4 without a journal makes a create scan
				// past recently deleted inodes, which would time the
				// previous iteration's cleanup instead.
				base := b.TempDir()
				if err := unix.Mount("tmpfs", base, "tmpfs", 0, ""); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { unix.Unmount(base, unix.MNT_DETACH) })
				for _, d := range []string{"lower", "upper", "work", "merged"} {
					os.Mkdir(filepath.Join(base, d), 0o755)
				}
				merged := filepath.Join(base, "merged")
				opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
				if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
					b.Fatal(err)
				}
				dst, err := os.Open(merged)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				err = c.Copy(dst, "/srv/files/", srcs, CopyOptions{})
				b.StopTimer()
				dst.Close()
				unix.Unmount(merged, 0)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
