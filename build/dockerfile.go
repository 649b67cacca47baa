// Package build builds images from Dockerfiles with berth's own engine:
// BuildKit's parser reads the file, RUN steps are containers of the
// container store, each filesystem step's layer is the overlay upper dir
// of that step, and a cache keyed by parent, instruction and copied
// content makes unchanged steps free.
package build

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
}

// parseDockerfile reads a Dockerfile with BuildKit's parser; its errors
// name the line.
func parseDockerfile(src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("dockerfile parse error: %w", oneLineErr(err))
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, oneLineErr(err)
	}
	if len(stages) == 0 {
		return nil, errors.New("the Dockerfile has no FROM instruction")
	}
	return &dockerfile{stages: stages, metaArgs: meta, escape: res.EscapeToken}, nil
}

// oneLineErr keeps the first line of a parser error (some carry usage
// text below it).
func oneLineErr(err error) error {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return errors.New(msg[:i])
	}
	return err
}

// lineOf is the first line of a command, for errors.
func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// stageIndex finds a stage by name (case-insensitive, as Docker) or by
// number; it returns -1 when none is.
func (d *dockerfile) stageIndex(ref string, before int) int {
	for i := 0; i < before && i < len(d.stages); i++ {
		if strings.EqualFold(d.stages[i].Name, ref) {
			return i
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n
	}
	return -1
}

// targetIndex is the stage --target names, or the last.
func (d *dockerfile) targetIndex(target string) (int, error) {
	if target == "" {
		return len(d.stages) - 1, nil
	}
	for i, s := range d.stages {
		if strings.EqualFold(s.Name, target) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("target stage %q could not be found", target)
}
