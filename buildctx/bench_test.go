package buildctx

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
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
