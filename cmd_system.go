package main

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/build"
	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/output"
	"github.com/berth-project/berth/internal/units"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{infoCommand(), versionCommand(), &cli.Command{
			Name: "system", Usage: "manage berth's data",
			Subcommands: []*cli.Command{systemDfCommand(), systemPruneCommand(), infoCommand(), eventsCommand()},
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
		Name: "df", Usage: "show disk usage",
		Flags:  []cli.Flag{formatFlag("Go template, 'table TEMPLATE' or json")},
		Before: func(c *cli.Context) error { return output.Check(c.String("format")) },
		Action: func(c *cli.Context) error {
			st, err := openStores(c)
			if err != nil {
				return err
			}
			s := st.containers
			imgs, err := st.images.List()
			if err != nil {
				return err
			}
			recs, err := s.List()
			if err != nil {
				return err
			}
			used := map[string]bool{}
			var ctrSize, ctrReclaim int64
			active := 0
			for _, r := range recs {
				used[r.Image] = true
				sz := s.ChangesSize(r.ID)
				ctrSize += sz
				if r.State.Running {
					active++
				} else {
					ctrReclaim += sz
				}
			}
			var imgSize, imgReclaim int64
			activeImgs := 0
			for _, img := range imgs {
				imgSize += img.Size
				if used[img.ID.String()] {
					activeImgs++
				} else {
					imgReclaim += img.Size
				}
			}
			usedVols := map[string]bool{}
			for _, r := range recs {
				for _, m := range r.Mounts {
					if m.Type == "volume" {
						usedVols[m.Name] = true
					}
				}
			}
			vols, err := st.volumes.List()
			if err != nil {
				return err
			}
			var volSize, volReclaim int64
			activeVols := 0
			for _, v := range vols {
				size, _ := st.volumes.Size(v.Name) // one removed meanwhile counts as empty
				volSize += size
				if usedVols[v.Name] {
					activeVols++
				} else {
					volReclaim += size
				}
			}
			rows := []dfRow{
				{Type: "Images", TotalCount: len(imgs), Active: activeImgs, size: imgSize, reclaim: imgReclaim},
				{Type: "Containers", TotalCount: len(recs), Active: active, size: ctrSize, reclaim: ctrReclaim},
				{Type: "Local Volumes", TotalCount: len(vols), Active: activeVols, size: volSize, reclaim: volReclaim},
			}
			cacheRow, err := buildCacheUsage(st.images, c.String("data-root"), imgs)
			if err != nil {
				return err
			}
			rows = append(rows, cacheRow)
			for i := range rows {
				rows[i].Size, rows[i].Reclaimable = units.HumanSize(rows[i].size), units.HumanSize(rows[i].reclaim)
			}
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
			n, err = build.Prune(st.images, c.String("data-root"), c.Bool("all"))
			if err != nil {
				return err
			}
			reclaimed += n
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(reclaimed))
			return nil
		},
	}
}
