package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/events"
	"github.com/berth-project/berth/internal/output"
)

func init() {
	register(func() []*cli.Command { return []*cli.Command{eventsCommand()} })
}

func eventsCommand() *cli.Command {
	return &cli.Command{
		Name: "events", Usage: "print events from the journal every berth process writes, and follow new ones",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "show events since a time or a duration ago"},
			&cli.StringFlag{Name: "until", Usage: "stop at a time or a duration ago"},
			&cli.StringSliceFlag{Name: "filter", Usage: "type=, event=, container=, image=, label=, volume= or network= (repeatable)"},
			formatFlag("json, or a Go template over each event"),
		},
		Action: eventsAction,
	}
}

func eventsAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usage(c, "takes no arguments")
	}
	since, err := parseTime(c.String("since"))
	if err != nil {
		return usage(c, "--since: %v", err)
	}
	until, err := parseTime(c.String("until"))
	if err != nil {
		return usage(c, "--until: %v", err)
	}
	filter, err := events.ParseFilter(c.StringSlice("filter"))
	if err != nil {
		return usage(c, "--filter: %v", err)
	}
	printEvent, err := eventPrinter(os.Stdout, c.String("format"))
	if err != nil {
		return usage(c, "%v", err)
	}
	if since.IsZero() && until.IsZero() {
		// As Docker: with neither bound, only what happens from now.
		since = time.Now()
	}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		close(stop)
	}()
	o := events.ReadOpts{Since: since, Until: until, Follow: true, Stop: stop}
	return events.Open(c.String("data-root")).Read(o, func(e events.Event) error {
		if !filter.Match(e) {
			return nil
		}
		return printEvent(e)
	})
}

// eventPrinter prints one event as format says: Docker's line by default,
// one JSON object a line for "json", else the template.
func eventPrinter(w io.Writer, format string) (func(events.Event) error, error) {
	switch format {
	case "":
		return func(e events.Event) error {
			_, err := fmt.Fprintln(w, eventLine(e))
			return err
		}, nil
	case "json":
		return func(e events.Event) error {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}, nil
	}
	t, err := output.Parse(format)
	if err != nil {
		return nil, err
	}
	return func(e events.Event) error { return t.Execute(w, e) }, nil
}

// eventLine is Docker's default: time, type, action, actor, (attributes).
func eventLine(e events.Event) string {
	var b strings.Builder
	b.WriteString(e.When().Format("2006-01-02T15:04:05.000000000Z07:00"))
	fmt.Fprintf(&b, " %s %s %s", e.Type, e.Action, e.Actor.ID)
	if len(e.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(e.Actor.Attributes))
		for k := range e.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := ", "
			if i == 0 {
				sep = " ("
			}
			fmt.Fprintf(&b, "%s%s=%s", sep, k, e.Actor.Attributes[k])
		}
		b.WriteString(")")
	}
	return b.String()
}
