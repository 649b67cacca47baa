package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name: "top", Usage: "show a container's processes", ArgsUsage: "CONTAINER [ps OPTIONS]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			s, r, err := runningContainer(c, 1, -1, "CONTAINER [ps OPTIONS]")
			if err != nil {
				return err
			}
			lines, err := s.Top(r, c.Args().Slice()[1:])
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Println(l)
			}
			return nil
		},
	}
}
