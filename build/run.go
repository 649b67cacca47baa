package build

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/buildctx"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
)

// tailLines is how many of a failed RUN's last output lines its error
// shows.
const tailLines = 10

// runMountFroms are the stages or images RUN --mount from= reads.
func runMountFroms(c *instructions.RunCommand) []string {
	var out []string
	for _, m := range instructions.GetMounts(c) {
		if m.From != "" {
			out = append(out, m.From)
		}
	}
	return out
}

// runArgs is the argv of a RUN, with heredocs as BuildKit runs them: a
// single heredoc is the shell's script, or a file run by itself when it
// starts with #!; others are handed to the shell whole. script is that
// file's content.
func (st *stage) runArgs(c *instructions.RunCommand) (args []string, scriptName, script string, err error) {
	line := c.CmdLine
	if len(c.Files) > 0 {
		if len(line) != 1 || !c.PrependShell {
			return nil, "", "", fmt.Errorf("invalid heredoc RUN %v", line)
		}
		if hd := parser.MustParseHeredoc(line[0]); hd != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				return []string{path.Join("/dev/pipes", c.Files[0].Name)}, c.Files[0].Name, data, nil
			}
			line = []string{data}
		} else {
			var b strings.Builder
			b.WriteString(line[0])
			for _, f := range c.Files {
				b.WriteString("\n" + f.Data + f.Name)
			}
			line = []string{b.String()}
		}
	}
	return st.shellArgs(line, c.PrependShell), "", "", nil
}

// runEnv is a RUN's environment: the stage's ENV, and its ARGs that no
// ENV overrides (they are not kept in the image).
func (st *stage) runEnv() []string {
	env := append([]string{}, st.cfg.Config.Env...)
	have := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		have[k] = true
	}
	var keys []string
	for k := range st.args {
		if !have[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+st.args[k])
	}
	return env
}

// runHistoryArgs is how BuildKit's RUN history names the build args in
// effect: "|N K=V ... " (empty with none).
func (st *stage) runHistoryArgs() string {
	seen := map[string]bool{}
	var kvs []string
	for _, k := range st.argOrder {
		if seen[k] {
			continue
		}
		seen[k] = true
		kvs = append(kvs, k+"="+st.args[k])
	}
	if len(kvs) == 0 {
		return ""
	}
	return fmt.Sprintf("|%d %s ", len(kvs), strings.Join(kvs, " "))
}

// runMount is a RUN --mount as berth mounts it.
type runMount struct {
	spec   string // a --mount value of berth run; "" for none
	target string
	// env is a secret's "NAME=value" for the RUN's environment only.
	env     string
	cleanup func()
	// key is the mount in the step's cache key: no host paths (they
	// change between builds), the content of a bind mount by name.
	key string
}

