package main

import (
	"fmt"
	"os"

	"github.com/berth-project/berth/quadlet"
)

// generatorName: berth called through a link of this name in a systemd
// generator directory (make install puts one in
// /usr/local/lib/systemd/system-generators) turns Quadlet's .container
// files into service units on every daemon-reload.
const generatorName = "berth-generator"

// generatorMain takes systemd's generator arguments: the normal output
// directory, then (optionally) the early and late ones, which berth does
// not use.
func generatorMain(args []string) int {
	if len(args) != 1 && len(args) != 3 {
		fmt.Fprintln(os.Stderr, "berth-generator: usage: berth-generator NORMAL-DIR [EARLY-DIR LATE-DIR]")
		return 125
	}
	self, err := selfPath()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-generator: %v\n", err)
		return 1
	}
	if err := quadlet.Generate(quadlet.Dirs(), args[0], self, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "berth-generator: %v\n", err)
		return 1
	}
	return 0
}
