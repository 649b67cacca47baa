package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/lockfile"
)

// A directory that stands for one object (a container's state dir, its
// data dir) is made and then filled; a process killed in between leaves
// it half-made. Its maker holds an exclusive flock on it while it fills
// it, so a cleaner that gets the lock knows the maker is gone. Between
// the mkdir and the flock the maker holds a shared flock on the parent,
// which the cleaner takes exclusively while it looks: it never sees a
// directory made but not yet locked.

// CreateDir makes dir and returns it locked (see Lock); it fails with an
// error wrapping os.ErrExist when dir exists.
func CreateDir(dir string, mode os.FileMode) (*Lock, error) {
	parent, err := lockfile.OpenDir(filepath.Dir(dir), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	if err := os.Mkdir(dir, mode); err != nil {
		return nil, err
	}
	f, err := lockfile.OpenDir(dir, unix.LOCK_EX)
	if err != nil {
		_ = os.Remove(dir)
		return nil, err
	}
	return &Lock{f: f}, nil
}

// Abandoned is a half-made directory whose maker is gone, locked by the
// cleaner until it calls Unlock.
type Abandoned struct {
	Name string
	*Lock
}

// FindAbandoned returns the directories under parent that half (given a
// name) calls half-made and that nobody holds locked, each locked now.
// half is asked again once the lock is held: a maker may have finished
// meanwhile.
func FindAbandoned(parent string, half func(name string) bool) ([]Abandoned, error) {
	p, err := lockfile.OpenDir(parent, unix.LOCK_EX)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer p.Close()
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", parent, err)
	}
	var out []Abandoned
	for _, e := range ents {
		if !e.IsDir() || !half(e.Name()) {
			continue
		}
		f, err := lockfile.OpenDir(filepath.Join(parent, e.Name()), unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			continue // being made or worked on right now, or gone
		}
		if !half(e.Name()) {
			f.Close()
			continue
		}
		out = append(out, Abandoned{Name: e.Name(), Lock: &Lock{f: f}})
	}
	return out, nil
}

// HeldBy reports whether someone holds dir's lock (see CreateDir).
func HeldBy(dir string) bool {
	f, err := lockfile.OpenDir(dir, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	f.Close()
	return false
}
