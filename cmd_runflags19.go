package main

import (
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/runconfig"
)

// runFlags19 are the run/create flags added by issue 19, kept apart from
// runConfigFlags.
func runFlags19() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "device", Usage: "add a host device: HOST[:CONTAINER][:PERMISSIONS] (permissions: some of r, w, m; default rwm)"},
		&cli.StringSliceFlag{Name: "device-cgroup-rule", Usage: "allow devices in the cgroup: 'c|b|a MAJOR:MINOR rwm' (* for any number)"},
	}
}

// readRunFlags19 copies runFlags19's values into f.
func readRunFlags19(c *cli.Context, f *runconfig.Flags) {
	f.Device = c.StringSlice("device")
	f.DeviceCgroupRule = c.StringSlice("device-cgroup-rule")
}
