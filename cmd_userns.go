package main

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"

	proto "github.com/berth-project/berth/internal/monitorproto"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{{Name: proto.UsernsCommand, Hidden: true, Action: func(*cli.Context) error {
			_, _ = io.Copy(io.Discard, os.Stdin)
			return nil
		}}}
	})
}
