package main

import (
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
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user[:group] to run as"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
			&cli.BoolFlag{Name: "privileged", Usage: "give the command every capability"},
			&cli.StringFlag{Name: "detach-keys", Usage: "refused: berth cannot detach from an exec session (use -d)"},
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("detach-keys") {
				return usage(c, "--detach-keys: berth cannot detach from an exec session; run it with -d instead")
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
			env, err := runconfig.ParseEnv(c.StringSlice("env"), os.LookupEnv)
			if err != nil {
				return err
			}
			o := container.ExecOpts{Args: c.Args().Slice()[1:], Env: env, Tty: c.Bool("tty"),
				Workdir: c.String("workdir"), User: c.String("user"), Privileged: c.Bool("privileged"),
				IO: runtime.IO{Stdin: null, Stdout: os.Stdout, Stderr: os.Stderr}, Detach: c.Bool("detach")}
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
			return exitCode(code)
		},
	}
}
