package main

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks string
	rec                                                                                                    *container.Record
}

// statusText is Docker's STATUS column.
func statusText(r *container.Record) string {
	st := r.State
	switch st.Status {
	case container.StatusRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + healthText(st.Health)
	case container.StatusPaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StatusRemoving:
		return "Removing"
	case container.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StatusCreated:
		return "Created"
	}
	return st.Status
}

// healthText is the health in STATUS, as Docker shows it.
func healthText(h *container.Health) string {
	switch {
	case h == nil:
		return ""
	case h.Status == container.HealthStarting:
		return " (health: starting)"
	}
	return " (" + h.Status + ")"
}

func commandText(r *container.Record) string {
	var args []string
	if r.Spec != nil && r.Spec.Process != nil {
		args = r.Spec.Process.Args
	}
	return strings.Join(args, " ")
}

func labelsText(l map[string]string) string {
	var kv []string
	for k, v := range l {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func psRowOf(r *container.Record, noTrunc bool) psRow {
	cmd := commandText(r)
	id := r.ID
	if !noTrunc {
		id = id[:12]
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
	}
	var mounts []string
	for _, m := range r.Mounts {
		if m.Name != "" {
			mounts = append(mounts, m.Name)
		} else {
			mounts = append(mounts, m.Source)
		}
	}
	return psRow{ID: id, Image: r.Config.Image, Command: strconv.Quote(cmd),
		CreatedAt:  r.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: units.HumanDuration(time.Since(r.Created)) + " ago", State: r.State.Status, Status: statusText(r),
		Names: r.Name, Labels: labelsText(r.Config.Labels), Mounts: strings.Join(mounts, ","),
		Networks: networksText(r), Ports: portsText(r), rec: r}
}

// networksText is ps's NETWORKS column: the networks a container is on.
func networksText(r *container.Record) string {
	names := []string{r.HostConfig.NetworkMode}
	if r.NetworkingConfig != nil {
		for n := range r.NetworkingConfig.EndpointsConfig {
			if n != r.HostConfig.NetworkMode {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names[1:])
	return strings.Join(names, ",")
}

// Label returns one label's value, for --format '{{.Label "k"}}'.
func (p psRow) Label(k string) string { return p.rec.Config.Labels[k] }

// psFilter is one --filter key=value of ps.
// find looks up the container before= and since= name.
func psMatch(r *container.Record, filters []string, find func(string) (*container.Record, error)) (bool, error) {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok && k != "label" {
			return false, fmt.Errorf("--filter: bad filter %q (want key=value)", f)
		}
		switch k {
		case "before", "since":
			ref, err := find(v)
			if err != nil {
				return false, fmt.Errorf("--filter %s: %w", k, err)
			}
			if k == "before" && !r.Created.Before(ref.Created) || k == "since" && !r.Created.After(ref.Created) {
				return false, nil
			}
		case "label!":
			// label!=KEY or label!=KEY=VALUE: those without it.
			if r.HasLabels([]string{v}) {
				return false, nil
			}
		case "network":
			if !onNetwork(r, v) {
				return false, nil
			}
		case "publish", "expose":
			ok, err := matchPorts(r, k, v)
			if err != nil || !ok {
				return false, err
			}
		case "status":
			if r.State.Status != v {
				return false, nil
			}
		case "health":
			h := container.HealthNone
			if r.State.Health != nil {
				h = r.State.Health.Status
			}
			if h != v {
				return false, nil
			}
		case "name":
			re, err := regexp.Compile(v)
			if err != nil {
				return false, fmt.Errorf("--filter name: %w", err)
			}
			if !re.MatchString(r.Name) {
				return false, nil
			}
		case "id":
			if !strings.HasPrefix(r.ID, v) {
				return false, nil
			}
		case "label":
			if !r.HasLabels([]string{v}) {
				return false, nil
			}
		case "exited":
			n, err := strconv.Atoi(v)
			if err != nil {
				return false, fmt.Errorf("--filter exited: %w", err)
			}
			if r.State.Status != container.StatusExited || r.State.ExitCode != n {
				return false, nil
			}
		case "ancestor":
			if r.Config.Image != v && !strings.HasPrefix(strings.TrimPrefix(r.Image, "sha256:"), strings.TrimPrefix(v, "sha256:")) {
				return false, nil
			}
		case "volume":
			found := false
			for _, m := range r.Mounts {
				if m.Name == v || m.Source == v || m.Destination == v {
					found = true
				}
			}
			if !found {
				return false, nil
			}
		default:
			return false, fmt.Errorf("--filter: unknown filter %q", k)
		}
	}
	return true, nil
}

func psCommand(name string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: "list containers",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers, not just running ones"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the latest created container"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Value: -1, Usage: "show n last created containers"},
			&cli.StringFlag{Name: "format", Usage: "Go template, or table TEMPLATE"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: status=, name=, id=, label=, label!=, exited=, ancestor=, volume=, before=, since=, network=, publish=, expose=, health="},
			&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "show sizes: the container's changes and, as virtual, with its image"},
		},
		Action: func(c *cli.Context) error {
			st, err := openStores(c)
			if err != nil {
				return err
			}
			s := st.containers
			recs, err := s.List()
			if err != nil {
				return err
			}
			all := c.Bool("all") || c.Bool("latest") || c.Int("last") >= 0
			var rows []psRow
			for _, r := range recs {
				if !all && !r.State.Running && len(c.StringSlice("filter")) == 0 {
					continue
				}
				s.WithHealth(r)
				ok, err := psMatch(r, c.StringSlice("filter"), s.Find)
				if err != nil {
					return err
				}
				if ok {
					row := psRowOf(r, c.Bool("no-trunc"))
					if c.Bool("size") {
						var image int64
						if img, err := st.images.Resolve(r.Image); err == nil {
							image = img.Size
						}
						row.Size = sizeText(s.ChangesSize(r.ID), image)
					}
					rows = append(rows, row)
				}
			}
			n := c.Int("last")
			if c.Bool("latest") {
				n = 1
			}
			if n >= 0 && len(rows) > n {
				rows = rows[:n]
			}
			format := c.String("format")
			if c.Bool("quiet") {
				format = "{{.ID}}"
			}
			if format == "" {
				format = "table"
			}
			cols := "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
			if c.Bool("size") {
				cols += "\t{{.Size}}"
			}
			return printTable(format, cols,
				map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Names": "NAMES"}, rows)
		},
	}
}
