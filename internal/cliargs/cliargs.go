// Package cliargs puts a command line into the order urfave/cli parses:
// the flag package stops at the first positional argument, while Docker
// users write flags after them (`berth logs web -f`, `berth stop web -t
// 1`). Flags are moved in front of the command's positional arguments;
// the words themselves are never changed.
package cliargs

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Options say where reordering must stop.
type Options struct {
	// Passthrough says the command's arguments after its first
	// positional one belong to another program (run IMAGE CMD..., exec
	// CTR CMD...): flags stay where they are from there on. path is the
	// command's names from the top ("container", "run").
	Passthrough func(path []string) bool
}

// Intersperse returns args (args[0] is the program) with every flag of
// the command it names moved before that command's positional arguments.
// Global flags before the command name are kept in place. Commands with
// SkipFlagParsing, and words after "--", are left as they are.
func Intersperse(global []cli.Flag, cmds []*cli.Command, args []string, o Options) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// Global flags, up to the command name.
	for i < len(args) && isFlag(args[i]) {
		if args[i] == "--" {
			return args
		}
		n := flagWords(global, args[i:])
		out = append(out, args[i:i+n]...)
		i += n
	}
	var cmd *cli.Command
	var path []string
	for i < len(args) {
		sub := find(cmds, args[i])
		if sub == nil {
			break
		}
		cmd = sub
		path = append(path, cmd.Name)
		out = append(out, args[i])
		i++
		if len(cmd.Subcommands) == 0 {
			break
		}
		cmds = cmd.Subcommands
		// Flags of a command group go before its subcommand's name.
		for i < len(args) && isFlag(args[i]) && args[i] != "--" {
			n := flagWords(cmd.Flags, args[i:])
			out = append(out, args[i:i+n]...)
			i += n
		}
	}
	if cmd == nil || cmd.SkipFlagParsing || len(cmd.Subcommands) > 0 {
		return append(out, args[i:]...)
	}
	passthrough := o.Passthrough != nil && o.Passthrough(path)
	var flags, pos []string
	for i < len(args) {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			i++
			if passthrough {
				pos = append(pos, args[i:]...)
				break
			}
			continue
		}
		n := flagWords(cmd.Flags, args[i:])
		flags = append(flags, args[i:i+n]...)
		i += n
	}
	out = append(out, flags...)
	if asksHelp(cmd, flags) {
		// urfave/cli would take the first argument for a help topic.
		return out
	}
	return append(out, pos...)
}

// asksHelp says flags ask for the command's help (-h, unless the command
// has a flag of its own by that name: run's -h is --hostname).
func asksHelp(cmd *cli.Command, flags []string) bool {
	for _, f := range flags {
		if f == "--help" || f == "-h" && lookup(cmd.Flags, "h") == nil {
			return true
		}
	}
	return false
}

// IsFlag says whether a word is a flag (see isFlag).
func IsFlag(a string) bool { return isFlag(a) }

// isFlag: "-" alone is a positional argument (stdin, as in cp - CTR:DIR).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// FlagWords is flagWords for callers that walk a stored command line
// (berth generate systemd reads the one a container was created with).
func FlagWords(flags []cli.Flag, args []string) int { return flagWords(flags, args) }

// flagWords says how many words the flag at args[0] takes: 2 when its
// value is the next word, else 1. An unknown flag takes 1: urfave/cli
// reports it.
func flagWords(flags []cli.Flag, args []string) int {
	a := args[0]
	if strings.Contains(a, "=") || len(args) < 2 {
		return 1
	}
	if strings.HasPrefix(a, "--") {
		return 1 + b2i(takesValue(flags, a[2:]))
	}
	name := a[1:]
	if f := lookup(flags, name); f != nil {
		return 1 + b2i(valued(f))
	}
	// Short options run together (-it, -dp 80:80): the last one may take
	// the next word.
	return 1 + b2i(takesValue(flags, name[len(name)-1:]))
}

func takesValue(flags []cli.Flag, name string) bool {
	f := lookup(flags, name)
	return f != nil && valued(f)
}

func valued(f cli.Flag) bool {
	if v, ok := f.(cli.DocGenerationFlag); ok {
		return v.TakesValue()
	}
	return false
}

func lookup(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
