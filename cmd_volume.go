package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/volume"
)

func init() {
	register(&cli.Command{
		Name: "volume", Usage: "manage volumes",
		Subcommands: []*cli.Command{volumeCreateCommand(), volumeLsCommand(), volumeInspectCommand(), volumeRmCommand(), volumePruneCommand()},
	})
}

// openVolumes opens the volume store with the container layer's in-use hook.
func openVolumes(c *cli.Context) (*volume.Store, error) {
	s, err := openContainers(c)
	if err != nil {
		return nil, err
	}
	return s.Volumes.(*volume.Store), nil
}

func volumeCreateCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a volume", ArgsUsage: "[NAME]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "local", Usage: "volume driver (local)"},
			&cli.StringSliceFlag{Name: "label", Usage: "set a label (key=value)"},
			&cli.StringSliceFlag{Name: "opt", Aliases: []string{"o"}, Usage: "driver options (none are supported by berth's local driver)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return errors.New("volume create: at most one name")
			}
			if d := c.String("driver"); d != "local" {
				return fmt.Errorf("volume create: unknown driver %q (only local)", d)
			}
			labels, err := kvMap(c.StringSlice("label"), "--label")
			if err != nil {
				return err
			}
			opts, err := kvMap(c.StringSlice("opt"), "--opt")
			if err != nil {
				return err
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			v, err := vs.Create(c.Args().First(), labels, opts)
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
}

type volumeRow struct {
	Driver, Name, Mountpoint, Scope, Labels string
	CreatedAt                               string
}

func volumeMatch(vs *volume.Store, v *volume.Volume, filters []string) (bool, error) {
	for _, f := range filters {
		k, val, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			if !strings.Contains(v.Name, val) {
				return false, nil
			}
		case "label":
			lk, lv, hasV := strings.Cut(val, "=")
			got, ok := v.Labels[lk]
			if !ok || hasV && got != lv {
				return false, nil
			}
		case "dangling":
			users, err := vs.Users(v.Name)
			if err != nil {
				return false, err
			}
			want := val == "true" || val == "1"
			if (len(users) == 0) != want {
				return false, nil
			}
		case "driver":
			if val != "local" {
				return false, nil
			}
		default:
			return false, fmt.Errorf("--filter: unknown filter %q (name, label, dangling, driver)", k)
		}
	}
	return true, nil
}

func volumeLsCommand() *cli.Command {
	return &cli.Command{
		Name: "ls", Aliases: []string{"list"}, Usage: "list volumes",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only names"},
			&cli.StringFlag{Name: "format", Usage: "Go template, or table TEMPLATE"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "name=, label=, dangling=true|false"},
		},
		Action: func(c *cli.Context) error {
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			vols, err := vs.List()
			if err != nil {
				return err
			}
			var rows []volumeRow
			for _, v := range vols {
				ok, err := volumeMatch(vs, v, c.StringSlice("filter"))
				if err != nil {
					return err
				}
				if ok {
					rows = append(rows, volumeRow{Driver: v.Driver, Name: v.Name, Mountpoint: v.Mountpoint, Scope: v.Scope,
						Labels: labelsText(v.Labels), CreatedAt: v.CreatedAt.Format("2006-01-02 15:04:05 -0700 MST")})
				}
			}
			format := c.String("format")
			if c.Bool("quiet") {
				format = "{{.Name}}"
			}
			if format == "" {
				format = "table"
			}
			return printTable(format, "{{.Driver}}\t{{.Name}}", map[string]string{"Name": "VOLUME NAME"}, rows)
		},
	}
}

func volumeInspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "show volumes in detail", ArgsUsage: "VOLUME...",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template over the JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return errors.New("volume inspect: needs a volume")
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			var objs []any
			var missing error
			for _, n := range c.Args().Slice() {
				v, err := vs.Get(n)
				if err != nil {
					missing = err
					fmt.Fprintf(os.Stderr, "Error: %s\n", err)
					continue
				}
				objs = append(objs, v)
			}
			if err := printInspect(c.String("format"), objs); err != nil {
				return err
			}
			if missing != nil {
				return exitCode(1)
			}
			return nil
		},
	}
}

func volumeRmCommand() *cli.Command {
	return &cli.Command{
		Name: "rm", Aliases: []string{"remove"}, Usage: "remove volumes", ArgsUsage: "VOLUME...",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "remove even when in use; no error when missing"}},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return errors.New("volume rm: needs a volume")
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			var last error
			for _, n := range c.Args().Slice() {
				err := vs.Remove(n, c.Bool("force"))
				if err != nil && !(c.Bool("force") && errors.Is(err, volume.ErrNotFound)) {
					fmt.Fprintf(os.Stderr, "Error: %s\n", oneLine(err.Error()))
					last = err
					continue
				}
				fmt.Println(n)
			}
			if last != nil {
				return exitCode(1)
			}
			return nil
		},
	}
}

func volumePruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "remove unused anonymous volumes (all unused with -a)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "named volumes too"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
		},
		Action: func(c *cli.Context) error {
			if !c.Bool("force") && !confirm("WARNING! This will remove unused volumes.") {
				return nil
			}
			vs, err := openVolumes(c)
			if err != nil {
				return err
			}
			removed, size, err := vs.Prune(c.Bool("all"))
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Println("Deleted Volumes:")
				for _, n := range removed {
					fmt.Println(n)
				}
				fmt.Println()
			}
			fmt.Printf("Total reclaimed space: %s\n", humanSize(size))
			return nil
		},
	}
}
