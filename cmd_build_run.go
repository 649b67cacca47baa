//go:build berth_build || docsgen

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-project/berth/internal/units"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/berth-project/berth/build"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
)

// This file is the build helper's part: berth built with -tags berth_build
// (and the man page generator) links the build machinery in.

func init() {
	register(func() []*cli.Command { return []*cli.Command{buildCacheCommand()} })
}

// buildOptions turns the command line into build options; its errors are
// the user's (exit 125).
func buildOptions(c *cli.Context) (build.Options, error) {
	var o build.Options
	if c.NArg() != 1 {
		return o, usage(c, "usage: berth build [OPTIONS] CONTEXT|-")
	}
	arg := c.Args().First()
	file := c.String("file")
	switch {
	case arg == "-":
		if file != "" && file != "-" {
			return o, errors.New("-f cannot name a file when the Dockerfile comes on stdin")
		}
		file = "-"
	default:
		fi, err := os.Stat(arg)
		if err != nil {
			return o, fmt.Errorf("unable to prepare context: %w", err)
		}
		if !fi.IsDir() {
			return o, fmt.Errorf("unable to prepare context: %s is not a directory", arg)
		}
		o.ContextDir = arg
		if file == "" {
			file = filepath.Join(arg, "Dockerfile")
		}
	}
	var err error
	if file == "-" {
		o.Dockerfile, err = io.ReadAll(os.Stdin)
	} else {
		o.DockerfilePath = file
		o.Dockerfile, err = os.ReadFile(file)
	}
	if err != nil {
		return o, fmt.Errorf("unable to read the Dockerfile: %w", err)
	}
	o.Tags = c.StringSlice("tag")
	for _, t := range o.Tags {
		if _, err := image.ParseReference(t); err != nil {
			return o, fmt.Errorf("invalid tag %q: %w", t, err)
		}
	}
	o.BuildArgs = map[string]string{}
	for _, kv := range c.StringSlice("build-arg") {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return o, fmt.Errorf("--build-arg %q: no name", kv)
		}
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		o.BuildArgs[k] = v
	}
	o.Labels = map[string]string{}
	for _, kv := range c.StringSlice("label") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return o, fmt.Errorf("--label %q: no name", kv)
		}
		o.Labels[k] = v
	}
	o.Secrets = map[string]string{}
	for _, s := range c.StringSlice("secret") {
		var id, src string
		for _, f := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "type":
				if v != "file" {
					return o, fmt.Errorf("--secret %q: only file secrets are supported", s)
				}
			default:
				return o, fmt.Errorf("--secret %q: unknown field %q", s, k)
			}
		}
		if id == "" || src == "" {
			return o, fmt.Errorf("--secret %q: needs id=ID,src=FILE", s)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return o, err
		}
		if fi, err := os.Stat(abs); err != nil || !fi.Mode().IsRegular() {
			return o, fmt.Errorf("--secret %q: %s is not a readable file", s, src)
		}
		o.Secrets[id] = abs
	}
	for _, out := range c.StringSlice("output") {
		var typ, dest string
		for _, f := range strings.Split(out, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "type":
				typ = v
			case "dest":
				dest = v
			default:
				return o, fmt.Errorf("--output %q: unknown field %q", out, k)
			}
		}
		if typ != "local" || dest == "" {
			return o, fmt.Errorf("--output %q: only type=local,dest=DIR is supported", out)
		}
		o.OutputDir = dest
	}
	switch p := c.String("progress"); p {
	case "plain":
	case "tty":
		o.TTY = true
	case "auto":
		o.TTY = term.IsTerminal(int(os.Stderr.Fd()))
	default:
		return o, fmt.Errorf("--progress %q: plain, tty or auto", p)
	}
	o.Target = c.String("target")
	o.NoCache = c.Bool("no-cache")
	o.NoCacheFilter = c.StringSlice("no-cache-filter")
	o.Pull = c.Bool("pull")
	o.Network = c.String("network")
	if !c.IsSet("network") {
		// As for run: the test suites set it to none.
		o.Network = os.Getenv("BERTH_DEFAULT_NETWORK")
	}
	if o.Network == "default" {
		o.Network = ""
	}
	// As BuildKit's network.host entitlement: a Dockerfile gets the
	// host's network only when whoever runs the build says so.
	o.AllowHostNetwork = o.Network == "host"
	for _, a := range c.StringSlice("allow") {
		if a != "network.host" {
			return o, fmt.Errorf("--allow %q: the one privilege to allow is network.host", a)
		}
		o.AllowHostNetwork = true
	}
	if !c.Bool("quiet") {
		o.Progress = os.Stderr
	}
	return o, nil
}

