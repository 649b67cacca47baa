package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/buildctx"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
)

// Options are what berth build was asked.
type Options struct {
	// ContextDir is the build context; "" when the Dockerfile came on
	// stdin with no context.
	ContextDir string
	Dockerfile []byte
	// DockerfilePath is the Dockerfile's path, for its .dockerignore.
	DockerfilePath string
	Tags           []string
	BuildArgs      map[string]string
	Target         string
	NoCache        bool
	// NoCacheFilter names the stages whose steps are never taken from
	// the cache.
	NoCacheFilter []string
	Pull          bool
	// Network is the network of RUN steps: "" (berth's default), none,
	// host or a network name.
	Network string
	// AllowHostNetwork lets a step ask for the host's network (RUN
	// --network=host); without it such a step fails the build.
	AllowHostNetwork bool
	Labels           map[string]string
	// Secrets are the files of --secret, by id.
	Secrets map[string]string
	// OutputDir, when set, receives the target stage's files.
	OutputDir string
	// Progress receives the step-by-step output; nil for none.
	Progress io.Writer
	// TTY shows each step's output as one live line (a terminal).
	TTY bool
}

// Builder builds images on berth's stores.
type Builder struct {
	Images     *image.Store
	Containers *container.Store
	DataRoot   string
	// Pull fetches an image from its registry.
	Pull func(ctx context.Context, ref string) (*image.Image, error)
}

// StepError is a failed RUN step: berth build exits as docker build does.
type StepError struct {
	Err  error
	Code int
}

func (e *StepError) Error() string { return e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// stage is one FROM ... of the Dockerfile as it is built.
type stage struct {
	idx  int
	name string // the AS name, or "stage-N"
	def  *instructions.Stage
	// base is the FROM value after expansion; baseStage >= 0 when it
	// names an earlier stage.
	base      string
	baseStage int
	deps      []int

	cfg    dockerspec.DockerOCIImage
	layers []image.LayerDesc
	chains []digest.Digest
	key    digest.Digest
	args   map[string]string
	// argOrder are the ARGs with a value, in declaration order (RUN's
	// history names them).
	argOrder []string
	// lastTime is the time of the newest layer step: the history of
	// metadata steps and the image's creation take it, so a rebuild
	// from the cache makes the very same image.
	lastTime time.Time
	cmdSet   bool
	noCache  bool

	steps int // number of the stage's first step
	total int // steps of the stage, FROM included
	done  chan struct{}
	err   error
	lex   *shell.Lex
}

// build is one run of Build.
type build struct {
	b        *Builder
	o        Options
	df       *dockerfile
	ctx      context.Context
	prog     *progress
	stages   []*stage
	globals  map[string]string // meta ARGs, for FROM
	consumed sync.Map          // build args a stage declared
	ctxMu    sync.Mutex
	// context is the build context as the copy engine sees it, opened
	// on first use.
	context *buildctx.Context
}

// Build builds the image o describes and tags it.
func (b *Builder) Build(ctx context.Context, o Options) (*image.Image, error) {
	df, err := parseDockerfile(o.Dockerfile)
	if err != nil {
		return nil, err
	}
	bd := &build{b: b, o: o, df: df, ctx: ctx, prog: &progress{w: o.Progress, tty: o.TTY}}
	if err := bd.plan(); err != nil {
		return nil, err
	}
	target, err := df.targetIndex(o.Target)
	if err != nil {
		return nil, err
	}
	need := bd.needed(target)
	// Number the steps of the stages that run, in file order.
	n := 1
	for _, i := range need {
		st := bd.stages[i]
		st.steps = n
		st.total = 1 + len(st.def.Commands)
		n += st.total
	}
	unhold, err := b.Images.HoldContent()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer unhold()
	b.sweepContainers()
	b.sweepTmp()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bd.ctx = ctx
	var wg sync.WaitGroup
	for _, i := range need {
		st := bd.stages[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(st.done)
			st.err = bd.runStage(st)
			if st.err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	bd.reportContext()
	bd.closeContext()
	// The first error in file order that is not another's cancel.
	var first error
	for _, i := range need {
		if err := bd.stages[i].err; err != nil {
			if first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled) {
				first = err
			}
		}
	}
	if first != nil {
		return nil, first
	}
	bd.warnUnused()
	st := bd.stages[target]
	if o.OutputDir != "" {
		if err := bd.export(st, o.OutputDir); err != nil {
			return nil, err
		}
	}
	return bd.commit(st)
}

// plan expands every FROM with the meta ARGs and finds which stages each
// stage needs.
func (bd *build) plan() error {
	lex := shell.NewLex(bd.df.escape)
	bd.globals = platformArgs()
	for _, a := range bd.df.metaArgs {
		for _, kv := range a.Args {
			v := ""
			if kv.Value != nil {
				var err error
				if v, _, err = lex.ProcessWord(*kv.Value, vars(bd.globals)); err != nil {
					return fmt.Errorf("dockerfile line %d: %w", lineOf(a.Location()), err)
				}
			}
			if bv, ok := bd.o.BuildArgs[kv.Key]; ok {
				v = bv
				bd.consumed.Store(kv.Key, true)
			} else if kv.Value == nil {
				// Declared without a value: unset, as in Docker.
				delete(bd.globals, kv.Key)
				continue
			}
			bd.globals[kv.Key] = v
		}
	}
	for i := range bd.df.stages {
		def := &bd.df.stages[i]
		st := &stage{idx: i, def: def, name: def.Name, baseStage: -1, done: make(chan struct{}), lex: shell.NewLex(bd.df.escape)}
		if st.name == "" {
			st.name = fmt.Sprintf("stage-%d", i)
		}
		res, err := lex.ProcessWordWithMatches(def.BaseName, vars(bd.globals))
		if err != nil {
			return fmt.Errorf("dockerfile line %d: %w", lineOf(def.Location), err)
		}
		if len(res.Unmatched) > 0 {
			var names []string
			for k := range res.Unmatched {
				names = append(names, k)
			}
			sort.Strings(names)
			return fmt.Errorf("dockerfile line %d: FROM %s: ARG %s is not set", lineOf(def.Location), def.BaseName, strings.Join(names, ", "))
		}
		st.base = res.Result
		if st.base == "" {
			return fmt.Errorf("dockerfile line %d: FROM %s: the base name is empty", lineOf(def.Location), def.BaseName)
		}
		plat, _, err := lex.ProcessWord(def.Platform, vars(bd.globals))
		if err != nil {
			return fmt.Errorf("dockerfile line %d: %w", lineOf(def.Location), err)
		}
		if err := checkPlatform(plat); err != nil {
			return fmt.Errorf("dockerfile line %d: %w", lineOf(def.Location), err)
		}
		if j := bd.df.stageIndex(st.base, i); j >= 0 {
			st.baseStage = j
			st.deps = append(st.deps, j)
		}
		for _, c := range def.Commands {
			for _, ref := range fromRefs(c) {
				ref, _, err := lex.ProcessWord(ref, vars(bd.globals))
				if err != nil {
					return fmt.Errorf("dockerfile line %d: %w", lineOf(c.Location()), err)
				}
				if j := bd.df.stageIndex(ref, i); j >= 0 {
					st.deps = append(st.deps, j)
				}
			}
		}
		for _, f := range bd.o.NoCacheFilter {
			if strings.EqualFold(f, st.name) {
				st.noCache = true
			}
		}
		st.noCache = st.noCache || bd.o.NoCache
		bd.stages = append(bd.stages, st)
	}
	return nil
}

// fromRefs are the stages or images a command reads from.
func fromRefs(c instructions.Command) []string {
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		return runMountFroms(c)
	}
	return nil
}

// needed are the stages the target needs, itself included, in file
// order: the others are skipped.
func (bd *build) needed(target int) []int {
	seen := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, d := range bd.stages[i].deps {
			visit(d)
		}
	}
	visit(target)
	var out []int
	for i := range bd.stages {
		if seen[i] {
			out = append(out, i)
		}
	}
	return out
}

