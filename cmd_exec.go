package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/detachkeys"
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
			&cli.StringFlag{Name: "detach-keys", Usage: "keys that detach from -it, leaving the command running (default ctrl-p,ctrl-q)"},
		},
		Action: func(c *cli.Context) error {
			keys, err := detachkeys.Parse(c.String("detach-keys"))
			if err != nil {
				return usage(c, "%v", err)
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
			if !(o.Tty && c.Bool("interactive")) {
				keys = nil
			}
			code, detached, err := proc.ForwardKeys(sigs, o.IO.Stdin, os.Stdout, keys)
			if err != nil {
				return err
			}
			if detached {
				return holdPty(proc.Console)
			}
			s.ExecDied(r, o, code)
			return exitCode(code)
		},
	}
}

// ptyHoldCommand is the hidden command that keeps the terminal of an
// exec the user detached from: closing its pty's master would hang the
// command up. It reads and drops the command's output (nobody is
// attached) until every holder of the terminal is gone.
const ptyHoldCommand = "__ptyhold"

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{{Name: ptyHoldCommand, Hidden: true, Action: func(*cli.Context) error {
			master := os.NewFile(3, "pty")
			if master == nil {
				return errors.New("no terminal to hold")
			}
			// The read ends with EIO once the slave side is closed.
			_, _ = io.Copy(io.Discard, master)
			return nil
		}}}
	})
}

// holdPty hands the terminal of a detached exec to a process of its own
// (in a session of its own, out of the user's terminal) and returns.
func holdPty(master *os.File) error {
	defer master.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	cmd := exec.Command(self, ptyHoldCommand)
	cmd.ExtraFiles = []*os.File{master}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("detach: keep the terminal: %w", err)
	}
	return cmd.Process.Release()
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
