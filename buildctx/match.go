package buildctx

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
)

// matcher is a set of dockerignore-style patterns (the ignore file, or a
// COPY --exclude). patternmatcher compiles patterns lazily and is not
// safe for concurrent use, and parallel stages copy from one context at
// once: calls are serialised.
type matcher struct {
	mu sync.Mutex
	pm *patternmatcher.PatternMatcher
	// exceptions are the "!" patterns, split in components: a directory
	// that is left out is entered only if one of them may match below it.
	exceptions [][]string
}

func newMatcher(patterns []string) (*matcher, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, err
	}
	m := &matcher{pm: pm}
	for _, p := range pm.Patterns() {
		if p.Exclusion() {
			m.exceptions = append(m.exceptions, strings.Split(filepath.ToSlash(p.String()), "/"))
		}
	}
	return m, nil
}

// matchState carries the match of a directory down to its entries.
type matchState struct {
	info     patternmatcher.MatchInfo
	excluded bool
}

// match is the state of rel (slash-separated, relative to where the
// patterns apply), given its parent's; a nil matcher matches nothing.
func (m *matcher) match(rel string, parent matchState) (matchState, error) {
	if m == nil {
		return matchState{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ex, info, err := m.pm.MatchesUsingParentResults(filepath.FromSlash(rel), parent.info)
	if err != nil {
		return matchState{}, fmt.Errorf("match %s: %w", rel, err)
	}
	return matchState{info: info, excluded: ex}, nil
}

// matchPath matches rel and each of its parents, as a walk from the top
// would, and returns rel's state.
func (m *matcher) matchPath(rel string) (matchState, error) {
	var st matchState
	if m == nil || rel == "." || rel == "" {
		return st, nil
	}
	cur := ""
	for _, comp := range splitRel(rel) {
		cur = joinRel(cur, comp)
		var err error
		if st, err = m.match(cur, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// mayMatchBelow tells whether an exception may bring back something
// below the directory dir, which the patterns leave out: an exception
// whose leading components match dir's (or that holds "**" before it
// stops matching, or that names dir or a parent of it).
func (m *matcher) mayMatchBelow(dir string) bool {
	if m == nil {
		return false
	}
	comps := splitRel(dir)
	for _, exc := range m.exceptions {
		if excMayMatch(exc, comps) {
			return true
		}
	}
	return false
}

func excMayMatch(exc, comps []string) bool {
	for i, c := range comps {
		if i >= len(exc) {
			return true // the exception names a parent of dir: all of it comes back
		}
		if strings.Contains(exc[i], "**") {
			return true
		}
		if ok, _ := path.Match(exc[i], c); !ok {
			return false
		}
	}
	return true
}