// mounts turns RUN --mount into berth run --mount values.
func (bd *build) mounts(st *stage, c *instructions.RunCommand) ([]runMount, error) {
	var out []runMount
	fail := func(err error) ([]runMount, error) {
		for _, m := range out {
			if m.cleanup != nil {
				m.cleanup()
			}
		}
		return nil, err
	}
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			wd := st.cfg.Config.WorkingDir
			if wd == "" {
				wd = "/"
			}
			target = path.Join(wd, target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			if target == "" {
				return fail(errors.New("--mount=type=cache needs a target"))
			}
			id := m.CacheID
			if id == "" {
				id = defaultCacheID(target)
			}
			uid, gid, mode := 0, 0, os.FileMode(0o755)
			if m.UID != nil {
				uid = int(*m.UID)
			}
			if m.GID != nil {
				gid = int(*m.GID)
			}
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode)
			}
			dir, err := cacheMountDir(bd.b.DataRoot, id, uid, gid, mode)
			if err != nil {
				return fail(err)
			}
			dir, cleanup, err := bd.b.shareCacheMount(dir, m.CacheSharing, uid, gid, mode)
			if err != nil {
				return fail(fmt.Errorf("cache mount %s: %w", id, err))
			}
			spec := "type=bind,src=" + dir + ",dst=" + target
			if m.ReadOnly {
				spec += ",readonly"
			}
			out = append(out, runMount{spec: spec, target: target, cleanup: cleanup,
				key: fmt.Sprintf("cache %s %s %v", id, target, m.ReadOnly)})
		case instructions.MountTypeTmpfs:
			if target == "" {
				return fail(errors.New("--mount=type=tmpfs needs a target"))
			}
			spec := "type=tmpfs,dst=" + target
			if m.SizeLimit > 0 {
				spec += ",tmpfs-size=" + strconv.FormatInt(m.SizeLimit, 10)
			}
			out = append(out, runMount{spec: spec, target: target, key: spec})
		case instructions.MountTypeSecret:
			// The id, as BuildKit takes it: source, id, the target's
			// name.
			id := m.Source
			if id == "" {
				id = m.CacheID
			}
			if id == "" && target != "" {
				id = path.Base(target)
			}
			if id == "" {
				return fail(errors.New("--mount=type=secret needs an id or a target"))
			}
			src, ok := bd.o.Secrets[id]
			if !ok {
				if m.Required {
					return fail(fmt.Errorf("secret %s: not given (berth build --secret id=%s,src=FILE)", id, id))
				}
				continue
			}
			if m.Env != nil {
				// env=NAME: the value in the RUN's environment only
				// (never in the image, its history or the cache key),
				// and a file only when a target is named too.
				name := *m.Env
				if name == "" {
					name = id
				}
				val, err := os.ReadFile(src)
				if err != nil {
					return fail(fmt.Errorf("secret %s: %w", id, err))
				}
				out = append(out, runMount{env: name + "=" + string(val), key: "secret-env " + id + " " + name})
				if target == "" {
					continue
				}
			}
			if target == "" {
				target = "/run/secrets/" + path.Base(id)
			}
			out = append(out, runMount{spec: "type=bind,src=" + src + ",dst=" + target + ",readonly", target: target, key: "secret " + id + " " + target})
		case instructions.MountTypeBind:
			if target == "" {
				return fail(errors.New("--mount=type=bind needs a target"))
			}
			src, what, cleanup, err := bd.bindSource(st, m.From, m.Source, !m.ReadOnly)
			if err != nil {
				return fail(err)
			}
			spec := "type=bind,src=" + src + ",dst=" + target
			if m.ReadOnly {
				spec += ",readonly"
			}
			out = append(out, runMount{spec: spec, target: target, cleanup: cleanup,
				key: fmt.Sprintf("bind %s %s %v %s", target, m.Source, m.ReadOnly, what)})
		default:
			return fail(fmt.Errorf("--mount type %s is not supported", m.Type))
		}
	}
	return out, nil
}

// bindSource is what a bind mount binds: source in the context, or in a
// stage or image mounted for it. A context source is a copy without
// the files .dockerignore excludes (BuildKit binds the context as it
// was sent, filtered) when it has any, or when rw; a stage or image is
// an overlay with a scratch upper dir when rw. Writes go to those
// copies and are thrown away with them: never to the context, a stage
// or the image. what names the content bound (the checksum of source in
// the context, the stage's cache key, the image ID), for the step's
// cache key.
func (bd *build) bindSource(st *stage, from, source string, rw bool) (src, what string, cleanup func(), err error) {
	if from == "" {
		return bd.bindContext(source, rw)
	}
	var lowers []string
	if j := bd.df.stageIndex(from, st.idx); j >= 0 {
		s, err := bd.wait(j)
		if err != nil {
			return "", "", nil, err
		}
		lowers, what = bd.layerDirs(s), "stage "+s.key.String()
	} else {
		img, err := bd.getImage(from)
		if err != nil {
			return "", "", nil, err
		}
		lowers, what = img.LayerDirs(), "image "+img.ID.String()
	}
	root, cleanup, err := bd.b.mountLayers(lowers, rw)
	if err != nil {
		return "", "", nil, err
	}
	src, err = securejoin.SecureJoin(root, source)
	if err == nil {
		_, err = os.Stat(src)
	}
	if err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("--mount source %s: %w", source, err)
	}
	return src, what, cleanup, nil
}

// bindContext is bindSource for source in the build context.
func (bd *build) bindContext(source string, rw bool) (src, what string, cleanup func(), err error) {
	if source == "" {
		source = "." // BuildKit's default: the whole context
	}
	c, err := bd.buildContext()
	if err != nil {
		return "", "", nil, err
	}
	srcs, err := c.ResolveOp("RUN --mount", []string{source})
	if err != nil {
		return "", "", nil, err
	}
	sum, err := c.Checksum(srcs)
	if err != nil {
		return "", "", nil, err
	}
	what = "context " + sum.String()
	if len(srcs) != 1 {
		return "", "", nil, fmt.Errorf("--mount source %s: names %d files, want one", source, len(srcs))
	}
	if !rw && !c.HasIgnore() {
		// Nothing to hide and nothing to write: the context in place.
		src, err := securejoin.SecureJoin(c.Dir(), srcs[0].Rel)
		if err != nil {
			return "", "", nil, fmt.Errorf("--mount source %s: %w", source, err)
		}
		return src, what, nil, nil
	}
	dir, release, err := bd.b.tempDir("bind-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() {
		if err := os.RemoveAll(dir); err != nil {
			logrus.Warnf("build: remove %s: %v", dir, err)
		}
		release()
	}
	copyRoot := filepath.Join(dir, "src")
	if err := os.Mkdir(copyRoot, 0o755); err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("build: %w", err)
	}
	fd, err := unix.Open(copyRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("build: %w", err)
	}
	root := os.NewFile(uintptr(fd), copyRoot)
	// A directory's content lands in the root, a file as /name.
	dest, src := "/", copyRoot
	if !srcs[0].IsDir {
		dest = "/" + path.Base(srcs[0].Rel)
		src = filepath.Join(copyRoot, path.Base(srcs[0].Rel))
	}
	err = c.Copy(root, dest, srcs, buildctx.CopyOptions{})
	root.Close()
	if err != nil {
		cleanup()
		return "", "", nil, fmt.Errorf("--mount source %s: %w", source, err)
	}
	return src, what, cleanup, nil
}

