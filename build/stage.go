package build

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/buildctx"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/runconfig"
)

const historyComment = "buildkit.dockerfile.v0"

// label is how a step names its stage in the output: "[2/3]" in a
// one-stage build, "[name 2/3]" otherwise.
func (bd *build) label(st *stage, pos int) string {
	if len(bd.stages) == 1 && st.def.Name == "" {
		return fmt.Sprintf("[%d/%d]", pos, st.total)
	}
	return fmt.Sprintf("[%s %d/%d]", st.name, pos, st.total)
}

// runStage builds one stage: its base, the base image's ONBUILD triggers,
// then each instruction.
func (bd *build) runStage(st *stage) error {
	start := time.Now()
	bd.prog.line(st.steps, "%s FROM %s", bd.label(st, 1), st.base)
	if err := bd.from(st); err != nil {
		bd.prog.line(st.steps, "ERROR: %v", err)
		return fmt.Errorf("dockerfile line %d: FROM %s: %w", lineOf(st.def.Location), st.base, err)
	}
	bd.prog.done(st.steps, start)
	// A base image's triggers run first and are not inherited.
	triggers := st.cfg.Config.OnBuild
	st.cfg.Config.OnBuild = nil
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil || len(res.AST.Children) != 1 {
			return fmt.Errorf("ONBUILD %s of %s: cannot parse the trigger", t, st.base)
		}
		cmd, err := instructions.ParseCommand(res.AST.Children[0])
		if err != nil {
			return fmt.Errorf("ONBUILD %s of %s: %w", t, st.base, oneLineErr(err))
		}
		switch strings.ToUpper(cmd.Name()) {
		case "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("ONBUILD %s of %s: %s is not allowed as an ONBUILD trigger", t, st.base, cmd.Name())
		}
		bd.prog.line(st.steps, "ONBUILD %s", t)
		if err := bd.dispatch(st, cmd, st.steps, "ONBUILD "+t); err != nil {
			return err
		}
	}
	for i, c := range st.def.Commands {
		if err := bd.ctx.Err(); err != nil {
			return err
		}
		step := st.steps + 1 + i
		text := cmdText(c)
		bd.prog.line(step, "%s %s", bd.label(st, i+2), text)
		if err := bd.dispatch(st, c, step, text); err != nil {
			return err
		}
	}
	return nil
}

func cmdText(c instructions.Command) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return c.Name()
}

// from sets the stage up from its base: an earlier stage, scratch or an
// image.
func (bd *build) from(st *stage) error {
	switch {
	case st.baseStage >= 0:
		parent, err := bd.wait(st.baseStage)
		if err != nil {
			return err
		}
		if err := deepCopy(&st.cfg, &parent.cfg); err != nil {
			return err
		}
		st.layers = append([]image.LayerDesc{}, parent.layers...)
		st.chains = append([]digest.Digest{}, parent.chains...)
		st.key, st.lastTime = parent.key, parent.lastTime
	case strings.EqualFold(st.base, "scratch"):
		st.cfg.Platform = ocispec.Platform{OS: "linux"}
		p := platformArgs()
		st.cfg.OS, st.cfg.Architecture = p["TARGETOS"], p["TARGETARCH"]
		st.key = keyOf("scratch")
	default:
		img, err := bd.getImage(st.base)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(img.RawConfig, &st.cfg); err != nil {
			return fmt.Errorf("config of %s: %w", st.base, err)
		}
		for i, l := range img.Manifest.Layers {
			st.layers = append(st.layers, image.LayerDesc{Blob: l, DiffID: img.Config.RootFS.DiffIDs[i]})
		}
		st.chains = append([]digest.Digest{}, img.ChainIDs...)
		st.key = keyOf("image", img.ID.String())
		st.lastTime = img.Created()
	}
	st.args = map[string]string{}
	return nil
}

