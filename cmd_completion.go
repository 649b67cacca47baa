package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/image"
)

func init() {
	register(func() []*cli.Command { return []*cli.Command{completionCommand()} })
}

// The scripts ask berth itself for the words that may come next (its
// commands, flags, and the names of containers, images and volumes), so
// they never go stale.
const bashCompletion = `# bash completion for berth; source it, or install it as
# /usr/share/bash-completion/completions/berth
_berth_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	local -a words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	if [[ "$cur" == -* ]]; then
		words+=("$cur")
	fi
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${words[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o default -F _berth_complete berth
`

const zshCompletion = `#compdef berth
# zsh completion for berth: the bash completion, through bashcompinit.
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

const fishCompletion = `# fish completion for berth; install it as
# /usr/share/fish/vendor_completions.d/berth.fish
function __berth_complete
	set -l words (commandline -opc)
	set -l cur (commandline -ct)
	if string match -q -- '-*' $cur
		set -a words $cur
	end
	$words[1] $words[2..-1] --generate-bash-completion 2>/dev/null | string replace -r ':.*' ''
end
complete -c berth -f -a '(__berth_complete)'
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "print a shell completion script (bash, zsh or fish)", ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			scripts := map[string]string{"bash": bashCompletion, "zsh": zshCompletion, "fish": fishCompletion}
			s, ok := scripts[c.Args().First()]
			if !ok || c.NArg() != 1 {
				return usage(c, "needs one shell: bash, zsh or fish")
			}
			fmt.Print(s)
			return nil
		},
	}
}

// complete prints the words that may follow args (the line as typed,
// without the program's name): a flag's names when the last word begins
// with "-", else a group's subcommands, else the names the command takes.
func complete(app *cli.App, args []string) {
	last := ""
	if len(args) > 0 {
		last = args[len(args)-1]
	}
	flags, cmds := app.Flags, app.Commands
	var cmd *cli.Command
	var global []string
	nargs := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			if cmd == nil {
				global = append(global, a)
			}
			if i < len(args)-1 && !strings.Contains(a, "=") && takesValue(flags, strings.TrimLeft(a, "-")) {
				i++
				if cmd == nil {
					global = append(global, args[i])
				}
			}
			continue
		}
		if sub := findCommand(cmds, a); sub != nil && nargs == 0 {
			cmd, flags, cmds = sub, sub.Flags, sub.Subcommands
			continue
		}
		nargs++
	}
	if strings.HasPrefix(last, "-") {
		for _, f := range flags {
			for _, n := range f.Names() {
				dash := "--"
				if len(n) == 1 {
					dash = "-"
				}
				if strings.HasPrefix(dash+n, last) {
					fmt.Println(dash + n)
				}
			}
		}
		return
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		for _, c := range cmds {
			if !c.Hidden {
				fmt.Println(c.Name)
			}
		}
		return
	}
	if nargs > 0 && !strings.Contains(cmd.ArgsUsage, "...") {
		return // the one name it takes is there
	}
	// The stores are opened with the global flags as typed (--root).
	ctx := cli.NewContext(app, globalFlagSet(app, global), nil)
	for _, k := range argKinds(cmd) {
		for _, n := range completionNames(ctx, k) {
			fmt.Println(n)
		}
	}
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// argKinds reads from a command's ArgsUsage what its arguments name.
func argKinds(cmd *cli.Command) []string {
	word := strings.Trim(strings.Fields(cmd.ArgsUsage + " x")[0], "[]")
	switch {
	case strings.HasPrefix(word, "CONTAINER"):
		return []string{"container"}
	case word == "IMAGE" || word == "SOURCE" || strings.HasPrefix(word, "NAME[:TAG"):
		return []string{"image"}
	case strings.HasPrefix(word, "VOLUME"):
		return []string{"volume"}
	case word == "NAME...":
		return []string{"container", "image", "volume"}
	}
	return nil
}

// globalFlagSet parses the global flags typed so far; what does not
// parse is left at its default.
func globalFlagSet(app *cli.App, args []string) *flag.FlagSet {
	set := flag.NewFlagSet(app.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range app.Flags {
		_ = f.Apply(set)
	}
	_ = set.Parse(args)
	return set
}

// completionNames lists the names of one kind of object; what cannot be
// read completes to nothing.
func completionNames(c *cli.Context, kind string) []string {
	var names []string
	switch kind {
	case "container":
		s, err := openContainers(c)
		if err != nil {
			return nil
		}
		recs, _ := s.List()
		for _, r := range recs {
			names = append(names, r.Name)
		}
	case "image":
		s, err := openImageStore(c)
		if err != nil {
			return nil
		}
		imgs, _ := s.List()
		for _, img := range imgs {
			for _, t := range img.RepoTags {
				names = append(names, image.FamiliarName(t))
			}
		}
	case "volume":
		vs, err := openVolumes(c)
		if err != nil {
			return nil
		}
		vols, _ := vs.List()
		for _, v := range vols {
			names = append(names, v.Name)
		}
	}
	return names
}
