package main

import (
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// checkInputTTY refuses -i with -t when stdin is not a terminal, as Docker
// does: the terminal would be fed from something that is not one. -t
// alone is fine (no input is read), and so is -d.
func checkInputTTY(c *cli.Context, interactive, tty, detach bool) error {
	if interactive && tty && !detach && !term.IsTerminal(int(os.Stdin.Fd())) {
		return usage(c, "the input device is not a TTY")
	}
	return nil
}
