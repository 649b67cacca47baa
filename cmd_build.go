package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/image"
)

// The build and builder commands are defined here, flags and all, so
// berth parses, completes and explains them; what they do is linked only
// into the build helper, berth built with -tags berth_build
// (cmd_build_run.go), which berth runs for them (cmd_build_helper.go).

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{buildCommand(), builderCommand()}
	})
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name: "build", Usage: "build an image from a Dockerfile", ArgsUsage: "CONTEXT|-",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "tag", Aliases: []string{"t"}, Usage: "name and tag the image (NAME[:TAG]); may be repeated"},
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the Dockerfile (default CONTEXT/Dockerfile; - reads it from stdin)"},
			&cli.StringSliceFlag{Name: "build-arg", Usage: "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)"},
			&cli.StringFlag{Name: "target", Usage: "build this stage and what it needs"},
			&cli.BoolFlag{Name: "no-cache", Usage: "take no step from the build cache"},
			&cli.StringSliceFlag{Name: "no-cache-filter", Usage: "take no step of this stage from the build cache"},
			&cli.BoolFlag{Name: "pull", Usage: "pull base images even when they are stored"},
			&cli.StringFlag{Name: "network", Usage: "network of RUN steps: none, host or a network name (default: the default network)"},
			&cli.StringSliceFlag{Name: "allow", Usage: "allow an extra privilege: network.host lets a RUN --network=host step use the host's network"},
			&cli.StringSliceFlag{Name: "label", Usage: "set an image label (KEY=VALUE)"},
			&cli.StringFlag{Name: "iidfile", Usage: "write the image ID to this file"},
			&cli.StringSliceFlag{Name: "secret", Usage: "a secret for RUN --mount=type=secret: id=ID,src=FILE"},
			&cli.StringSliceFlag{Name: "output", Aliases: []string{"o"}, Usage: "also export the files of the result: type=local,dest=DIR"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "output: plain (docker build --progress=plain), tty (a step's output as one live line) or auto (tty on a terminal)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only the image ID"},
		},
		Action: buildAction,
	}
}

func builderCommand() *cli.Command {
	return &cli.Command{
		Name: "builder", Usage: "manage the build cache",
		Subcommands: []*cli.Command{
			builderPruneCommand("prune"),
			{
				Name: "cache", Usage: "manage the build cache's RUN --mount=type=cache directories",
				Subcommands: []*cli.Command{
					{Name: "ls", Usage: "list the cache mounts", Action: builderCacheLs},
					{Name: "prune", Usage: "remove cache mounts (all, or those named)", ArgsUsage: "[ID...]", Action: builderCachePrune},
					{
						Name: "export", Usage: "write cache mounts (all, or those named) as a tar archive", ArgsUsage: "[ID...]",
						Flags:  []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to this file instead of stdout"}},
						Action: builderCacheExport,
					},
					{Name: "import", Usage: "read cache mounts from a tar archive of export", ArgsUsage: "FILE|-", Action: builderCacheImport},
				},
			},
		},
	}
}

func builderPruneCommand(name string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: "remove build cache that no image needs (-a: all of it, cache mounts too)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all build cache, cache mounts included"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
		},
		Action: builderPrune,
	}
}

// buildCacheStep and buildCacheUsage are the build cache as system df
// counts it: each cached step's layer, by chain ID, and each cache mount.
type buildCacheStep struct {
	Chain string
	Size  int64
}

type buildCacheSizes struct {
	Steps  []buildCacheStep
	Mounts []int64
}

// buildCacheUsage is system df's Build Cache row: the cached steps (active
// when an image has their layer) and the cache mounts.
func buildCacheUsage(c *cli.Context, images *image.Store, imgs []*image.Image) (dfRow, error) {
	sizes, err := buildCache(c, images)
	if err != nil {
		return dfRow{}, err
	}
	used := map[string]bool{}
	for _, img := range imgs {
		for _, c := range img.ChainIDs {
			used[c.String()] = true
		}
	}
	row := dfRow{Type: "Build Cache", TotalCount: len(sizes.Steps) + len(sizes.Mounts)}
	for _, e := range sizes.Steps {
		row.size += e.Size
		if used[e.Chain] {
			row.Active++
		} else {
			row.reclaim += e.Size
		}
	}
	for _, m := range sizes.Mounts {
		row.size += m
		row.reclaim += m
	}
	return row, nil
}

// buildCacheArg is the build helper's hidden command that system df and
// system prune run.
const buildCacheArg = "__build-cache"
