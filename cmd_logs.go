package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
)

// parseTime takes an RFC 3339 time, a Unix timestamp or a duration ago.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339, a Unix timestamp or a duration like 10m)", s)
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "print a container's output", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the output"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "number of lines from the end"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
			&cli.StringFlag{Name: "since", Usage: "show logs since a time or a duration ago"},
			&cli.StringFlag{Name: "until", Usage: "show logs before a time or a duration ago"},
			&cli.BoolFlag{Name: "details", Usage: "show the attributes of each line (--log-opt labels=, env=, tag=)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usage(c, "needs one container")
			}
			o := container.LogOpts{Tail: -1, Timestamps: c.Bool("timestamps"), Follow: c.Bool("follow"), Details: c.Bool("details")}
			if t := c.String("tail"); t != "all" && t != "" {
				n, err := strconv.Atoi(t)
				if err != nil || n < -1 {
					return fmt.Errorf("--tail: invalid number %q", t)
				}
				o.Tail = n
			}
			var err error
			if o.Since, err = parseTime(c.String("since")); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if o.Until, err = parseTime(c.String("until")); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			s, r, err := findContainer(c, c.Args().First())
			if err != nil {
				return err
			}
			read := container.ReadLogs
			switch r.HostConfig.LogConfig.Type {
			case container.LogNone:
				return &exitError{code: 1, err: container.ErrNoLogReader}
			case container.LogJournald:
				read = func(_ string, o container.LogOpts, stdout, stderr io.Writer) error {
					return container.ReadJournal(r.ID, o, stdout, stderr)
				}
			default:
				if _, err := os.Stat(s.LogPath(r.ID)); os.IsNotExist(err) && !r.State.StartedAt.IsZero() && !o.Follow && !hasRotated(s.LogPath(r.ID)) {
					return fmt.Errorf("container %s ran in the foreground: its output went straight to the caller's stdout and stderr, and no log was kept", r.Name)
				}
			}
			o.Running = func() bool {
				cur, err := s.Find(r.ID)
				return err == nil && (cur.State.Running || cur.State.Restarting)
			}
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			var stdout, stderr = out, os.Stderr
			if o.Follow {
				return read(s.LogPath(r.ID), o, flushWriter{out}, stderr)
			}
			return read(s.LogPath(r.ID), o, stdout, flushStderr{out})
		},
	}
}

// flushWriter flushes after each write, for logs -f.
type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// flushStderr keeps stdout and stderr lines in order.
type flushStderr struct{ out *bufio.Writer }

func (f flushStderr) Write(p []byte) (int, error) {
	if err := f.out.Flush(); err != nil {
		return 0, err
	}
	return os.Stderr.Write(p)
}

// hasRotated tells whether a log has rotated files (its live file may be
// gone while they are not).
func hasRotated(path string) bool {
	m, _ := filepath.Glob(path + ".[0-9]*")
	return len(m) > 0
}