func deepCopy(dst, src any) error {
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// history records a step in the image's history.
func (st *stage) history(createdBy string, empty bool, at time.Time) {
	st.cfg.History = append(st.cfg.History, ocispec.History{Created: &at, CreatedBy: createdBy,
		Comment: historyComment, EmptyLayer: empty})
}

// shellArgs is the argv of a shell-form command: the stage's SHELL (or
// /bin/sh -c) and the command line.
func (st *stage) shellArgs(line []string, prepend bool) []string {
	if !prepend {
		return append([]string{}, line...)
	}
	sh := st.cfg.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, sh...), strings.Join(line, " "))
}

// dispatch runs one instruction on the stage.
func (bd *build) dispatch(st *stage, c instructions.Command, step int, text string) error {
	start := time.Now()
	err := bd.dispatch1(st, c, step, text)
	if err != nil {
		if _, ok := err.(*StepError); ok {
			return err // runStep said it
		}
		err = fmt.Errorf("dockerfile line %d: %s: %w", lineOf(c.Location()), strings.ToUpper(c.Name()), err)
		bd.prog.line(step, "ERROR: %v", err)
		return err
	}
	if step != st.steps {
		if _, layer := c.(*instructions.RunCommand); !layer && !isCopy(c) {
			bd.prog.done(step, start)
		}
	}
	return nil
}

func isCopy(c instructions.Command) bool {
	switch c.(type) {
	case *instructions.CopyCommand, *instructions.AddCommand:
		return true
	}
	return false
}

func (bd *build) dispatch1(st *stage, c instructions.Command, step int, text string) error {
	v := envVars(st.args, st.cfg.Config.Env)
	exp := expander(st.lex, v)
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(exp); err != nil {
			return err
		}
	}
	cfg := &st.cfg.Config
	meta := true
	// createdBy is the history entry as BuildKit words it.
	createdBy := text
	switch c := c.(type) {
	case *instructions.EnvCommand:
		createdBy = "ENV"
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			createdBy += " " + kv.Key + "=" + kv.Value
		}
	case *instructions.ArgCommand:
		createdBy = "ARG"
		for _, kv := range c.Args {
			v, set := "", true
			if bv, ok := bd.o.BuildArgs[kv.Key]; ok {
				v = bv
				bd.consumed.Store(kv.Key, true)
			} else if kv.Value != nil {
				v = *kv.Value
			} else if gv, ok := bd.globals[kv.Key]; ok {
				v = gv
			} else {
				set = false
			}
			createdBy += " " + kv.Key
			if set {
				st.args[kv.Key] = v
				st.argOrder = append(st.argOrder, kv.Key)
				createdBy += "=" + v
			}
		}
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			p = path.Join(base, p)
		}
		cfg.WorkingDir = path.Clean(p)
		createdBy = "WORKDIR " + cfg.WorkingDir
		if cfg.WorkingDir != "/" {
			layer, err := bd.workdirStep(st, step, createdBy)
			if err != nil {
				return err
			}
			meta = !layer
		}
	case *instructions.UserCommand:
		cfg.User = c.User
		createdBy = "USER " + c.User
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		createdBy = "LABEL"
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
			createdBy += " " + kv.Key + "=" + kv.Value
		}
	case *instructions.ExposeCommand:
		var names []string
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			p, err := exp(p)
			if err != nil {
				return err
			}
			ports, err := runconfig.ParseExpose(p)
			if err != nil {
				return err
			}
			for _, port := range ports {
				cfg.ExposedPorts[port.String()] = struct{}{}
				names = append(names, port.String())
			}
		}
		createdBy = "EXPOSE " + strings.Join(names, " ")
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, vol := range c.Volumes {
			if strings.TrimSpace(vol) == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[vol] = struct{}{}
		}
		createdBy = fmt.Sprintf("VOLUME %v", c.Volumes)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = st.shellArgs(c.CmdLine, c.PrependShell)
		if !st.cmdSet {
			cfg.Cmd = nil
		}
		createdBy = fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint)
	case *instructions.CmdCommand:
		cfg.Cmd = st.shellArgs(c.CmdLine, c.PrependShell)
		st.cmdSet = true
		createdBy = fmt.Sprintf("CMD %q", cfg.Cmd)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		createdBy = "STOPSIGNAL " + c.Signal
	case *instructions.HealthCheckCommand:
		h := *c.Health
		cfg.Healthcheck = &h
		createdBy = fmt.Sprintf("HEALTHCHECK %+v", h)
	case *instructions.ShellCommand:
		cfg.Shell = append([]string{}, c.Shell...)
		createdBy = fmt.Sprintf("SHELL %v", c.Shell)
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		// BuildKit writes no history for ONBUILD.
		meta = false
	case *instructions.MaintainerCommand:
		st.cfg.Author = c.Maintainer
		createdBy = "MAINTAINER " + c.Maintainer
	case *instructions.RunCommand:
		meta = false
		if err := bd.runStep(st, c, step, text); err != nil {
			return err
		}
	case *instructions.CopyCommand, *instructions.AddCommand:
		meta = false
		if err := bd.copyStep(st, c, step, text); err != nil {
			return err
		}
	default:
		return fmt.Errorf("instruction %s is not supported", strings.ToUpper(c.Name()))
	}
	if meta {
		st.history(createdBy, true, st.lastTime)
	}
	return nil
}

