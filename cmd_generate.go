package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/internal/cliargs"
	"github.com/berth-project/berth/sdunit"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{{Name: "generate", Usage: "generate files from containers", Subcommands: []*cli.Command{generateSystemdCommand()}}}
	})
}

func generateSystemdCommand() *cli.Command {
	return &cli.Command{
		Name: "systemd", Usage: "print a systemd service unit that runs a container", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "new", Usage: "the unit creates the container afresh on each start (Type=notify); without it the unit starts and stops this container (Type=forking, needs its --pid-file)"},
			&cli.BoolFlag{Name: "name", Aliases: []string{"n"}, Usage: "name the container by its name, not its ID, in the unit"},
			&cli.StringFlag{Name: "restart-policy", Value: "on-failure", Usage: "systemd's Restart=: " + strings.Join(sdunit.RestartPolicies, ", ")},
			&cli.UintFlag{Name: "time", Aliases: []string{"t"}, Value: 10, Usage: "seconds berth stop waits before it kills the container"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usage(c, "needs exactly one container")
			}
			policy := c.String("restart-policy")
			found := false
			for _, p := range sdunit.RestartPolicies {
				found = found || p == policy
			}
			if !found {
				return usage(c, "--restart-policy %q: want one of %s", policy, strings.Join(sdunit.RestartPolicies, ", "))
			}
			_, r, err := findContainer(c, c.Args().First())
			if err != nil {
				return err
			}
			self, err := selfPath()
			if err != nil {
				return err
			}
			ref := r.ID
			if c.Bool("name") || c.Bool("new") {
				// A unit that creates the container gives it the name.
				ref = r.Name
			}
			o := sdunit.Options{
				Container: ref, Unit: "container-" + ref + ".service", Berth: self,
				Global:  []string{"--root", c.String("root"), "--data-root", c.String("data-root")},
				Restart: policy, StopTimeout: c.Uint("time"), New: c.Bool("new"), PIDFile: r.HostConfig.PidFile,
			}
			if o.New {
				if o.RunArgs, err = rerunArgs(r.CreateCommand); err != nil {
					return fmt.Errorf("generate systemd --new: container %s: %w", r.Name, err)
				}
			}
			text, err := sdunit.Unit(o)
			if err != nil {
				return err
			}
			_, err = fmt.Print(text)
			return err
		},
	}
}

// selfPath is the absolute path of the running berth binary.
func selfPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find berth's own path: %w", err)
	}
	return filepath.Abs(p)
}

// createCommand is this invocation's command line with berth's absolute
// path first, for the container record.
func createCommand() []string {
	self, err := selfPath()
	if err != nil || len(cmdLine) == 0 {
		return nil
	}
	return append([]string{self}, cmdLine[1:]...)
}

// dropInUnit are run's flags a unit's berth run sets itself or cannot
// use: the unit runs berth in the foreground with --rm and --name, without
// a terminal, and systemd's Restart= does the restarting.
var dropInUnit = map[string]bool{
	"detach": true, "rm": true, "name": true, "sdnotify": true, "cgroups": true,
	"interactive": true, "tty": true, "detach-keys": true, "restart": true,
	// The file of the first run would refuse every later one.
	"cidfile": true,
}

// rerunArgs takes the words after run/create (flags, image, command) from
// a stored CreateCommand, without the flags of dropInUnit.
func rerunArgs(cmd []string) ([]string, error) {
	if len(cmd) < 2 {
		return nil, fmt.Errorf("it has no stored command line (created by an older berth)")
	}
	args := cmd[1:]
	i := 0
	for i < len(args) && cliargs.IsFlag(args[i]) {
		i += cliargs.FlagWords(globalFlags(), args[i:])
	}
	if i < len(args) && args[i] == "container" {
		i++
	}
	if i >= len(args) || args[i] != "run" && args[i] != "create" {
		return nil, fmt.Errorf("its command line %q has no run or create", strings.Join(cmd, " "))
	}
	i++
	flags := runConfigFlags()
	var out []string
	for i < len(args) && cliargs.IsFlag(args[i]) && args[i] != "--" {
		n := cliargs.FlagWords(flags, args[i:])
		out = append(out, keepFlag(flags, args[i:i+n])...)
		i += n
	}
	return append(out, args[i:]...), nil
}

// keepFlag returns the words of one flag (with its value) without what
// dropInUnit names; short options written together (-dit) lose only
// their dropped letters.
func keepFlag(flags []cli.Flag, words []string) []string {
	name, _, _ := strings.Cut(strings.TrimLeft(words[0], "-"), "=")
	if f := lookupFlag(flags, name); f != nil {
		if dropInUnit[f.Names()[0]] {
			return nil
		}
		return words
	}
	if strings.HasPrefix(words[0], "--") || strings.Contains(words[0], "=") {
		return words
	}
	kept := "-"
	for _, l := range name {
		if f := lookupFlag(flags, string(l)); f == nil || !dropInUnit[f.Names()[0]] {
			kept += string(l)
		}
	}
	if kept == "-" {
		return nil
	}
	return append([]string{kept}, words[1:]...)
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
