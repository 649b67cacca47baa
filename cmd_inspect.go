package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
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
}

func inspectContainer(s *container.Store, r *container.Record) containerInspect {
	var args []string
	if r.Spec != nil && r.Spec.Process != nil {
		args = r.Spec.Process.Args
	}
	ci := containerInspect{ID: r.ID, Created: r.Created, State: r.State, Image: r.Image, LogPath: s.LogPath(r.ID),
		Name: "/" + r.Name, RestartCount: r.RestartCount, Driver: "overlay", Platform: "linux",
		HostConfig: r.HostConfig, Mounts: r.Mounts, Config: r.Config, NetworkSettings: networkSettings(r)}
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

// printInspect prints objects as Docker does: a JSON list, or each
// through a template that sees the JSON field names.
func printInspect(format string, objs []any) error {
	if format == "" {
		return printJSON(os.Stdout, objs)
	}
	format = strings.ReplaceAll(format, `\t`, "\t")
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	for _, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		var m any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if err := tmpl.Execute(os.Stdout, m); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	return nil
}

func inspectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "Go template over the JSON"},
		&cli.BoolFlag{Name: "size", Aliases: []string{"s"}, Usage: "accepted for Docker compatibility"},
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
		Flags:  append(inspectFlags(), &cli.StringFlag{Name: "type", Usage: "container or image"}),
		Action: func(c *cli.Context) error { return inspectAction(c, c.String("type")) },
	}
}

func inspectAction(c *cli.Context, kind string) error {
	if c.NArg() < 1 {
		return errors.New("inspect: needs a name")
	}
	if kind != "" && kind != "container" && kind != "image" && kind != "network" {
		return fmt.Errorf("--type: unknown type %q (want container, image or network)", kind)
	}
	st, err := openStores(c)
	if err != nil {
		return err
	}
	s := st.containers
	var objs []any
	var missing error
	for _, ref := range c.Args().Slice() {
		if kind == "" || kind == "container" {
			if r, err := s.Find(ref); err == nil {
				objs = append(objs, inspectContainer(s, r))
				continue
			}
		}
		if kind == "" || kind == "image" {
			if img, err := st.images.Resolve(ref); err == nil {
				objs = append(objs, inspectImage(img))
				continue
			}
		}
		if kind == "" || kind == "network" {
			m, err := openNetwork(c)
			if err != nil {
				return err
			}
			if n, err := m.Get(ref); err == nil {
				ni, err := inspectNetwork(m, n)
				if err != nil {
					return err
				}
				objs = append(objs, ni)
				continue
			}
		}
		missing = fmt.Errorf("no such object: %s", ref)
		fmt.Fprintf(os.Stderr, "Error: %s\n", missing)
	}
	if err := printInspect(c.String("format"), objs); err != nil {
		return err
	}
	if missing != nil {
		return exitCode(1)
	}
	return nil
}
