package buildctx

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/atfd"
)

// Source is one file or directory that a COPY or ADD source argument
// names (a wildcard argument yields one Source per match).
type Source struct {
	// Arg is the source argument as written in the instruction.
	Arg string
	// Rel is the path below the context's root, slash-separated and
	// clean, "." for the root itself. Its last component is the name a
	// file gets when copied into a directory.
	Rel string
	// IsDir tells whether Rel is a directory (after following a symlink
	// that Rel itself names): its content is what gets copied.
	IsDir bool
	// exclude holds the --exclude patterns, matched below the source.
	exclude *matcher
}

// SourceError is a source argument that cannot be used. Op is the
// instruction ("COPY" unless set otherwise), so the message reads as
// Docker's: "COPY failed: file not found in build context: x".
type SourceError struct {
	Op     string
	Reason string
	Path   string
}

func (e *SourceError) Error() string {
	return e.Op + " failed: " + e.Reason + ": " + e.Path
}

// Reasons of a SourceError.
const (
	ReasonNotFound = "file not found in build context"
	ReasonOutside  = "forbidden path outside the build context"
)

// Resolve turns the source arguments of a COPY or ADD into Sources, as
// Resolve does for op "COPY".
func (c *Context) Resolve(args []string) ([]Source, error) {
	return c.ResolveOp("COPY", args)
}

// ResolveOp turns the source arguments of instruction op (COPY or ADD:
// it only names op in errors) into Sources, with Docker's rules:
// arguments are relative to the root ("/x" is the root's x); a
// wildcard (* ? [..] of path.Match, per path component) yields its
// matches in name order and must match something; a path excluded by
// the ignore file does not exist; in a build context, a path that leaves
// the root through ".." or a symlink is refused (in a root filesystem,
// ".." and symlinks stay inside it).
func (c *Context) ResolveOp(op string, args []string) ([]Source, error) {
	return c.ResolveExclude(op, args, nil)
}

// ResolveExclude is ResolveOp for a COPY or ADD with --exclude patterns
// (dockerignore syntax, "!" exceptions): they are matched against paths
// below each directory source, and against the name of a file source,
// whose match is then left out. Checksum and Copy of the Sources leave
// out what they match.
func (c *Context) ResolveExclude(op string, args, exclude []string) ([]Source, error) {
	var pm *matcher
	if len(exclude) > 0 {
		var err error
		if pm, err = newMatcher(exclude); err != nil {
			return nil, fmt.Errorf("%s failed: invalid --exclude: %w", op, err)
		}
	}
	var out []Source
	for _, arg := range args {
		rel, err := c.cleanArg(op, arg)
		if err != nil {
			return nil, err
		}
		var rels []string
		if hasMeta(rel) {
			rels, err = c.glob(op, arg, rel)
			if err != nil {
				return nil, err
			}
		} else {
			rels = []string{rel}
		}
		if len(rels) == 0 {
			return nil, &SourceError{Op: op, Reason: ReasonNotFound, Path: arg}
		}
		for _, r := range rels {
			src, err := c.source(op, arg, r)
			if err != nil {
				return nil, err
			}
			if pm != nil && !src.IsDir {
				if st, err := pm.match(path.Base(r), matchState{}); err != nil {
					return nil, fmt.Errorf("%s failed: --exclude: %w", op, err)
				} else if st.excluded {
					continue
				}
			}
			src.exclude = pm
			out = append(out, src)
		}
	}
	return out, nil
}

// cleanArg makes a source argument a clean path below the root.
func (c *Context) cleanArg(op, arg string) (string, error) {
	if arg == "" || strings.IndexByte(arg, 0) >= 0 {
		return "", &SourceError{Op: op, Reason: "invalid source path", Path: fmt.Sprintf("%q", arg)}
	}
	p := path.Clean(arg)
	if path.IsAbs(p) {
		p = path.Clean(strings.TrimLeft(p, "/"))
		if p == "" {
			p = "."
		}
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		if !c.inRoot {
			return "", &SourceError{Op: op, Reason: ReasonOutside, Path: arg}
		}
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		if p == "" {
			p = "."
		}
	}
	return p, nil
}

