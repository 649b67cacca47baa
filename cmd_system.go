package main

import (
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/output"
	"github.com/berth-project/berth/internal/units"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{infoCommand(), versionCommand(), &cli.Command{
			Name: "system", Usage: "manage berth's data",
			Subcommands: []*cli.Command{systemDfCommand(), systemPruneCommand(), infoCommand(), eventsCommand(), systemRestoreCommand()},
		}}
	})
}

// versionInfo is what version prints, in Docker's shape: berth is its
// own engine, so Server says the same as Client.
type versionInfo struct {
	Client, Server versionPart
}

type versionPart struct {
	Version, GoVersion, Os, Arch, OCISpec string
}

const versionTemplate = `Version:    {{.Client.Version}}
Go version: {{.Client.GoVersion}}
OS/Arch:    {{.Client.Os}}/{{.Client.Arch}}
OCI spec:   runtime {{.Client.OCISpec}}`

func versionCommand() *cli.Command {
	return &cli.Command{
		Name: "version", Usage: "show berth's version",
		Flags: []cli.Flag{formatFlag("Go template, or json")},
		Action: func(c *cli.Context) error {
			p := versionPart{Version: version, GoVersion: goruntime.Version(), Os: goruntime.GOOS, Arch: goruntime.GOARCH, OCISpec: "1.2"}
			return output.One(os.Stdout, c.String("format"), versionTemplate, versionInfo{Client: p, Server: p})
		},
	}
}

// formatFlag is --format for commands that print one object or a list.
func formatFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: usage}
}

// systemInfo is what info prints, with Docker's field names.
type systemInfo struct {
	Containers, ContainersRunning, ContainersPaused, ContainersStopped, Images int
	ServerVersion, Driver, LoggingDriver, CgroupDriver, CgroupVersion          string
	KernelVersion, OperatingSystem, OSType, Architecture                       string
	NCPU                                                                       int
	MemTotal                                                                   int64
	DockerRootDir, StateRootDir                                                string
}

// TotalMemory is MemTotal for people.
func (i systemInfo) TotalMemory() string { return units.BytesSize(uint64(i.MemTotal)) }

const infoTemplate = `Containers: {{.Containers}}
 Running: {{.ContainersRunning}}
 Paused: {{.ContainersPaused}}
 Stopped: {{.ContainersStopped}}
Images: {{.Images}}
Server Version: {{.ServerVersion}}
Storage Driver: {{.Driver}}
Logging Driver: {{.LoggingDriver}}
Cgroup Driver: {{.CgroupDriver}}
Cgroup Version: {{.CgroupVersion}}
Kernel Version: {{.KernelVersion}}
Operating System: {{.OperatingSystem}}
OSType: {{.OSType}}
Architecture: {{.Architecture}}
CPUs: {{.NCPU}}
Total Memory: {{.TotalMemory}}
Berth Root Dir: {{.DockerRootDir}}
State Root Dir: {{.StateRootDir}}`

func infoCommand() *cli.Command {
	return &cli.Command{
		Name: "info", Usage: "show system-wide information",
		Flags:  []cli.Flag{formatFlag("Go template, or json")},
		Before: func(c *cli.Context) error { return output.Check(c.String("format")) },
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
			var running, paused, stopped int
			for _, r := range recs {
				switch {
				case r.State.Paused:
					paused++
				case r.State.Running:
					running++
				default:
					stopped++
				}
			}
			imgs, err := st.images.List()
			if err != nil {
				return err
			}
			kernel := "unknown"
			if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
				kernel = string(b[:len(b)-1])
			}
			mode := map[cgroupfs.Mode]string{cgroupfs.Unified: "2", cgroupfs.Hybrid: "1", cgroupfs.Legacy: "1"}[cgroupfs.DetectMode()]
			info := systemInfo{Containers: len(recs), ContainersRunning: running, ContainersPaused: paused, ContainersStopped: stopped,
				Images: len(imgs), ServerVersion: version, Driver: "overlay", LoggingDriver: "json-file", CgroupDriver: "cgroupfs",
				CgroupVersion: mode, KernelVersion: kernel, OperatingSystem: osName(), OSType: goruntime.GOOS, Architecture: goruntime.GOARCH,
				NCPU: goruntime.NumCPU(), MemTotal: int64(container.HostMemory()), DockerRootDir: c.String("data-root"), StateRootDir: c.String("root")}
			if err := output.One(os.Stdout, c.String("format"), infoTemplate, info); err != nil {
				return err
			}
			return nil
		},
	}
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return goruntime.GOOS
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return goruntime.GOOS
}

