package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
)

func init() {
	register(func() []*cli.Command { return []*cli.Command{commitCommand()} })
}

func commitCommand() *cli.Command {
	return &cli.Command{
		Name: "commit", Usage: "make an image of a container's changes", ArgsUsage: "CONTAINER [REPOSITORY[:TAG]]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "change", Aliases: []string{"c"}, Usage: "apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME)"},
			&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit message"},
			&cli.StringFlag{Name: "author", Aliases: []string{"a"}, Usage: "author"},
			&cli.BoolFlag{Name: "pause", Aliases: []string{"p"}, Value: true, Usage: "pause the container while committing"},
		},
		Action: func(c *cli.Context) error {
			s, r, err := oneContainer(c, 1, 2, "CONTAINER [REPOSITORY[:TAG]]")
			if err != nil {
				return err
			}
			var tags []string
			if t := c.Args().Get(1); t != "" {
				tags = append(tags, t)
			}
			img, err := s.Commit(r, container.CommitOpts{Tags: tags, Changes: c.StringSlice("change"),
				Message: c.String("message"), Author: c.String("author"), Pause: c.Bool("pause")})
			if err != nil {
				return err
			}
			fmt.Println(img.ID)
			return nil
		},
	}
}
