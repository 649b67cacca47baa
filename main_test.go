package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// Every command and flag a user sees says what it does, and none is
// "accepted" for show: a flag berth does not implement is refused.
func TestHelpTexts(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	check := func(where string, flags []cli.Flag) {
		for _, f := range flags {
			d, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			if v, ok := f.(interface{ IsVisible() bool }); ok && !v.IsVisible() {
				continue
			}
			u := d.GetUsage()
			if strings.TrimSpace(u) == "" {
				t.Errorf("%s --%s has no description", where, f.Names()[0])
			}
			// urfave/cli prints the default after the text: a text that
			// names one too would say two things.
			if d.GetDefaultText() != "" && strings.Contains(u, "default") {
				t.Errorf("%s --%s names its default in its text %q: set DefaultText", where, f.Names()[0], u)
			}
			if strings.Contains(u, "accepted for Docker") {
				t.Errorf("%s --%s is accepted and ignored: %q", where, f.Names()[0], u)
			}
		}
	}
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			where := strings.TrimSpace(path + " " + c.Name)
			if strings.TrimSpace(c.Usage) == "" {
				t.Errorf("%s has no description", where)
			}
			check(where, c.Flags)
			walk(where, c.Subcommands)
		}
	}
	check("berth", globalFlags())
	walk("berth", commands())
}

// cachedNames gives run's flags the names urfave/cli itself would, names
// written in its old "name, alias" form included.
func TestCachedNames(t *testing.T) {
	flags := append(runConfigFlags(),
		&cli.StringFlag{Name: "old, o"}, &cli.BoolFlag{Name: "b", Aliases: []string{"bee x"}})
	for i, f := range cachedNames(flags) {
		got, want := f.Names(), flags[i].Names()
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("flag %d: names %q, urfave/cli says %q", i, got, want)
		}
	}
}