func buildAction(c *cli.Context) error {
	o, err := buildOptions(c)
	if err != nil {
		return err
	}
	st, err := openStores(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	net, err := openNetwork(c)
	if err != nil {
		return err
	}
	// RUN steps run in an engine of their own: not in ps -a.
	bcs, err := build.OpenEngine(c.String("data-root"), c.String("root"),
		container.Deps{Images: st.images, Volumes: st.volumes, Network: net})
	if err != nil {
		return err
	}
	b := &build.Builder{Images: st.images, Containers: bcs, DataRoot: c.String("data-root"),
		Pull: func(ctx context.Context, ref string) (*image.Image, error) {
			return st.images.Pull(ctx, ref, image.PullOptions{})
		}}
	img, err := b.Build(ctx, o)
	if err != nil {
		var se *build.StepError
		if errors.As(err, &se) {
			// A failed RUN: its last lines, then the error, and docker
			// build's exit status.
			msg := se.Error()
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				fmt.Fprintf(os.Stderr, "------\n%s\n------\n", msg[i+1:])
				msg = msg[:i]
			}
			return &exitError{code: 1, err: errors.New(msg)}
		}
		return err
	}
	if f := c.String("iidfile"); f != "" {
		if err := os.WriteFile(f, []byte(img.ID.String()), 0o644); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if c.Bool("quiet") {
		fmt.Println(img.ID)
		return nil
	}
	fmt.Fprintf(os.Stderr, "writing image %s done\n", img.ID)
	for _, t := range img.RepoTags {
		fmt.Fprintf(os.Stderr, "naming to %s done\n", t)
	}
	return nil
}

func builderCacheLs(c *cli.Context) error {
	mounts, err := build.CacheMounts(c.String("data-root"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE")
	for _, m := range mounts {
		fmt.Fprintf(tw, "%s\t%s\n", m.ID, units.HumanSize(m.Size))
	}
	return tw.Flush()
}

func builderCachePrune(c *cli.Context) error {
	n, err := build.PruneMounts(c.String("data-root"), c.Args().Slice())
	if err != nil {
		return err
	}
	fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(n))
	return nil
}

func builderCacheExport(c *cli.Context) error {
	var w io.Writer = os.Stdout
	if f := c.String("output"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			return err
		}
		defer out.Close()
		w = out
	}
	return build.ExportMounts(c.String("data-root"), c.Args().Slice(), w)
}

func builderCacheImport(c *cli.Context) error {
	if c.NArg() != 1 {
		return usage(c, "usage: berth builder cache import FILE|-")
	}
	var r io.Reader = os.Stdin
	if f := c.Args().First(); f != "-" {
		in, err := os.Open(f)
		if err != nil {
			return err
		}
		defer in.Close()
		r = in
	}
	ids, err := build.ImportMounts(c.String("data-root"), r)
	if err != nil {
		return err
	}
	for _, id := range ids {
		fmt.Println(id)
	}
	return nil
}

func builderPrune(c *cli.Context) error {
	if !c.Bool("force") && !confirm("WARNING! This will remove all dangling build cache.") {
		return nil
	}
	images, err := image.Open(c.String("data-root"))
	if err != nil {
		return err
	}
	n, err := build.Prune(images, c.String("data-root"), c.Bool("all"))
	if err != nil {
		return err
	}
	fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(n))
	return nil
}

// buildCache reads the build cache's sizes for system df.
func buildCache(c *cli.Context, images *image.Store) (buildCacheSizes, error) {
	var sizes buildCacheSizes
	ents, err := build.CacheEntries(images, c.String("data-root"))
	if err != nil {
		return sizes, err
	}
	mounts, err := build.CacheMounts(c.String("data-root"))
	if err != nil {
		return sizes, err
	}
	for _, e := range ents {
		sizes.Steps = append(sizes.Steps, buildCacheStep{Chain: e.Chain.String(), Size: e.Size})
	}
	for _, m := range mounts {
		sizes.Mounts = append(sizes.Mounts, m.Size)
	}
	return sizes, nil
}

// pruneBuildCache is system prune's part of the build cache.
func pruneBuildCache(c *cli.Context, images *image.Store, all bool) (int64, error) {
	return build.Prune(images, c.String("data-root"), all)
}

// buildCacheCommand is what berth runs the build helper with for system
// df and system prune: the build cache's sizes as JSON, or a prune and
// the bytes it freed.
func buildCacheCommand() *cli.Command {
	return &cli.Command{
		Name: buildCacheArg, Hidden: true,
		Subcommands: []*cli.Command{
			{
				Name: "sizes",
				Action: func(c *cli.Context) error {
					images, err := image.Open(c.String("data-root"))
					if err != nil {
						return err
					}
					sizes, err := buildCache(c, images)
					if err != nil {
						return err
					}
					return json.NewEncoder(os.Stdout).Encode(sizes)
				},
			},
			{
				Name:  "prune",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "all"}},
				Action: func(c *cli.Context) error {
					// As system prune's own store: one that knows which
					// layers containers use.
					dataRoot := c.String("data-root")
					images, err := image.OpenWithUsers(dataRoot, container.Records{DataRoot: dataRoot})
					if err != nil {
						return err
					}
					n, err := pruneBuildCache(c, images, c.Bool("all"))
					if err != nil {
						return err
					}
					fmt.Println(strconv.FormatInt(n, 10))
					return nil
				},
			},
		},
	}
}
