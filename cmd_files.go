package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
)

// The commands that read or write a container's files: diff, export, cp.
func init() {
	register(func() []*cli.Command {
		return []*cli.Command{diffCommand(), exportCommand(), cpCommand()}
	})
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name: "diff", Usage: "list the files a container changed", ArgsUsage: "CONTAINER",
		Action: func(c *cli.Context) error {
			s, r, err := oneContainer(c, 1, 1, "CONTAINER")
			if err != nil {
				return err
			}
			changes, err := s.Changes(r)
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Println(ch.Kind, ch.Path)
			}
			return nil
		},
	}
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name: "export", Usage: "write a container's filesystem as a tar archive", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to a file instead of stdout"}},
		Action: func(c *cli.Context) error {
			s, r, err := oneContainer(c, 1, 1, "CONTAINER")
			if err != nil {
				return err
			}
			var w io.Writer = os.Stdout
			if o := c.String("output"); o != "" {
				f, err := os.Create(o)
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				defer f.Close()
				w = f
			}
			return s.Export(r, w)
		},
	}
}

func cpCommand() *cli.Command {
	return &cli.Command{
		Name: "cp", Usage: "copy files between a container and the host",
		ArgsUsage: "CONTAINER:SRC DEST|- | SRC|- CONTAINER:DEST",
		Description: "DEST - writes SRC as a tar stream to stdout; SRC - reads a tar stream from stdin\n" +
			"into the directory DEST. SRC/. copies a directory's content.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "archive", Aliases: []string{"a"}, Usage: "keep owners (uid:gid) as they are"},
			&cli.BoolFlag{Name: "follow-link", Aliases: []string{"L"}, Usage: "follow a symlink given as SRC"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return errors.New("cp: usage: cp CONTAINER:SRC DEST|- | SRC|- CONTAINER:DEST")
			}
			from, to := c.Args().Get(0), c.Args().Get(1)
			fromCtr, fromPath, fromOK := splitContainerPath(from)
			toCtr, toPath, toOK := splitContainerPath(to)
			if fromOK == toOK {
				return errors.New("cp: exactly one of source and destination must be CONTAINER:PATH")
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			ref := fromCtr
			if toOK {
				ref = toCtr
			}
			r, err := s.Find(ref)
			if err != nil {
				return err
			}
			opts := container.CopyOptions{Archive: c.Bool("archive"), FollowLink: c.Bool("follow-link")}
			switch {
			case fromOK && to == "-":
				err = s.CopyOutTar(r, fromPath, os.Stdout, opts)
			case fromOK:
				err = s.CopyOut(r, fromPath, to, opts)
			case from == "-":
				err = s.CopyInTar(r, os.Stdin, toPath, opts)
			default:
				err = s.CopyIn(r, from, toPath, opts)
			}
			if err != nil {
				return fmt.Errorf("cp: %w", err)
			}
			return nil
		},
	}
}

func splitContainerPath(s string) (string, string, bool) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || s == "-" {
		return "", s, false
	}
	ref, p, ok := strings.Cut(s, ":")
	return ref, p, ok && ref != ""
}
