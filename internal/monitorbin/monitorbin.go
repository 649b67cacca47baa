// Package monitorbin carries the lean monitor program (cmd/berth-monitor)
// inside the berth binary and puts it where a monitor can execute it.
// berth stays one file to install; the program is written out once per
// boot and content, and every monitor runs the same file, so its code is
// shared between them.
package monitorbin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

//go:embed bin
var files embed.FS

// ErrNotBuilt is returned by a berth built without the program.
var ErrNotBuilt = errors.New("berth was built without the lean monitor (build it with make)")

const name = "berth-monitor"

// Install makes sure the program is in dir and returns its path. The file
// is named for its content, so a berth of another version never runs a
// stale one, and written under a temporary name first, so a concurrent
// Install or a crash never leaves a torn one to execute.
func Install(dir string) (string, error) {
	prog, err := fs.ReadFile(files, "bin/"+name)
	if err != nil {
		return "", ErrNotBuilt
	}
	sum, err := fs.ReadFile(files, "bin/"+name+".sha256")
	id := strings.TrimSpace(string(sum))
	if err != nil || len(id) < 16 {
		h := sha256.Sum256(prog)
		id = hex.EncodeToString(h[:])
	}
	path := filepath.Join(dir, name+"-"+id[:16])
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(prog)) && st.Mode().Perm()&0o100 != 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("lean monitor: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("lean monitor: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(prog)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("lean monitor: %w", err)
	}
	return path, nil
}
