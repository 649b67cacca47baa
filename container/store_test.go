package container

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/atomicfile"
)

// TestLoadWhileRewrittenInPlace: on a full file system a record is
// rewritten in place, and a read at that moment sees a mix of the old and
// the new. Load reads such a record again rather than failing (a stop on
// a full disk failed that way in CI).
func TestLoadWhileRewrittenInPlace(t *testing.T) {
	rs := Records{DataRoot: t.TempDir()}
	id := strings.Repeat("ab", 32)
	path := recordPath(rs.DataRoot, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	// Two records whose bytes differ all along: a mix does not parse.
	recs := make([][]byte, 2)
	for i, n := range []int{1, 40} { // both padded to the same size
		r := &Record{ID: id, Name: strings.Repeat("n", n)}
		r.Config.Cmd = []string{strings.Repeat("x", 300), strings.Repeat("y", 300)}
		r.Config.Env = []string{"A=" + strings.Repeat("z", 2000)}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = atomicfile.PadRecord(b, 512)
	}
	if err := os.WriteFile(path, recs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Each rewrite is two writes with a pause between, a wide
		// version of the moment a rewrite in place is half done.
		for i := 1; !stop.Load(); i++ {
			b := recs[i%2]
			for _, part := range [][2]int{{0, len(b) / 2}, {len(b) / 2, len(b)}} {
				if _, err := f.WriteAt(b[part[0]:part[1]], int64(part[0])); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	defer func() { stop.Store(true); <-done }()
	for i := 0; i < 100; i++ {
		if _, err := rs.Load(id); err != nil {
			t.Fatalf("load %d while the record is rewritten in place: %v", i, err)
		}
		time.Sleep(time.Millisecond)
	}
}
