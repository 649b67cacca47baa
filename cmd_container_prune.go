package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

func containerPruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "remove all stopped containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
			&cli.StringSliceFlag{Name: "filter", Usage: "label=, until="},
		},
		Action: func(c *cli.Context) error {
			if !c.Bool("force") && !confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			removed, reclaimed, err := pruneContainers(s, c.StringSlice("filter"))
			if err != nil {
				return err
			}
			printDeleted("Containers", removed)
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(reclaimed))
			return nil
		},
	}
}

// pruneContainers removes stopped containers matching the filters.
func pruneContainers(s *container.Store, filters []string) ([]string, int64, error) {
	var o container.PruneOpts
	for _, f := range filters {
		if v, ok := strings.CutPrefix(f, "until="); ok {
			until, err := parseTime(v)
			if err != nil {
				return nil, 0, fmt.Errorf("--filter until: %w", err)
			}
			o.Until = until
			continue
		}
		v, ok := strings.CutPrefix(f, "label=")
		if !ok {
			return nil, 0, fmt.Errorf("--filter: unsupported filter %q (label=, until=)", f)
		}
		o.Labels = append(o.Labels, v)
	}
	return s.Prune(o)
}

// confirm asks a yes/no question on the terminal; no answer is no.
func confirm(msg string) bool {
	fmt.Printf("%s\nAre you sure you want to continue? [y/N] ", msg)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// printDeleted lists what a prune removed, as Docker does.
func printDeleted(kind string, names []string) {
	if len(names) == 0 {
		return
	}
	fmt.Printf("Deleted %s:\n", kind)
	for _, n := range names {
		fmt.Println(n)
	}
	fmt.Println()
}
