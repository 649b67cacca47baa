package main

import (
	"errors"
	"os"

	"golang.org/x/term"
)

// checkInputTTY refuses -i with -t when stdin is not a terminal, as Docker
// does: the terminal would be fed from something that is not one. -t
// alone is fine (no input is read), and so is -d. Docker's CLI exits 1
// here, not 125, and scripts test for that.
func checkInputTTY(interactive, tty, detach bool) error {
	if interactive && tty && !detach && !term.IsTerminal(int(os.Stdin.Fd())) {
		return &exitError{code: 1, err: errors.New("the input device is not a TTY")}
	}
	return nil
}
