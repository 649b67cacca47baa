//go:build docsgen

package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// Built with -tags docsgen (make docs), this program writes berth's man
// pages from the command definitions: berth.1 and one berth-COMMAND.1
// per top-level command. The berth binary itself is built without
// urfave/cli's docs code.
func init() { docsMain = writeDocs }

func writeDocs(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: berth-docs DIR")
		return 2
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	app := newApp("berth", commands())
	prepare(app.Commands)
	pages := map[string]*cli.App{"berth": app}
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		pages["berth-"+c.Name] = &cli.App{
			Name: "berth-" + c.Name, Usage: c.Usage, Description: c.Description,
			UsageText: "berth " + c.Name + " [OPTIONS] " + c.ArgsUsage,
			Flags:     c.Flags, Commands: c.Subcommands, HideHelp: true, HideHelpCommand: true,
		}
	}
	for name, a := range pages {
		page, err := a.ToManWithSection(1)
		if err != nil {
			fmt.Fprintf(os.Stderr, "man page %s: %v\n", name, err)
			return 1
		}
		if err := os.WriteFile(filepath.Join(dir, name+".1"), []byte(page), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
