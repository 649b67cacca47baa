package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/passwd"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
)

// ---- ps ----

type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks string
	rec                                                                                                    *container.Record
}

// statusText is Docker's STATUS column.
func statusText(r *container.Record) string {
	st := r.State
	switch st.Status {
	case container.StatusRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt))
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
		Networks: r.HostConfig.NetworkMode, rec: r}
}

// Label returns one label's value, for --format '{{.Label "k"}}'.
func (p psRow) Label(k string) string { return p.rec.Config.Labels[k] }

// psFilter is one --filter key=value of ps.
func psMatch(r *container.Record, filters []string) (bool, error) {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok && k != "label" {
			return false, fmt.Errorf("--filter: bad filter %q (want key=value)", f)
		}
		switch k {
		case "status":
			if r.State.Status != v {
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
			lk, lv, hasV := strings.Cut(v, "=")
			got, has := r.Config.Labels[lk]
			if !has || hasV && got != lv {
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
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "show all containers (default shows just running)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only show IDs"},
			&cli.BoolFlag{Name: "no-trunc", Usage: "do not truncate output"},
			&cli.BoolFlag{Name: "latest", Aliases: []string{"l"}, Usage: "show the latest created container"},
			&cli.IntFlag{Name: "last", Aliases: []string{"n"}, Value: -1, Usage: "show n last created containers"},
			&cli.StringFlag{Name: "format", Usage: "Go template, or table TEMPLATE"},
			&cli.StringSliceFlag{Name: "filter", Aliases: []string{"f"}, Usage: "filter: status=, name=, id=, label=, exited=, ancestor=, volume="},
		},
		Action: func(c *cli.Context) error {
			s, err := openContainers(c)
			if err != nil {
				return err
			}
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
				ok, err := psMatch(r, c.StringSlice("filter"))
				if err != nil {
					return err
				}
				if ok {
					rows = append(rows, psRowOf(r, c.Bool("no-trunc")))
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
			return printTable(format, "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
				map[string]string{"ID": "CONTAINER ID", "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Names": "NAMES"}, rows)
		},
	}
}

// ---- logs ----

// parseTime takes an RFC 3339 time, a Unix timestamp or a duration ago.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339, a Unix timestamp or a duration like 10m)", s)
}

func logsCommand() *cli.Command {
	return &cli.Command{
		Name: "logs", Usage: "print a container's output", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "follow the output"},
			&cli.StringFlag{Name: "tail", Aliases: []string{"n"}, Value: "all", Usage: "number of lines from the end"},
			&cli.BoolFlag{Name: "timestamps", Aliases: []string{"t"}, Usage: "show timestamps"},
			&cli.StringFlag{Name: "since", Usage: "show logs since a time or a duration ago"},
			&cli.StringFlag{Name: "until", Usage: "show logs before a time or a duration ago"},
			&cli.BoolFlag{Name: "details", Usage: "accepted for Docker compatibility"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("logs: needs one container")
			}
			o := container.LogOpts{Tail: -1, Timestamps: c.Bool("timestamps"), Follow: c.Bool("follow")}
			if t := c.String("tail"); t != "all" && t != "" {
				n, err := strconv.Atoi(t)
				if err != nil || n < -1 {
					return fmt.Errorf("--tail: invalid number %q", t)
				}
				o.Tail = n
			}
			var err error
			if o.Since, err = parseTime(c.String("since")); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if o.Until, err = parseTime(c.String("until")); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			r, err := s.Find(c.Args().First())
			if err != nil {
				return err
			}
			if _, err := os.Stat(s.LogPath(r.ID)); os.IsNotExist(err) && !r.State.StartedAt.IsZero() && !o.Follow {
				return fmt.Errorf("container %s ran in the foreground: its output went straight to the caller's stdout and stderr, and no log was kept", r.Name)
			}
			o.Running = func() bool {
				cur, err := s.Find(r.ID)
				return err == nil && (cur.State.Running || cur.State.Restarting)
			}
			out := bufio.NewWriter(os.Stdout)
			defer out.Flush()
			var stdout, stderr = out, os.Stderr
			if o.Follow {
				return container.ReadLogs(s.LogPath(r.ID), o, flushWriter{out}, stderr)
			}
			return container.ReadLogs(s.LogPath(r.ID), o, stdout, flushStderr{out})
		},
	}
}

// flushWriter flushes after each write, for logs -f.
type flushWriter struct{ w *bufio.Writer }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// flushStderr keeps stdout and stderr lines in order.
type flushStderr struct{ out *bufio.Writer }

func (f flushStderr) Write(p []byte) (int, error) {
	if err := f.out.Flush(); err != nil {
		return 0, err
	}
	return os.Stderr.Write(p)
}