// noVolumes refuses volumes: a RUN step gets none.
type noVolumes struct{}

func (noVolumes) Ensure(string) (string, string, bool, error) {
	return "", "", false, errors.New("a RUN step has no volumes")
}

// runStep runs a RUN as a container of berth's engine on the stage's
// layers and adds its upper dir as a layer.
func (bd *build) runStep(st *stage, c *instructions.RunCommand, step int, text string) error {
	args, scriptName, script, err := st.runArgs(c)
	if err != nil {
		return err
	}
	mounts, err := bd.mounts(st, c)
	if err != nil {
		return err
	}
	defer func() {
		for _, m := range mounts {
			if m.cleanup != nil {
				m.cleanup()
			}
		}
	}()
	network := bd.o.Network
	if n := instructions.GetNetwork(c); n == instructions.NetworkNone || n == instructions.NetworkHost {
		if n == instructions.NetworkHost && !bd.o.AllowHostNetwork {
			return errors.New("RUN --network=host is not allowed: build with --allow network.host to let the Dockerfile use the host's network")
		}
		network = n
	}
	env := st.runEnv()
	var specs, keys, secretEnv []string
	for _, m := range mounts {
		if m.spec != "" {
			specs = append(specs, m.spec)
		}
		if m.env != "" {
			secretEnv = append(secretEnv, m.env)
		}
		keys = append(keys, m.key)
	}
	desc, err := json.Marshal(struct {
		Args, Env, Mounts  []string
		User, Dir, Network string
		ScriptName, Script string
	}{args, env, keys, st.cfg.Config.User, st.cfg.Config.WorkingDir, network, scriptName, script})
	if err != nil {
		return err
	}
	key := keyOf(st.key.String(), "RUN", string(desc))
	createdBy := "RUN " + st.runHistoryArgs() + strings.Join(args, " ") + " # buildkit"
	if !st.noCache {
		if rec, ok := bd.b.cacheGet(key); ok {
			bd.prog.line(step, "CACHED")
			st.addLayerStep(key, rec)
			return nil
		}
	}
	if len(st.chains) == 0 {
		// An empty root (FROM scratch and nothing yet): no program to
		// run, as Docker says it.
		return bd.stepFailed(c, step, text, args, fmt.Errorf("exec %q: no such file or directory", args[0]), 127, nil)
	}
	start := time.Now()
	if scriptName != "" {
		f, err := os.CreateTemp(filepath.Join(bd.b.DataRoot, "build"), "script-")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		if _, err := f.WriteString(script); err != nil {
			f.Close()
			return err
		}
		f.Close()
		if err := os.Chmod(f.Name(), 0o755); err != nil {
			return err
		}
		specs = append(specs, "type=bind,src="+f.Name()+",dst=/dev/pipes/"+scriptName+",readonly")
	}
	// Secrets join the environment after the cache key is made: a
	// changed secret does not invalidate the step, as in BuildKit.
	code, tail, id, err := bd.runContainer(st, args, append(env, secretEnv...), specs, network, step, start)
	if id != "" {
		defer func() {
			if err := bd.b.Containers.Remove(id, container.RemoveOpts{Force: true}); err != nil {
				logrus.Warnf("remove build container %.12s: %v", id, err)
			}
		}()
	}
	var se *container.StartError
	if errors.As(err, &se) && se.Code != 125 {
		// The program cannot be run (no /bin/sh on scratch): the
		// step failed, as in Docker, not the build's input.
		return bd.stepFailed(c, step, text, args, se.Err, se.Code, tail)
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return bd.stepFailed(c, step, text, args, fmt.Errorf("exit code: %d", code), code, tail)
	}
	var stubs []string
	for _, m := range mounts {
		if m.target == "" {
			continue
		}
		stubs = append(stubs, strings.TrimPrefix(path.Clean(m.target), "/"))
	}
	lowers := bd.layerDirs(st)
	upper := bd.b.Containers.UpperDir(id)
	skip, err := skipSet(upper, lowers, stubs)
	if err != nil {
		return fmt.Errorf("layer of RUN: %w", err)
	}
	layer, chain, err := bd.b.addUpperLayer(upper, st.chains[len(st.chains)-1], skip)
	if err != nil {
		return fmt.Errorf("layer of RUN: %w", err)
	}
	rec := &cacheRecord{Layer: layer, Chain: chain, Created: time.Now().UTC(), CreatedBy: createdBy}
	if err := bd.b.cachePut(key, rec); err != nil {
		return err
	}
	st.addLayerStep(key, rec)
	bd.prog.done(step, start)
	return nil
}

