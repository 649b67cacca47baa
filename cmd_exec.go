package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a command in a running container", ArgsUsage: "CONTAINER COMMAND [ARG...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
			&cli.StringSliceFlag{Name: "env-file", Usage: "read environment variables from a file of KEY=VALUE lines"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user[:group] to run as"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
			&cli.BoolFlag{Name: "privileged", Usage: "give the command every capability"},
			&cli.StringFlag{Name: "detach-keys", Usage: "refused: berth cannot detach from an exec session (use -d)"},
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("detach-keys") {
				return usage(c, "--detach-keys: berth cannot detach from an exec session; run it with -d instead")
			}
			if err := checkInputTTY(c.Bool("interactive"), c.Bool("tty"), c.Bool("detach")); err != nil {
				return err
			}
			s, r, err := runningContainer(c, 2, -1, "CONTAINER COMMAND [ARG...]")
			if err != nil {
				return err
			}
			null, err := os.Open(os.DevNull)
			if err != nil {
				return err
			}
			defer null.Close()
			env, err := execEnv(c)
			if err != nil {
				return usage(c, "%v", err)
			}
			o := container.ExecOpts{Args: c.Args().Slice()[1:], Env: env, Tty: c.Bool("tty"),
				Workdir: c.String("workdir"), User: c.String("user"), Privileged: c.Bool("privileged"),
				IO: runtime.IO{Stdin: null, Stdout: os.Stdout, Stderr: os.Stderr}, Detach: c.Bool("detach"),
				ID: container.NewID()}
			if c.Bool("interactive") {
				o.IO.Stdin = os.Stdin
			}
			if o.Detach {
				o.IO = runtime.IO{Stdin: null, Stdout: null, Stderr: null}
			}
			var sigs chan os.Signal
			if !o.Detach {
				sigs = runtime.CatchSignals()
			}
			proc, err := s.Exec(r, o)
			if err != nil {
				return initExit(err)
			}
			if o.Detach {
				return nil
			}
			code, err := proc.Forward(sigs, o.IO.Stdin, os.Stdout)
			if err != nil {
				return err
			}
			s.ExecDied(r, o, code)
			return exitCode(code)
		},
	}
}

// execEnv is exec's environment: the --env-file lines, then -e, which
// overrides them, as Docker.
func execEnv(c *cli.Context) ([]string, error) {
	var env []string
	for _, file := range c.StringSlice("env-file") {
		e, err := runconfig.ParseEnvFile(file, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		env = append(env, e...)
	}
	e, err := runconfig.ParseEnv(c.StringSlice("env"), os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return append(env, e...), nil
}
