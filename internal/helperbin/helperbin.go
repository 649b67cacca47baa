// Package helperbin carries berth's helper programs inside the berth
// binary and puts them where they can be executed: the lean monitor
// (cmd/berth-monitor), the container init (cmd/berth-init) and the image
// builder (berth itself built with -tags berth_build). berth stays
// one file to install; each program is written out once per boot and
// content, and every process runs the same file, so its code is shared.
//
// One rule places them all (Dirs): under the state root (--root), or
// under the data root when the state root is on a noexec mount. A berth
// with other roots never installs, runs or prunes these copies.
package helperbin

import (
	"compress/gzip"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

//go:embed bin
var files embed.FS

// The helper programs.
const (
	Monitor = "berth-monitor"
	Init    = "berth-init"
	// Build is berth with berth build linked in (see cmd_build.go): the
	// Dockerfile machinery is kept out of berth itself, whose every
	// start would load and initialise it.
	Build = "berth-build"
)

// programs are all the helper programs, for Prune.
var programs = []string{Monitor, Init, Build}

// embedded returns where name is embedded (its SHA-256 is in path +
// ".sha256") and whether it is gzip-compressed there (in path + ".gz").
// The build helper, a whole berth, is kept compressed in a directory of its
// own, which the build helper itself does not embed (see build_embed.go).
func embedded(name string) (fsys embed.FS, path string, gz bool) {
	if name == Build {
		return buildFiles, "buildbin/" + name, true
	}
	return files, "bin/" + name, false
}

// programSize is the size of name's program as installed.
func programSize(name string) (int64, error) {
	fsys, path, gz := embedded(name)
	if !gz {
		st, err := fs.Stat(fsys, path)
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	// gzip's trailer ends with the size, modulo 2^32, of what it holds.
	b, err := fs.ReadFile(fsys, path+".gz")
	if err != nil {
		return 0, err
	}
	if len(b) < 4 {
		return 0, fmt.Errorf("%s: truncated", path)
	}
	return int64(binary.LittleEndian.Uint32(b[len(b)-4:])), nil
}

// writeProgram writes name's program to w.
func writeProgram(w io.Writer, name string) error {
	fsys, path, gz := embedded(name)
	if !gz {
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	f, err := fsys.Open(path + ".gz")
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, zr); err != nil {
		return err
	}
	return zr.Close()
}

// ErrNotBuilt is returned by a berth built without the program.
var ErrNotBuilt = errors.New("berth was built without its helper programs (build it with make)")

// Install makes sure the program is in dir and returns its path. The file
// is named for its content, so a berth of another version never runs a
// stale one, and written under a temporary name first, so a concurrent
// Install or a crash never leaves a torn one to execute. When the file is
// there, Install costs one stat: the embedded bytes are read only to
// write them.
func Install(dir, name string) (string, error) {
	size, err := programSize(name)
	file, ok := copyName(name)
	if err != nil || !ok {
		return "", ErrNotBuilt
	}
	path := filepath.Join(dir, file)
	if have, err := os.Stat(path); err == nil && have.Size() == size && have.Mode().Perm()&0o100 != 0 {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("install %s: %w", name, err)
	}
	// No fork while the file is open for writing: a child forked then
	// (another goroutine starting a container) holds the descriptor until
	// its exec, and the kernel refuses to execute a file that someone
	// has open for writing (ETXTBSY), even after the rename.
	syscall.ForkLock.RLock()
	f, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		syscall.ForkLock.RUnlock()
		return "", fmt.Errorf("install %s: %w", name, err)
	}
	tmp := f.Name()
	err = writeProgram(f, name)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	syscall.ForkLock.RUnlock()
	if err == nil {
		err = os.Chmod(tmp, 0o755)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("install %s: %w", name, err)
	}
	return path, nil
}

// copyName is the file name Install gives this build's copy of name,
// from the embedded program's SHA-256; false if berth was built without
// it.
func copyName(name string) (string, bool) {
	fsys, path, _ := embedded(name)
	sum, err := fs.ReadFile(fsys, path+".sha256")
	id := strings.TrimSpace(string(sum))
	if err != nil || len(id) < 16 {
		return "", false
	}
	return name + "-" + id[:16], true
}

// Prune removes from each of dirs the copies of program name that other
// builds of berth installed there, except those that inUse says a
// process runs, and returns the paths removed and the bytes they held.
// Each build installs its own copy, and on a tmpfs they hold memory until
// the next boot.
func Prune(name string, inUse func(fs.FileInfo) bool, dirs ...string) ([]string, int64, error) {
	keep, _ := copyName(name)
	var removed []string
	var freed int64
	for _, dir := range dirs {
		r, n, err := pruneDir(dir, name, keep, inUse)
		removed, freed = append(removed, r...), freed+n
		if err != nil {
			return removed, freed, err
		}
	}
	return removed, freed, nil
}

// pruneDir is Prune in one directory, keeping the file named keep.
func pruneDir(dir, name, keep string, inUse func(fs.FileInfo) bool) ([]string, int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("prune %s: %w", name, err)
	}
	var removed []string
	var freed int64
	for _, e := range ents {
		n := e.Name()
		// Temporary files are left alone: one may be an install under way.
		if n == keep || !isCopy(n, name) {
			continue
		}
		p := filepath.Join(dir, n)
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || inUse(st) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, freed, fmt.Errorf("prune %s: %w", name, err)
		}
		removed = append(removed, p)
		freed += st.Size()
	}
	return removed, freed, nil
}