// addLayerStep puts a made or cached layer on the stage.
func (st *stage) addLayerStep(key digest.Digest, rec *cacheRecord) {
	st.layers = append(st.layers, rec.Layer)
	st.chains = append(st.chains, rec.Chain)
	st.key = key
	st.lastTime = rec.Created
	st.history(rec.CreatedBy, false, rec.Created)
}

// workdirStep makes the WORKDIR directory when the stage lacks it, as
// BuildKit does: a layer with the directories it made, owned by the
// stage's USER; none when it exists. It tells whether it added a layer.
func (bd *build) workdirStep(st *stage, step int, createdBy string) (bool, error) {
	wd, user := st.cfg.Config.WorkingDir, st.cfg.Config.User
	key := keyOf(st.key.String(), "WORKDIR", wd, user)
	if !st.noCache {
		if rec, ok := bd.b.cacheGet(key); ok {
			if rec.Empty {
				return false, nil
			}
			bd.prog.line(step, "CACHED")
			st.addLayerStep(key, rec)
			return true, nil
		}
	}
	dir, upper, release, err := bd.b.overlayStep(bd.layerDirs(st), func(merged string) error {
		fd, err := unix.Open(merged, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		root := os.NewFile(uintptr(fd), merged)
		defer root.Close()
		var owner *buildctx.Owner
		if user != "" {
			o, err := buildctx.ResolveChown(root, user)
			if err != nil {
				return fmt.Errorf("USER %s: %w", user, err)
			}
			owner = &o
		}
		_, err = buildctx.MkdirAll(root, wd, owner)
		return err
	})
	if err != nil {
		return false, err
	}
	defer func() {
		os.RemoveAll(dir)
		release()
	}()
	ents, err := os.ReadDir(upper)
	if err != nil {
		return false, fmt.Errorf("layer of WORKDIR: %w", err)
	}
	if len(ents) == 0 {
		return false, bd.b.cachePut(key, &cacheRecord{Empty: true, CreatedBy: createdBy})
	}
	var parent digest.Digest
	if len(st.chains) > 0 {
		parent = st.chains[len(st.chains)-1]
	}
	layer, chain, err := bd.b.addUpperLayer(upper, parent, nil)
	if err != nil {
		return false, fmt.Errorf("layer of WORKDIR: %w", err)
	}
	rec := &cacheRecord{Layer: layer, Chain: chain, Created: time.Now().UTC(), CreatedBy: createdBy}
	if err := bd.b.cachePut(key, rec); err != nil {
		return false, err
	}
	st.addLayerStep(key, rec)
	return true, nil
}
