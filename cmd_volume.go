package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/output"
	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/volume"
)

func init() {
	register(func() []*cli.Command {
		subs := []*cli.Command{volumeCreateCommand(), volumeLsCommand(), volumeInspectCommand(), volumeRmCommand(), volumePruneCommand()}
		return []*cli.Command{{Name: "volume", Usage: "manage volumes", Subcommands: subs}}
	})
}

// openVolumes opens the volume store with the container layer's in-use hook.
func openVolumes(c *cli.Context) (*volume.Store, error) {
	return volume.Open(c.String("data-root"), container.Records{DataRoot: c.String("data-root")})
}

func volumeCreateCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a volume", ArgsUsage: "[VOLUME]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "local", Usage: "volume driver (only local)"},
			&cli.StringSliceFlag{Name: "label", Usage: "set metadata (key=value)"},
			&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver options (berth's local driver takes none)"},
			&cli.StringFlag{Name: "name", Hidden: true, Usage: "volume name (Docker's old spelling)"},
		},
		Action: func(c *cli.Context) error {
			// Everything is checked before the stores are opened, so bad
			// input leaves nothing behind.
			if c.NArg() > 1 {
				if strings.HasPrefix(c.Args().Get(1), "-") {
					return fmt.Errorf("volume create: options go before the volume name (%s after %s)", c.Args().Get(1), c.Args().First())
				}
				return errors.New("volume create: usage: volume create [OPTIONS] [VOLUME] (at most one name)")
			}
			name := c.Args().First()
			if n := c.String("name"); n != "" {
				if name != "" && name != n {
					return errors.New("volume create: conflicting options: either specify --name or provide positional arg, not both")
				}
				name = n
			}
			if d := c.String("driver"); d != "local" {
				return fmt.Errorf("volume create: unknown volume driver %q (berth has only local)", d)
			}
			if name != "" {
				if err := volume.ValidateName(name); err != nil {
					return fmt.Errorf("volume create: %w", err)
				}
			}
			labels, err := runconfig.ParseLabels(c.StringSlice("label"))
			if err != nil {
				return err
			}
			opts, err := runconfig.ParseKV("--opt", c.StringSlice("opt"))
			if err != nil {
				return err
			}
			if err := volume.ValidateOptions(opts); err != nil {
				return fmt.Errorf("volume create: %w", err)
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			v, err := vs.Create(name, labels, opts)
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
}

// volumeRow is a line of volume ls, with the fields Docker's --format knows.
type volumeRow struct {
	Driver, Name, Mountpoint, Scope, Labels, Links, Size, CreatedAt string
	labels                                                          map[string]string
}

// Label is {{.Label "key"}}: one label's value.
func (r volumeRow) Label(name string) string { return r.labels[name] }

// volumeFilter is parsed --filter flags: values of one key are ORed,
// except label, whose values must all hold (as in Docker); keys are ANDed.
type volumeFilter map[string][]string

// parseVolumeFilters checks filters up front, so a bad one is an error even
// when there is nothing to filter.
func parseVolumeFilters(list []string, allowed ...string) (volumeFilter, error) {
	f := volumeFilter{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("--filter %q: bad format of filter (expected name=value)", kv)
		}
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("--filter: invalid filter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
		switch k {
		case "name", "driver":
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("--filter %s=%s: %w", k, v, err)
			}
		case "dangling", "all":
			if _, err := filterBool(k, v); err != nil {
				return nil, err
			}
		case "label", "label!":
			if strings.HasPrefix(v, "=") || v == "" {
				return nil, fmt.Errorf("--filter %s=%s: want key or key=value", k, v)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func filterBool(k, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, fmt.Errorf("--filter: invalid filter '%s=%s' (want true or false)", k, v)
}

func labelMatches(labels map[string]string, want string) bool {
	k, v, hasV := strings.Cut(want, "=")
	got, ok := labels[k]
	return ok && (!hasV || got == v)
}

// match says whether v passes the filters; users is only called (it reads
// every container) when a dangling filter needs it.
func (f volumeFilter) match(v *volume.Volume, users func(string) ([]string, error)) (bool, error) {
	for _, want := range f["label"] {
		if !labelMatches(v.Labels, want) {
			return false, nil
		}
	}
	for _, unwanted := range f["label!"] {
		if labelMatches(v.Labels, unwanted) {
			return false, nil
		}
	}
	anyMatch := func(key, s string) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		for _, re := range vals {
			if ok, _ := regexp.MatchString(re, s); ok { // compiled in parseVolumeFilters
				return true
			}
		}
		return false
	}
	if !anyMatch("name", v.Name) || !anyMatch("driver", v.Driver) {
		return false, nil
	}
	if vals := f["dangling"]; len(vals) > 0 {
		u, err := users(v.Name)
		if err != nil {
			return false, err
		}
		ok := false
		for _, val := range vals {
			want, _ := filterBool("dangling", val)
			ok = ok || (len(u) == 0) == want
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func volumeLsCommand() *cli.Command {
	return &cli.Command{
		Name: "ls", Aliases: []string{"list"}, Usage: "list volumes",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only display volume names"},
			&cli.StringFlag{Name: "format", Usage: "Go template, 'table TEMPLATE' or json"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "name=REGEXP, label=KEY[=VALUE], dangling=true|false, driver=local"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return errors.New("volume ls: takes no arguments")
			}
			filters, err := parseVolumeFilters(c.StringSlice("filter"), "name", "label", "dangling", "driver")
			if err != nil {
				return fmt.Errorf("volume ls: %w", err)
			}
			format := c.String("format")
			switch {
			case c.Bool("quiet"):
				format = "{{.Name}}"
			case format == "":
				format = "table"
			case format == "json":
				format = "{{json .}}"
			}
			if err := checkTemplate(format); err != nil {
				return fmt.Errorf("volume ls: %w", err)
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			vols, err := vs.List()
			if err != nil {
				return err
			}
			rows := []volumeRow{}
			for _, v := range vols {
				ok, err := filters.match(v, vs.Users)
				if err != nil {
					return err
				}
				if ok {
					rows = append(rows, volumeRow{Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope,
						Labels: labelsText(v.Labels), Links: "N/A", Size: "N/A",
						CreatedAt: v.CreatedAt.Local().Format("2006-01-02 15:04:05 -0700 MST"), labels: v.Labels})
				}
			}
			return printTable(format, "{{.Driver}}\t{{.Name}}", map[string]string{"Name": "VOLUME NAME", "CreatedAt": "CREATED AT"}, rows)
		},
	}
}

// checkTemplate parses a --format template before any store is opened, so
// a bad one leaves nothing behind.
func checkTemplate(spec string) error { return output.Check(spec) }

func volumeInspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "display detailed information on volumes", ArgsUsage: "VOLUME...",
		Flags:  inspectFlags(),
		Action: func(c *cli.Context) error { return inspectAction(c, "volume") },
	}
}

func volumeRmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Aliases: []string{"remove"}, Usage: "remove volumes", ArgsUsage: "VOLUME...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "no error for a volume that does not exist"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usage(c, "needs at least one volume")
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			var failed bool
			for _, n := range c.Args().Slice() {
				// As in Docker, -f forgives a missing volume but never
				// removes one a container uses: that would empty it under
				// the container.
				err := vs.Remove(n, false)
				if err != nil && !(c.Bool("force") && errors.Is(err, volume.ErrNotFound)) {
					fmt.Fprintf(os.Stderr, "%s: %s\n", c.App.Name, oneLine(err.Error()))
					failed = true
					continue
				}
				fmt.Println(n)
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
}

func volumePruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "remove unused anonymous volumes (all unused ones with -a)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove unused named volumes too"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not prompt for confirmation"},
			&cli.StringSliceFlag{Name: "filter", Usage: "label=KEY[=VALUE], label!=KEY[=VALUE], all=true|false"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return errors.New("volume prune: takes no arguments")
			}
			filters, err := parseVolumeFilters(c.StringSlice("filter"), "label", "label!", "all")
			if err != nil {
				return fmt.Errorf("volume prune: %w", err)
			}
			all := c.Bool("all")
			for _, v := range filters["all"] {
				b, _ := filterBool("all", v) // checked by parseVolumeFilters
				all = all || b
			}
			delete(filters, "all")
			msg := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				msg = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !c.Bool("force") && !confirm(msg) {
				return nil
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			removed, size, err := vs.PruneMatching(all, func(v *volume.Volume) bool {
				ok, _ := filters.match(v, nil) // no dangling filter here, so no error
				return ok
			})
			sort.Strings(removed)
			printDeleted("Volumes", removed)
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(size))
			return err
		},
	}
}