// dfRow is a line of system df, with Docker's field names.
type dfRow struct {
	Type               string
	TotalCount, Active int
	Size, Reclaimable  string
	size, reclaim      int64
}

func systemDfCommand() *cli.Command {
	return &cli.Command{
		Name: "df", Usage: "show disk usage (shared image layers counted once)",
		Flags: []cli.Flag{formatFlag("Go template, 'table TEMPLATE' or json"),
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "show every image, container and volume"}},
		Before: func(c *cli.Context) error { return output.Check(c.String("format")) },
		Action: func(c *cli.Context) error {
			st, err := openStores(c)
			if err != nil {
				return err
			}
			du, err := measureDisk(st)
			if err != nil {
				return err
			}
			if c.Bool("verbose") {
				if c.String("format") != "" {
					return errors.New("system df: --verbose and --format cannot be combined")
				}
				return du.printVerbose()
			}
			rows := du.summary()
			imgs := make([]*image.Image, len(du.images))
			for i, d := range du.images {
				imgs[i] = d.img
			}
			cacheRow, err := buildCacheUsage(c, st.images, imgs)
			if err != nil {
				return err
			}
			cacheRow.Size, cacheRow.Reclaimable = units.HumanSize(cacheRow.size), units.HumanSize(cacheRow.reclaim)
			rows = append(rows, cacheRow)
			return printTable(c.String("format"), "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
				map[string]string{"TotalCount": "TOTAL"}, rows)
		},
	}
}

func systemPruneCommand() *cli.Command {
	return &cli.Command{
		Name: "prune", Usage: "remove stopped containers, unused images (dangling, or all with -a), other berth builds' helper programs that nothing runs and, with --volumes, unused volumes",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "remove all unused images, not just dangling ones"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "do not ask for confirmation"},
			&cli.BoolFlag{Name: "volumes", Usage: "prune anonymous volumes too"},
		},
		Action: func(c *cli.Context) error {
			if !c.Bool("force") && !confirm("WARNING! This will remove all stopped containers, unused images and build cache.") {
				return nil
			}
			st, err := openStores(c)
			if err != nil {
				return err
			}
			s := st.containers
			removed, reclaimed, err := s.Prune(container.PruneOpts{})
			if err != nil {
				return err
			}
			printDeleted("Containers", removed)
			if c.Bool("volumes") {
				vols, n, err := st.volumes.Prune(false)
				if err != nil {
					return err
				}
				reclaimed += n
				printDeleted("Volumes", vols)
			}
			imgs, n, err := st.images.Prune(c.Bool("all"))
			if err != nil {
				return err
			}
			reclaimed += n
			printDeleted("Images", imgs)
			helpers, n, err := s.PruneHelpers()
			if err != nil {
				return err
			}
			reclaimed += n
			printDeleted("Helper programs", helpers)
			n, err = pruneBuildCache(c, st.images, c.Bool("all"))
			if err != nil {
				return err
			}
			reclaimed += n
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(reclaimed))
			return nil
		},
	}
}

// systemRestoreCommand starts again, after a reboot, the containers whose
// restart policy says so (container.RestartOnBoot): with no daemon to do
// it at its start as Docker's does, the berth-restart.service unit that
// make install ships runs this at boot.
func systemRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "start the containers that --restart always or unless-stopped (unless stopped by the user) brings back after a reboot",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usage(c, "takes no arguments")
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			// List records the exits a reboot hid (the processes and the
			// state under the state root are gone).
			recs, err := s.List()
			if err != nil {
				return err
			}
			var failed bool
			for i := len(recs) - 1; i >= 0; i-- { // oldest first, as they were made
				r := recs[i]
				if !container.RestartOnBoot(r) {
					continue
				}
				if err := startDetached(c, s, r); err != nil {
					fmt.Fprintf(os.Stderr, "%s: start %s: %s\n", c.App.Name, r.Name, oneLine(err.Error()))
					failed = true
					continue
				}
				fmt.Println(r.Name)
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
}
