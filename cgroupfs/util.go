package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// cleanPath validates an OCI cgroupsPath and returns it in absolute, clean
// form ("/berth/abc"). A relative path is taken as relative to the root of
// each hierarchy. Any ".." component, an empty path and the root itself are
// rejected: berth never manages a hierarchy's root cgroup.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("cgroupfs: empty cgroups path")
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", fmt.Errorf("cgroupfs: cgroups path %q must not contain \"..\"", p)
		}
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("cgroupfs: cgroups path %q contains NUL", p)
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("cgroupfs: cgroups path %q names the root cgroup", p)
	}
	return c, nil
}

// writeFile writes value to dir/file in one write(2), without creating the
// file. The error names the file and the value.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	logrus.Debugf("cgroupfs: write %s: %q", p, value)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// readFile reads dir/file, trimmed of surrounding white space.
func readFile(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// fileExists reports whether dir/file is there.
func fileExists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readUint reads a single unsigned number; "max" reads as 0 (unlimited).
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return 0, err
	}
	return parseUint(s, filepath.Join(dir, file))
}

func parseUint(s, where string) (uint64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative numbers (e.g. v1's -1) mean unlimited.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q from %s: %w", s, where, err)
	}
	return v, nil
}

// readKeyValues parses a flat keyed file ("key value" per line).
func readKeyValues(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			m[f[0]] = v
		}
	}
	return m, nil
}

// readProcs reads the pids in dir/cgroup.procs and, with recursive, in every
// descendant cgroup.
func readProcs(dir string, recursive bool) ([]int, error) {
	var pids []int
	seen := map[int]bool{}
	var walk func(d string, top bool) error
	walk = func(d string, top bool) error {
		f, err := os.Open(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if !top && errors.Is(err, os.ErrNotExist) {
				return nil // removed while we walked
			}
			return fmt.Errorf("read %s: %w", filepath.Join(d, "cgroup.procs"), err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
			if err == nil && pid > 0 && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(d, "cgroup.procs"), err)
		}
		if !recursive {
			return nil
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			if !top && errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("list %s: %w", d, err)
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := walk(filepath.Join(d, e.Name()), false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(dir, true); err != nil {
		return nil, err
	}
	return pids, nil
}

// signalPids sends sig to every pid; processes that are already gone are
// not an error.
func signalPids(pids []int, sig int) error {
	var errs []error
	for _, pid := range pids {
		if err := unix.Kill(pid, syscall.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d with signal %d: %w", pid, sig, err))
		}
	}
	return errors.Join(errs...)
}

// mkdirAll creates every missing directory from root down to root+rel,
// calling before(parent) ahead of creating each missing or existing level
// (so callers can prepare a parent, e.g. enable controllers or fill cpuset).
func mkdirAll(root, rel string, before func(parent, child string) error) error {
	cur := root
	for _, c := range strings.Split(strings.Trim(rel, "/"), "/") {
		if c == "" {
			continue
		}
		next := filepath.Join(cur, c)
		if before != nil {
			if err := before(cur, next); err != nil {
				return err
			}
		}
		if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("mkdir %s: %w", next, err)
		} else if err == nil {
			logrus.Debugf("cgroupfs: mkdir %s", next)
		}
		cur = next
	}
	return nil
}

// removeCgroup removes dir and every cgroup below it, deepest first. rmdir on
// a cgroup fails with EBUSY while tasks are still leaving it, so it retries
// for a short while. A missing dir is not an error.
func removeCgroup(dir string) error {
	// Usually there is no child cgroup: try without listing first.
	if err := unix.Rmdir(dir); err == nil {
		logrus.Debugf("cgroupfs: rmdir %s", dir)
		return nil
	} else if errors.Is(err, unix.ENOENT) {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil {
			logrus.Debugf("cgroupfs: rmdir %s", dir)
			return nil
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// pollUntil calls check until it reports done, an error, or the timeout.
func pollUntil(timeout time.Duration, check func() (bool, error)) error {
	delay := time.Millisecond
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}

func fmtInt(v int64) string   { return strconv.FormatInt(v, 10) }
func fmtUint(v uint64) string { return strconv.FormatUint(v, 10) }