// source checks that rel exists, is not ignored and stays inside.
func (c *Context) source(op, arg, rel string) (Source, error) {
	if hidden, err := c.hidden(rel); err != nil {
		return Source{}, err
	} else if hidden {
		return Source{}, &SourceError{Op: op, Reason: ReasonNotFound, Path: arg}
	}
	f, err := c.openPath(op, arg, rel)
	if err != nil {
		return Source{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Source{}, fmt.Errorf("%s failed: stat %s: %w", op, arg, err)
	}
	return Source{Arg: arg, Rel: rel, IsDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
}

// errFound ends a walk that looks for any entry.
var errFound = errors.New("found")

// hidden tells whether the ignore file leaves rel out of the context: it
// is ignored, and it is not a directory that an exception ("!" pattern)
// brings something of back (BuildKit's context then holds the directory
// with just that).
func (c *Context) hidden(rel string) (bool, error) {
	ig, err := c.Ignored(rel)
	if err != nil || !ig {
		return false, err
	}
	if !c.ignore.mayMatchBelow(rel) {
		return true, nil
	}
	src := Source{Arg: rel, Rel: rel}
	err = c.walk(src, func(n *node) error {
		if n.sub != "" {
			return errFound
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return false, nil
	case err == nil:
		return true, nil
	}
	var se *SourceError
	if errors.As(err, &se) && se.Reason == ReasonNotFound {
		return true, nil
	}
	return false, err
}

// openPath resolves rel below the root to an O_PATH handle, following
// symlinks (inside the root for a root filesystem; refusing any way out
// for a build context).
func (c *Context) openPath(op, arg, rel string) (*os.File, error) {
	resolve := uint64(unix.RESOLVE_NO_MAGICLINKS)
	if c.inRoot {
		resolve |= unix.RESOLVE_IN_ROOT
	} else {
		resolve |= unix.RESOLVE_BENEATH
	}
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(int(c.root.Fd()), rel, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), rel), nil
		case (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && i < 32:
			continue
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
			return nil, &SourceError{Op: op, Reason: ReasonNotFound, Path: arg}
		case errors.Is(err, unix.EXDEV):
			return nil, &SourceError{Op: op, Reason: ReasonOutside + " (through a symlink)", Path: arg}
		case errors.Is(err, unix.ELOOP):
			return nil, &SourceError{Op: op, Reason: "too many levels of symbolic links", Path: arg}
		default:
			return nil, fmt.Errorf("%s failed: %s: %w", op, arg, err)
		}
	}
}

// hasMeta tells whether p holds a wildcard of path.Match.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// glob expands the pattern rel component by component, in name order;
// ignored paths do not match.
func (c *Context) glob(op, arg, rel string) ([]string, error) {
	for _, comp := range splitRel(rel) {
		if _, err := path.Match(comp, ""); err != nil {
			return nil, &SourceError{Op: op, Reason: "invalid wildcard", Path: arg}
		}
	}
	cur := []string{"."}
	for _, comp := range splitRel(rel) {
		var next []string
		for _, dir := range cur {
			if !hasMeta(comp) {
				next = append(next, joinRel(dir, comp))
				continue
			}
			names, err := c.readDir(op, arg, dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if ok, _ := path.Match(comp, n); ok {
					next = append(next, joinRel(dir, n))
				}
			}
		}
		cur = next
	}
	var out []string
	for _, r := range cur {
		if _, err := c.lstatBeneath(r); err != nil {
			continue // a literal component after a wildcard that does not exist there
		}
		if hidden, err := c.hidden(r); err != nil {
			return nil, err
		} else if !hidden {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// readDir lists the directory rel ("" when it is not a directory).
func (c *Context) readDir(op, arg, rel string) ([]string, error) {
	f, err := c.openPath(op, arg, rel)
	if err != nil {
		var se *SourceError
		if errors.As(err, &se) && se.Reason == ReasonNotFound {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	fd, err := unix.Openat(int(f.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s failed: read directory %s: %w", op, rel, err)
	}
	defer unix.Close(fd)
	names, err := atfd.ReadNames(fd)
	if err != nil {
		return nil, fmt.Errorf("%s failed: read directory %s: %w", op, rel, err)
	}
	return names, nil
}

// lstatBeneath tells whether rel exists (its last component not
// followed).
func (c *Context) lstatBeneath(rel string) (*unix.Stat_t, error) {
	dir, base := path.Split(rel)
	f, err := c.openPath("COPY", rel, path.Clean("./"+dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(f.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return &st, nil
}

// splitRel splits a clean relative path into components ("." has none).
func splitRel(rel string) []string {
	if rel == "." || rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// joinRel joins a relative path and a name.
func joinRel(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}
