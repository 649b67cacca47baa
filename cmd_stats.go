package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

type statsRow struct {
	ID, Container, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

// statsRows formats samples as stats prints them.
func statsRows(samples []container.Sample, noTrunc bool) []statsRow {
	var rows []statsRow
	for _, smp := range samples {
		r := smp.Record
		row := statsRow{ID: r.ID, Container: r.ID, Name: r.Name, CPUPerc: "--", MemUsage: "-- / --", MemPerc: "--",
			NetIO: "--", BlockIO: "--", PIDs: "--"}
		if !noTrunc {
			row.ID, row.Container = r.ID[:12], r.ID[:12]
		}
		if smp.OK {
			st, limit := smp.Stats, smp.MemoryLimit
			row.CPUPerc = fmt.Sprintf("%.2f%%", smp.CPUPercent)
			row.MemUsage = units.BytesSize(st.MemoryUsage) + " / " + units.BytesSize(limit)
			if limit > 0 {
				row.MemPerc = fmt.Sprintf("%.2f%%", float64(st.MemoryUsage)/float64(limit)*100)
			}
			row.NetIO = "0B / 0B"
			row.BlockIO = units.BytesSize(st.IOReadBytes) + " / " + units.BytesSize(st.IOWriteBytes)
			row.PIDs = fmt.Sprint(st.PidsCurrent)
		}
		rows = append(rows, row)
	}
	return rows
}

func statsCommand() *cli.Command {
	return &cli.Command{
		Name: "stats", Usage: "show containers' resource usage from their cgroups", ArgsUsage: "[CONTAINER...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers, not just running ones"},
			&cli.BoolFlag{Name: "no-stream", Usage: "print one sample and exit"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.StringFlag{Name: "format", Usage: "Go template, or table TEMPLATE"},
		},
		Action: func(c *cli.Context) error {
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			var recs []*container.Record
			if c.NArg() > 0 {
				for _, ref := range c.Args().Slice() {
					r, err := s.Find(ref)
					if err != nil {
						return err
					}
					recs = append(recs, r)
				}
			} else {
				all, err := s.List()
				if err != nil {
					return err
				}
				for _, r := range all {
					if r.State.Running || c.Bool("all") {
						recs = append(recs, r)
					}
				}
			}
			format := c.String("format")
			if format == "" {
				format = "table"
			}
			labels := map[string]string{"ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
				"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O"}
			def := "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
			if c.Bool("no-stream") {
				return printTable(format, def, labels, statsRows(s.Stats(recs, 500*time.Millisecond), c.Bool("no-trunc")))
			}
			stop := make(chan os.Signal, 1)
			signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(stop)
			for {
				rows := statsRows(s.Stats(recs, time.Second), c.Bool("no-trunc"))
				fmt.Print("\033[2J\033[H")
				if err := printTable(format, def, labels, rows); err != nil {
					return err
				}
				select {
				case <-stop:
					return nil
				default:
				}
			}
		},
	}
}
