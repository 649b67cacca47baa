package main

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runconfig"
)

func init() {
	register(func() []*cli.Command { return []*cli.Command{updateCommand()} })
}

func updateCommand() *cli.Command {
	return &cli.Command{
		Name: "update", Usage: "change the resource limits and restart policy of containers, running or not",
		ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit (e.g. 512m)"},
			&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit, -1 for unlimited swap"},
			&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
			&cli.StringFlag{Name: "cpus", Usage: "number of CPUs (e.g. 1.5)"},
			&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "relative CPU weight"},
			&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs the container may run on (0-3, 0,1)"},
			&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes, 0 or -1 for unlimited"},
			&cli.Uint64Flag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
			&cli.StringFlag{Name: "restart", Usage: "restart policy: no, always, unless-stopped, on-failure[:N]"},
		},
		Action: func(c *cli.Context) error {
			f := runconfig.UpdateFlags{Memory: c.String("memory"), MemorySwap: c.String("memory-swap"),
				MemoryReservation: c.String("memory-reservation"), CPUs: c.String("cpus"),
				CpusetCPUs: c.String("cpuset-cpus"), Restart: c.String("restart")}
			f.CPUShares, f.PidsLimit = given(c, "cpu-shares", c.Int64), given(c, "pids-limit", c.Int64)
			f.BlkioWeight = given(c, "blkio-weight", c.Uint64)
			if !f.Given() {
				return usage(c, "you must provide one or more flags")
			}
			if err := f.Check(); err != nil {
				return usage(c, "%v", err)
			}
			if c.NArg() < 1 {
				return usage(c, "needs a container")
			}
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				_, err := s.UpdateLimits(ref, func(r *container.Record) (*specs.LinuxResources, error) {
					return runconfig.ApplyUpdate(r, f)
				})
				return err
			})
		},
	}
}