// isCopy tells whether file is named as Install names a copy of name.
func isCopy(file, name string) bool {
	id, ok := strings.CutPrefix(file, name+"-")
	if !ok || len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// Dirs are the roots of one berth: its helper programs live in a
// directory under one of them (see Install).
type Dirs struct {
	// StateRoot is --root; DataRoot is --data-root, "" where there is
	// none (the OCI face).
	StateRoot, DataRoot string
}

// subdir is the helpers' directory under a root: a dot name, since
// container ids start with a letter or digit.
const subdir = ".helpers"

// legacySubdir is where berth once installed the lean monitor; Prune
// still cleans it.
const legacySubdir = "monitor"

func (d Dirs) roots() []string {
	if d.DataRoot == "" || d.DataRoot == d.StateRoot {
		return []string{d.StateRoot}
	}
	return []string{d.StateRoot, d.DataRoot}
}

// Install installs the program name under the first root that allows
// programs to run (/run is a tmpfs that goes with a reboot, but some
// distributions mount it noexec) and returns its path.
func (d Dirs) Install(name string) (string, error) {
	roots := d.roots()
	for _, root := range roots {
		if execAllowed(root) {
			return Install(filepath.Join(root, subdir), name)
		}
	}
	return "", fmt.Errorf("install %s: %s is on a noexec mount", name, strings.Join(roots, " and "))
}

// Prune removes the copies of every helper program that other builds of
// berth installed under these roots and that no process runs, and returns
// the paths removed and the bytes they held.
func (d Dirs) Prune() ([]string, int64, error) {
	inUse, err := runningPrograms()
	if err != nil {
		return nil, 0, err
	}
	var dirs []string
	for _, root := range d.roots() {
		dirs = append(dirs, filepath.Join(root, subdir), filepath.Join(root, legacySubdir))
	}
	var removed []string
	var freed int64
	for _, name := range programs {
		r, n, err := Prune(name, inUse, dirs...)
		removed, freed = append(removed, r...), freed+n
		if err != nil {
			return removed, freed, err
		}
	}
	return removed, freed, nil
}

// execAllowed tells whether programs under dir may run: the nearest
// existing directory on the way up is on a file system mounted without
// noexec.
func execAllowed(dir string) bool {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(dir, &st)
		if err == nil {
			return st.Flags&unix.ST_NOEXEC == 0
		}
		parent := filepath.Dir(dir)
		if !errors.Is(err, unix.ENOENT) || parent == dir {
			return false
		}
		dir = parent
	}
}

// runningPrograms returns whether a file is the program of a running
// process, by its device and inode: a container's init runs its program
// through a mount of its own, under another path.
func runningPrograms() (func(fs.FileInfo) bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	type fileID struct{ dev, ino uint64 }
	running := map[fileID]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st unix.Stat_t
		// Processes that ended, or kernel threads, have none.
		if unix.Stat("/proc/"+e.Name()+"/exe", &st) == nil {
			running[fileID{st.Dev, st.Ino}] = true
		}
	}
	return func(fi fs.FileInfo) bool {
		st, ok := fi.Sys().(*syscall.Stat_t)
		return !ok || running[fileID{uint64(st.Dev), st.Ino}]
	}, nil
}
