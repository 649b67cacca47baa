package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

type statsRow struct {
	ID, Container, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

// hostMemory is MemTotal, the limit stats shows for an unlimited container.
func hostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb uint64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

// sampleStats reads every container's cgroup twice, interval apart, for CPU %.
func sampleStats(s *container.Store, recs []*container.Record, interval time.Duration, noTrunc bool) []statsRow {
	first := map[string]*cgroupfs.Stats{}
	for _, r := range recs {
		if st, err := s.Runtime.Stats(r.ID); err == nil {
			first[r.ID] = st
		}
	}
	t0 := time.Now()
	time.Sleep(interval)
	elapsed := time.Since(t0)
	total := hostMemory()
	var rows []statsRow
	for _, r := range recs {
		row := statsRow{ID: r.ID, Container: r.ID, Name: r.Name, CPUPerc: "--", MemUsage: "-- / --", MemPerc: "--",
			NetIO: "--", BlockIO: "--", PIDs: "--"}
		if !noTrunc {
			row.ID, row.Container = r.ID[:12], r.ID[:12]
		}
		st, err := s.Runtime.Stats(r.ID)
		if a, ok := first[r.ID]; ok && err == nil {
			cpu := float64(st.CPUUsageNanos-a.CPUUsageNanos) / float64(elapsed.Nanoseconds()) * 100
			limit := st.MemoryLimit
			if limit == 0 || limit > total && total > 0 {
				limit = total
			}
			row.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
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
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
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
				return printTable(format, def, labels, sampleStats(s, recs, 500*time.Millisecond, c.Bool("no-trunc")))
			}
			stop := make(chan os.Signal, 1)
			signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(stop)
			for {
				rows := sampleStats(s, recs, time.Second, c.Bool("no-trunc"))
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
	recs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var until time.Time
	var rest []string
	for _, f := range filters {
		if v, ok := strings.CutPrefix(f, "until="); ok {
			if until, err = parseTime(v); err != nil {
				return nil, 0, fmt.Errorf("--filter until: %w", err)
			}
			continue
		}
		if !strings.HasPrefix(f, "label=") {
			return nil, 0, fmt.Errorf("--filter: unsupported filter %q (label=, until=)", f)
		}
		rest = append(rest, f)
	}
	var removed []string
	var reclaimed int64
	for _, r := range recs {
		if r.State.Running || r.State.Restarting || r.State.Status == container.StatusRemoving || s.Busy(r.ID) {
			continue
		}
		if !until.IsZero() && r.Created.After(until) {
			continue
		}
		if ok, err := psMatch(r, rest); err != nil || !ok {
			if err != nil {
				return nil, 0, err
			}
			continue
		}
		size := container.DirSize(s.Dir(r.ID) + "/upper")
		if err := s.Remove(r.ID, container.RemoveOpts{}); err != nil {
			if errors.Is(err, container.ErrNotFound) {
				continue
			}
			return removed, reclaimed, err
		}
		removed = append(removed, r.ID)
		reclaimed += size
	}
	// What crashed berths left half-made has no record to filter on.
	half, err := s.RemoveAbandoned("")
	removed = append(removed, half...)
	return removed, reclaimed, err
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
