package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/output"
)

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type containerInspect struct {
	ID              string                     `json:"Id"`
	Created         time.Time                  `json:"Created"`
	Path            string                     `json:"Path"`
	Args            []string                   `json:"Args"`
	State           container.State            `json:"State"`
	Image           string                     `json:"Image"`
	LogPath         string                     `json:"LogPath"`
	Name            string                     `json:"Name"`
	RestartCount    int                        `json:"RestartCount"`
	Driver          string                     `json:"Driver"`
	Platform        string                     `json:"Platform"`
	HostConfig      container.HostConfig       `json:"HostConfig"`
	GraphDriver     graphDriver                `json:"GraphDriver"`
	Mounts          []container.MountPoint     `json:"Mounts"`
	Config          container.Config           `json:"Config"`
	NetworkSettings *container.NetworkSettings `json:"NetworkSettings"`
	// CreateCommand is berth's own, as podman's (generate systemd --new).
	CreateCommand []string `json:"CreateCommand,omitempty"`
	// With --size.
	SizeRw     *int64 `json:"SizeRw,omitempty"`
	SizeRootFs *int64 `json:"SizeRootFs,omitempty"`
}

func inspectContainer(s *container.Store, r *container.Record) containerInspect {
	var args []string
	if r.Spec != nil && r.Spec.Process != nil {
		args = r.Spec.Process.Args
	}
	s.WithHealth(r)
	ci := containerInspect{ID: r.ID, Created: r.Created, State: r.State, Image: r.Image, LogPath: s.LogPath(r.ID),
		Name: "/" + r.Name, RestartCount: r.RestartCount, Driver: "overlay", Platform: "linux",
		HostConfig: r.HostConfig, Mounts: r.Mounts, Config: r.Config, CreateCommand: r.CreateCommand, NetworkSettings: networkSettings(r)}
	if t := r.HostConfig.LogConfig.Type; t != "" && t != container.LogJSONFile {
		// No file: Docker shows an empty LogPath for other drivers.
		ci.LogPath = ""
	}
	if m := container.InspectIDMappings(r); m != nil {
		// As podman: a user namespace of its own is "private".
		ci.HostConfig.IDMappings, ci.HostConfig.UsernsMode = m, "private"
	}
	if ci.Mounts == nil {
		ci.Mounts = []container.MountPoint{}
	}
	if len(args) > 0 {
		ci.Path, ci.Args = args[0], args[1:]
	}
	ci.GraphDriver = graphDriver{Name: "overlay", Data: map[string]string{
		"MergedDir": s.MergedDir(r.ID), "UpperDir": s.UpperDir(r.ID), "WorkDir": s.WorkDir(r.ID)}}
	if dirs, err := s.LowerDirs(r); err == nil {
		ci.GraphDriver.Data["LowerDir"] = strings.Join(dirs, ":")
	}
	return ci
}

// networkSettings is NetworkSettings as Docker shows it: what the last
// start got, or for a container never started its networks, empty.
func networkSettings(r *container.Record) *container.NetworkSettings {
	ns := container.NetworkSettings{Ports: map[string][]container.PortBinding{}, Networks: map[string]*container.EndpointSettings{}}
	if r.NetworkSettings != nil {
		ns = *r.NetworkSettings
		if ns.Ports == nil {
			ns.Ports = map[string][]container.PortBinding{}
		}
		if ns.Networks == nil {
			ns.Networks = map[string]*container.EndpointSettings{}
		}
	}
	if !r.State.Running {
		ns.Ports = map[string][]container.PortBinding{}
	}
	if r.NetworkingConfig != nil {
		for name, ep := range r.NetworkingConfig.EndpointsConfig {
			if _, ok := ns.Networks[name]; !ok {
				ns.Networks[name] = &container.EndpointSettings{IPAMConfig: ep.IPAMConfig, Aliases: ep.Aliases, MacAddress: ep.MacAddress}
			}
		}
	}
	return &ns
}

// printInspect prints objects as docker inspect does.
func printInspect(spec string, objs []any) error {
	return output.Inspect(os.Stdout, spec, objs)
}

func inspectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template over the JSON"},
		&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "show a container's SizeRw (its changes) and SizeRootFs (with its image)"},
	}
}

func containerInspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "show containers' configuration and state", ArgsUsage: "CONTAINER...", Flags: inspectFlags(),
		Action: func(c *cli.Context) error { return inspectAction(c, "container") },
	}
}

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "show containers or images in detail", ArgsUsage: "NAME...",
		Flags:  append(inspectFlags(), &cli.StringFlag{Name: "type", Usage: "container, image or volume"}),
		Action: func(c *cli.Context) error { return inspectAction(c, c.String("type")) },
	}
}

// inspectKinds are the kinds of object inspect looks a name up as, in
// Docker's order.
var inspectKinds = []string{"container", "image", "volume", "network"}

func inspectAction(c *cli.Context, kind string) error {
	if c.NArg() < 1 {
		return usage(c, "needs a name")
	}
	kinds := inspectKinds
	if kind != "" {
		if !slices.Contains(inspectKinds, kind) {
			return usage(c, "--type: unknown type %q (want %s)", kind, strings.Join(inspectKinds, ", "))
		}
		kinds = []string{kind}
	}
	if err := output.Check(c.String("format")); err != nil {
		return err
	}
	st, err := openStores(c)
	if err != nil {
		return err
	}
	find := func(kind, ref string) (any, error) {
		switch kind {
		case "container":
			r, err := st.containers.Find(ref)
			if err != nil {
				return nil, err
			}
			ci := inspectContainer(st.containers, r)
			if c.Bool("size") {
				rw := st.containers.ChangesSize(r.ID)
				root := rw
				if img, err := st.images.Resolve(r.Image); err == nil {
					root += img.Size
				}
				ci.SizeRw, ci.SizeRootFs = &rw, &root
			}
			return ci, nil
		case "image":
			img, err := st.images.Resolve(ref)
			if err != nil {
				return nil, err
			}
			return inspectImage(img), nil
		case "volume":
			return st.volumes.Get(ref)
		default:
			m, err := openNetwork(c)
			if err != nil {
				return nil, err
			}
			n, err := m.Get(ref)
			if err != nil {
				return nil, err
			}
			return inspectNetwork(m, n)
		}
	}
	objs := []any{}
	missing := false
	for _, ref := range c.Args().Slice() {
		var obj any
		err := errors.New("no such object: " + ref)
		if len(kinds) == 1 {
			obj, err = find(kinds[0], ref)
		} else {
			for _, k := range kinds {
				if o, ferr := find(k, ref); ferr == nil {
					obj, err = o, nil
					break
				}
			}
		}
		if err != nil {
			// Docker prints what it found and names each missing one.
			fmt.Fprintf(os.Stderr, "%s: %s\n", c.App.Name, oneLine(err.Error()))
			missing = true
			continue
		}
		objs = append(objs, obj)
	}
	if err := printInspect(c.String("format"), objs); err != nil {
		return err
	}
	if missing {
		return exitCode(1)
	}
	return nil
}