// stepFailed is the error of a RUN whose process failed: why, with its
// last lines of output.
func (bd *build) stepFailed(c *instructions.RunCommand, step int, text string, args []string, why error, code int, tail []string) error {
	err := fmt.Errorf("process %q did not complete successfully: %v", strings.Join(args, " "), why)
	bd.prog.line(step, "ERROR: %v", err)
	msg := fmt.Sprintf("dockerfile line %d: %s: %v", lineOf(c.Location()), text, err)
	if len(tail) > 0 {
		msg += "\n" + strings.Join(tail, "\n")
	}
	return &StepError{Err: errors.New(msg), Code: code}
}

// runContainer runs args in a container on the stage's layers and
// streams its output; it returns the exit status, the last lines of
// output and the container's id (the caller removes it).
func (bd *build) runContainer(st *stage, args, env, mounts []string, network string, step int, start time.Time) (int, []string, string, error) {
	cs := bd.b.Containers
	// The container's image is the stage as it is: a config naming the
	// layers, which the engine mounts below the container's upper dir.
	ids := make([]string, len(st.layers))
	for i, l := range st.layers {
		ids[i] = l.DiffID.String()
	}
	cfgJSON := fmt.Sprintf(`{"architecture":%q,"os":"linux","rootfs":{"type":"layers","diff_ids":[%s]}}`,
		st.cfg.Architecture, `"`+strings.Join(ids, `","`)+`"`)
	cfgID, err := bd.b.Images.WriteBlob([]byte(cfgJSON))
	if err != nil {
		return 0, nil, "", err
	}
	f := runconfig.Flags{Env: env, Workdir: st.cfg.Config.WorkingDir, User: st.cfg.Config.User, Mount: mounts,
		NetFlags: runconfig.NetFlags{Network: network}}
	o, err := runconfig.FromFlags("berth-build", args, f, func(string) (string, bool) { return "", false })
	if err != nil {
		return 0, nil, "", err
	}
	o.Config.Entrypoint = []string{}
	id := container.NewID()
	spec, mps, err := runconfig.Spec(id, o, noVolumes{})
	if err != nil {
		return 0, nil, "", err
	}
	rec := &container.Record{ID: id, Image: cfgID.String(), ImageName: "berth-build", Config: o.Config,
		HostConfig: o.Host, NetworkingConfig: o.Networking, Mounts: mps, Spec: spec}
	rec.Config.Image = "berth-build"
	if err := cs.Create(rec); err != nil {
		return 0, nil, "", err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, id, err
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, nil, id, err
	}
	var tail []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			bd.prog.output(step, start, line)
			tail = append(tail, line)
			if len(tail) > tailLines {
				tail = tail[1:]
			}
		}
	}()
	// A build that is interrupted, or whose other stage failed, kills
	// the step instead of waiting for it.
	stopKill := make(chan struct{})
	defer close(stopKill)
	code, err := cs.RunForeground(id, container.ForegroundOpts{
		Start: container.StartOpts{IO: runtime.IO{Stdin: null, Stdout: pw, Stderr: pw}},
		Wait: func(p *runtime.Proc) (int, error) {
			go func() {
				select {
				case <-bd.ctx.Done():
					if _, err := cs.Signal(id, unix.SIGKILL, false); err != nil {
						logrus.Debugf("kill build container %.12s: %v", id, err)
					}
				case <-stopKill:
				}
			}()
			return p.Wait()
		},
	})
	pw.Close()
	<-read
	pr.Close()
	if err != nil {
		return 0, tail, id, err
	}
	if err := bd.ctx.Err(); err != nil {
		return 0, tail, id, err
	}
	return code, tail, id, nil
}
