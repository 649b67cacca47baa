package main

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{infoCommand(), versionCommand(), &cli.Command{
			Name: "system", Usage: "manage berth's data",
			Subcommands: []*cli.Command{systemDfCommand(), systemPruneCommand(), infoCommand()},
		}}
	})
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name: "version", Usage: "show berth's version",
		Action: func(c *cli.Context) error {
			fmt.Printf("Version:    %s\nGo version: %s\nOS/Arch:    %s/%s\nOCI spec:   runtime %s\n",
				version, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH, "1.2")
			return nil
		},
	}
}

func infoCommand() *cli.Command {
	return &cli.Command{
		Name: "info", Usage: "show system-wide information",
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
			mode := map[cgroupfs.Mode]string{cgroupfs.Unified: "2", cgroupfs.Hybrid: "1 (hybrid)", cgroupfs.Legacy: "1"}[cgroupfs.DetectMode()]
			fmt.Printf("Containers: %d\n Running: %d\n Paused: %d\n Stopped: %d\nImages: %d\n", len(recs), running, paused, stopped, len(imgs))
			fmt.Printf("Server Version: %s (daemonless)\nStorage Driver: overlay\nLogging Driver: json-file\n", version)
			fmt.Printf("Cgroup Driver: cgroupfs\nCgroup Version: %s\nKernel Version: %s\n", mode, kernel)
			fmt.Printf("Operating System: %s\nArchitecture: %s\nCPUs: %d\nTotal Memory: %s\n", osName(), goruntime.GOARCH, goruntime.NumCPU(), units.BytesSize(container.HostMemory()))
			fmt.Printf("Berth Root Dir: %s\nState Root Dir: %s\n", c.String("data-root"), c.String("root"))
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

func systemDfCommand() *cli.Command {
	return &cli.Command{
		Name: "df", Usage: "show disk usage",
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
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", len(imgs), activeImgs, units.HumanSize(imgSize), units.HumanSize(imgReclaim))
			fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s\n", len(recs), active, units.HumanSize(ctrSize), units.HumanSize(ctrReclaim))
			fmt.Fprintf(tw, "Local Volumes\t%d\t%d\t%s\t%s\n", len(vols), activeVols, units.HumanSize(volSize), units.HumanSize(volReclaim))
			return tw.Flush()
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
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(reclaimed))
			return nil
		},
	}
}
