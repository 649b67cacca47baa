package cliargs

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestIntersperse(t *testing.T) {
	global := []cli.Flag{&cli.StringFlag{Name: "root"}, &cli.BoolFlag{Name: "debug"}}
	cmds := []*cli.Command{
		{Name: "logs", Flags: []cli.Flag{&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}}, &cli.StringFlag{Name: "tail", Aliases: []string{"n"}}}},
		{Name: "stop", Flags: []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t"}}}},
		{Name: "run", Flags: []cli.Flag{&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}}, &cli.BoolFlag{Name: "tty", Aliases: []string{"t"}},
			&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}}, &cli.BoolFlag{Name: "rm"}}},
		{Name: "top", SkipFlagParsing: true},
		{Name: "image", Subcommands: []*cli.Command{{Name: "ls", Flags: []cli.Flag{&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}}, &cli.StringFlag{Name: "format"}}}}},
		{Name: "cp", Flags: []cli.Flag{&cli.BoolFlag{Name: "archive", Aliases: []string{"a"}}}},
	}
	pass := Options{Passthrough: func(p []string) bool { return p[len(p)-1] == "run" }}
	for _, tc := range []struct{ in, want []string }{
		{[]string{"b", "logs", "web", "-f", "--tail", "1"}, []string{"b", "logs", "-f", "--tail", "1", "web"}},
		{[]string{"b", "--root", "/r", "stop", "web", "-t", "1"}, []string{"b", "--root", "/r", "stop", "-t", "1", "web"}},
		{[]string{"b", "stop", "a", "--time=3", "b"}, []string{"b", "stop", "--time=3", "a", "b"}},
		// run: everything after the image is the container's.
		{[]string{"b", "run", "--rm", "img", "ls", "-l", "--rm"}, []string{"b", "run", "--rm", "img", "ls", "-l", "--rm"}},
		{[]string{"b", "run", "-itp", "80:80", "img", "sh"}, []string{"b", "run", "-itp", "80:80", "img", "sh"}},
		{[]string{"b", "top", "c", "-ef"}, []string{"b", "top", "c", "-ef"}},
		{[]string{"b", "image", "ls", "busybox", "-q", "--format", "{{.ID}}"}, []string{"b", "image", "ls", "-q", "--format", "{{.ID}}", "busybox"}},
		// "-" is stdin, "--" ends the flags.
		{[]string{"b", "cp", "-", "c:/x", "-a"}, []string{"b", "cp", "-a", "-", "c:/x"}},
		{[]string{"b", "logs", "c", "--", "-f"}, []string{"b", "logs", "c", "--", "-f"}},
		// A flag's value that looks like a flag stays with it.
		{[]string{"b", "logs", "c", "--tail", "-1"}, []string{"b", "logs", "--tail", "-1", "c"}},
		// Unknown commands are left for urfave/cli to report.
		{[]string{"b", "pss", "-a", "x"}, []string{"b", "pss", "-a", "x"}},
	} {
		if got := Intersperse(global, cmds, tc.in, pass); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