// ---- exec ----

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a command in a running container", ArgsUsage: "CONTAINER COMMAND [ARG...]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "keep stdin open"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set environment variables"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "user[:group] to run as"},
			&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
			&cli.BoolFlag{Name: "privileged", Usage: "give the command every capability"},
			&cli.StringFlag{Name: "detach-keys", Usage: "accepted for Docker compatibility"},
		},
		Action: func(c *cli.Context) error {
			s, r, err := runningContainer(c, 2, -1, "CONTAINER COMMAND [ARG...]")
			if err != nil {
				return err
			}
			if r.State.Paused {
				return fmt.Errorf("container %s is paused, unpause the container before exec", r.Name)
			}
			p := *r.Spec.Process
			p.Args = c.Args().Slice()[1:]
			p.Terminal = c.Bool("tty")
			env, err := runconfig.ParseEnv(c.StringSlice("env"), os.LookupEnv)
			if err != nil {
				return err
			}
			p.Env = append(append([]string{}, p.Env...), env...)
			if w := c.String("workdir"); w != "" {
				p.Cwd = w
			}
			user := r.Config.User
			if u := c.String("user"); u != "" {
				user = u
			}
			rootfs := s.Dir(r.ID) + "/merged"
			uid, gid, groups, home, err := passwd.Lookup(rootfs, user, nil)
			if err != nil {
				return fmt.Errorf("unable to find user %s: %w", user, err)
			}
			p.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
			p.Env = passwd.WithHome(p.Env, home)
			if c.Bool("privileged") {
				all := runtime.BoundedCaps()
				p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			}
			null, err := os.Open(os.DevNull)
			if err != nil {
				return err
			}
			defer null.Close()
			io := runtime.IO{Stdin: null, Stdout: os.Stdout, Stderr: os.Stderr}
			if c.Bool("interactive") {
				io.Stdin = os.Stdin
			}
			if c.Bool("detach") {
				io = runtime.IO{Stdin: null, Stdout: null, Stderr: null}
				p.Terminal = false
			}
			var sigs chan os.Signal
			if !c.Bool("detach") {
				sigs = runtime.CatchSignals()
			}
			proc, err := s.Runtime.Exec(r.ID, runtime.ExecOpts{Process: &p, IO: io, Foreground: !c.Bool("detach")})
			if err != nil {
				return initExit(err)
			}
			if c.Bool("detach") {
				return nil
			}
			code, err := proc.Forward(sigs, io.Stdin, os.Stdout)
			if err != nil {
				return err
			}
			return exitCode(code)
		},
	}
}

// ---- inspect ----

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type containerInspect struct {
	ID              string                 `json:"Id"`
	Created         time.Time              `json:"Created"`
	Path            string                 `json:"Path"`
	Args            []string               `json:"Args"`
	State           container.State        `json:"State"`
	Image           string                 `json:"Image"`
	LogPath         string                 `json:"LogPath"`
	Name            string                 `json:"Name"`
	RestartCount    int                    `json:"RestartCount"`
	Driver          string                 `json:"Driver"`
	Platform        string                 `json:"Platform"`
	HostConfig      container.HostConfig   `json:"HostConfig"`
	GraphDriver     graphDriver            `json:"GraphDriver"`
	Mounts          []container.MountPoint `json:"Mounts"`
	Config          container.Config       `json:"Config"`
	NetworkSettings map[string]any         `json:"NetworkSettings"`
}

func inspectContainer(s *container.Store, r *container.Record) containerInspect {
	var args []string
	if r.Spec != nil && r.Spec.Process != nil {
		args = r.Spec.Process.Args
	}
	ci := containerInspect{ID: r.ID, Created: r.Created, State: r.State, Image: r.Image, LogPath: s.LogPath(r.ID),
		Name: "/" + r.Name, RestartCount: r.RestartCount, Driver: "overlay", Platform: "linux",
		HostConfig: r.HostConfig, Mounts: r.Mounts, Config: r.Config,
		NetworkSettings: map[string]any{"Networks": map[string]any{}, "Ports": map[string]any{}}}
	if ci.Mounts == nil {
		ci.Mounts = []container.MountPoint{}
	}
	if len(args) > 0 {
		ci.Path, ci.Args = args[0], args[1:]
	}
	dir := s.Dir(r.ID)
	ci.GraphDriver = graphDriver{Name: "overlay", Data: map[string]string{
		"MergedDir": dir + "/merged", "UpperDir": dir + "/upper", "WorkDir": dir + "/work"}}
	if img, err := s.Images.Resolve(r.Image); err == nil {
		ci.GraphDriver.Data["LowerDir"] = strings.Join(img.LayerDirs(), ":")
	}
	return ci
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
	if kind != "" && kind != "container" && kind != "image" {
		return fmt.Errorf("--type: unknown type %q (want container or image)", kind)
	}
	s, err := openContainers(c)
	if err != nil {
		return err
	}
	var objs []any
	var missing error
	for _, ref := range c.Args().Slice() {
		if kind != "image" {
			if r, err := s.Find(ref); err == nil {
				objs = append(objs, inspectContainer(s, r))
				continue
			}
		}
		if kind != "container" {
			if img, err := s.Images.Resolve(ref); err == nil {
				objs = append(objs, inspectImage(img))
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

// ---- top ----

func topCommand() *cli.Command {
	return &cli.Command{
		Name: "top", Usage: "show a container's processes", ArgsUsage: "CONTAINER [ps OPTIONS]",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			s, r, err := runningContainer(c, 1, -1, "CONTAINER [ps OPTIONS]")
			if err != nil {
				return err
			}
			pids, err := s.Runtime.Pids(r.ID)
			if err != nil {
				return err
			}
			psArgs := c.Args().Slice()[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("top: ps %s: %w", strings.Join(psArgs, " "), err)
			}
			return printTop(string(out), pids)
		},
	}
}

// printTop keeps ps's header and the lines of the container's pids.
func printTop(out string, pids []int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		return errors.New("top: ps printed nothing")
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("top: ps output has no PID column")
	}
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && want[f[col]] {
			fmt.Println(l)
		}
	}
	return nil
}