// warnUnused says which --build-arg no ARG took, as Docker does.
func (bd *build) warnUnused() {
	var unused []string
	for k := range bd.o.BuildArgs {
		if _, ok := bd.consumed.Load(k); !ok {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		bd.prog.plain("[Warning] One or more build-args %v were not consumed", unused)
	}
}

// commit stores the target stage as the image and tags it.
func (bd *build) commit(st *stage) (*image.Image, error) {
	cfg := st.cfg
	if len(bd.o.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range cfg.Config.Labels {
			labels[k] = v
		}
		for k, v := range bd.o.Labels {
			labels[k] = v
		}
		cfg.Config.Labels = labels
	}
	created := st.lastTime
	cfg.Created = &created
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	for _, l := range st.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	img, err := bd.b.Images.CreateFromConfig(raw, st.layers, bd.o.Tags...)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// wait waits for stage i and returns it, or its error.
func (bd *build) wait(i int) (*stage, error) {
	st := bd.stages[i]
	select {
	case <-st.done:
	case <-bd.ctx.Done():
		return nil, bd.ctx.Err()
	}
	if st.err != nil {
		return nil, fmt.Errorf("stage %s failed", st.name)
	}
	return st, nil
}

// layerDirs are the unpacked layers of a stage, lowest first.
func (bd *build) layerDirs(st *stage) []string { return bd.b.Images.ChainDirs(st.chains) }

// getImage resolves an image, pulling it when missing or with --pull.
func (bd *build) getImage(ref string) (*image.Image, error) {
	if !bd.o.Pull {
		img, err := bd.b.Images.Resolve(ref)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	if bd.b.Pull == nil {
		return nil, fmt.Errorf("image %s: %w", ref, image.ErrNotFound)
	}
	return bd.b.Pull(bd.ctx, ref)
}

func keyOf(parts ...string) digest.Digest {
	return digest.FromString(strings.Join(parts, "\x00"))
}

var errNoContext = errors.New("this build has no context (the Dockerfile came on stdin)")
