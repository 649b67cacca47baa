package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/state"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{&cli.Command{
			Name:        "oci",
			Usage:       "the runc-compatible OCI runtime (also top-level when called as berth-oci)",
			Subcommands: ociCommands(),
		}}
	})
}

func openRuntime(c *cli.Context) (*runtime.Runtime, error) {
	// --root is a global flag; urfave looks it up through the lineage.
	return runtime.New(c.String("root"))
}

// initExit maps an init failure to Docker's exit codes.
func initExit(err error) error {
	var ie *runtime.InitError
	if errors.As(err, &ie) {
		return &exitError{code: ie.Code, err: err}
	}
	return err
}

// runtimeFor checks that a container id was given and opens the runtime.
func runtimeFor(c *cli.Context) (*runtime.Runtime, error) {
	if err := needArgs(c, 1, "a container id"); err != nil {
		return nil, err
	}
	return openRuntime(c)
}

func needArgs(c *cli.Context, n int, what string) error {
	if c.NArg() < n {
		return usage(c, "needs %s", what)
	}
	return nil
}

func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "path to the bundle directory"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the init's pid to this file"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "use chroot after a move mount instead of pivot_root"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for runc compatibility"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra fds (from 3) into the container"},
	}
}

func createOpts(c *cli.Context) runtime.CreateOpts {
	return runtime.CreateOpts{
		Bundle: c.String("bundle"), PidFile: c.String("pid-file"), ConsoleSocket: c.String("console-socket"),
		NoPivot: c.Bool("no-pivot"), PreserveFDs: c.Int("preserve-fds"),
	}
}

func ociCommands() []*cli.Command {
	cmds := ociCommandList()
	for _, cmd := range cmds {
		cmd.Action = logFailure(cmd.Action)
	}
	return cmds
}

// logFailure makes a command's error also go to the --log file, in its
// --log-format, as runc writes it: containerd's shim and dockerd read the
// error from there ({"level":"error","msg":...}), not from stderr.
func logFailure(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		if err == nil || c.String("log") == "" {
			return err
		}
		var ee *exitError
		if errors.As(err, &ee) && ee.err == nil {
			return err // the container's own exit status, not a failure
		}
		logrus.Error(oneLine(err.Error()))
		return err
	}
}

func ociCommandList() []*cli.Command {
	return []*cli.Command{
		{
			Name: "spec", Usage: "write a default, hardened config.json",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "directory to write config.json in"},
				&cli.BoolFlag{Name: "rootless", Usage: "accepted for runc compatibility"},
			},
			Action: func(c *cli.Context) error {
				path := filepath.Join(c.String("bundle"), "config.json")
				if _, err := os.Stat(path); err == nil {
					return fmt.Errorf("%s exists: remove it first", path)
				}
				data, err := json.MarshalIndent(runtime.DefaultSpec(), "", "\t")
				if err != nil {
					return err
				}
				return os.WriteFile(path, append(data, '\n'), 0o644)
			},
		},
		{
			Name: "create", Usage: "create a container, its program waiting for start", ArgsUsage: "ID",
			Flags: createFlags(),
			Action: func(c *cli.Context) error {
				rt, err := runtimeFor(c)
				if err != nil {
					return err
				}
				_, _, err = rt.Create(c.Args().First(), createOpts(c))
				return initExit(err)
			},
		},
		{
			Name: "start", Usage: "start created containers", ArgsUsage: "ID...",
			Action: func(c *cli.Context) error {
				return eachID(c, func(rt *runtime.Runtime, id string) error { return rt.Start(id) })
			},
		},
		{
			Name: "run", Usage: "create and start a container; in the foreground, exit with its status", ArgsUsage: "ID",
			Flags: append(createFlags(), &cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the container"}),
			Action: func(c *cli.Context) error {
				rt, err := runtimeFor(c)
				if err != nil {
					return err
				}
				id := c.Args().First()
				o := createOpts(c)
				o.Foreground = !c.Bool("detach")
				var sigs chan os.Signal
				if o.Foreground {
					sigs = runtime.CatchSignals()
				}
				_, proc, err := rt.Create(id, o)
				if err != nil {
					return initExit(err)
				}
				if err := rt.Start(id); err != nil {
					if o.Foreground {
						rt.DeleteAfterRun(id)
					}
					return err
				}
				if !o.Foreground {
					return nil
				}
				code, err := proc.Forward(sigs, os.Stdin, os.Stdout)
				rt.DeleteAfterRun(id)
				if err != nil {
					return err
				}
				return exitCode(code)
			},
		},
		{
			Name: "state", Usage: "print a container's OCI state", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				rt, err := runtimeFor(c)
				if err != nil {
					return err
				}
				st, err := rt.State(c.Args().First())
				if err != nil {
					return err
				}
				return printJSON(os.Stdout, st)
			},
		},
		{
			Name: "kill", Usage: "send a signal to a container", ArgsUsage: "ID [SIGNAL]",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process in the container"}},
			Action: func(c *cli.Context) error {
				if err := needArgs(c, 1, "a container id"); err != nil {
					return err
				}
				sig := unix.SIGTERM
				if c.NArg() > 1 {
					var err error
					if sig, err = parseSignal(c.Args().Get(1)); err != nil {
						return err
					}
				}
				rt, err := openRuntime(c)
				if err != nil {
					return err
				}
				return rt.Kill(c.Args().First(), sig, c.Bool("all"))
			},
		},
		{
			Name: "delete", Usage: "delete containers", ArgsUsage: "ID...",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"}},
			Action: func(c *cli.Context) error {
				return eachID(c, func(rt *runtime.Runtime, id string) error {
					err := rt.Delete(id, c.Bool("force"))
					if c.Bool("force") && errors.Is(err, state.ErrNotExist) {
						// As runc: engines delete with --force whatever
						// they may have created, and nothing is left.
						return nil
					}
					return err
				})
			},
		},
		{
			Name: "list", Aliases: []string{"ls"}, Usage: "list containers",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "ids only"},
			},
			Action: ociList,
		},
		{
			Name: "ps", Usage: "list the processes of a container", ArgsUsage: "ID",
			Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"}},
			Action: func(c *cli.Context) error {
				rt, err := runtimeFor(c)
				if err != nil {
					return err
				}
				pids, err := rt.Pids(c.Args().First())
				if err != nil {
					return err
				}
				if c.String("format") == "json" {
					if pids == nil {
						pids = []int{}
					}
					return printJSON(os.Stdout, pids)
				}
				w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(w, "PID\tCMD")
				for _, p := range pids {
					cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
					fmt.Fprintf(w, "%d\t%s\n", p, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
				}
				return w.Flush()
			},
		},
		{
			Name: "exec", Usage: "run another process in a running container", ArgsUsage: "ID [COMMAND [ARG...]]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json with the process to run"},
				&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pty"},
				&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
				&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "add KEY=VALUE to the environment"},
				&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
				&cli.Int64SliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "extra group ids"},
				&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability"},
				&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs"},
				&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the process"},
				&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid to this file"},
				&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
				&cli.IntFlag{Name: "preserve-fds", Usage: "pass this many extra fds (from 3)"},
			},
			Action: ociExec,
		},
		{
			Name: "pause", Usage: "freeze every process of a container", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				return eachID(c, func(rt *runtime.Runtime, id string) error { return rt.Pause(id) })
			},
		},
		{
			Name: "resume", Usage: "thaw a paused container", ArgsUsage: "ID",
			Action: func(c *cli.Context) error {
				return eachID(c, func(rt *runtime.Runtime, id string) error { return rt.Resume(id) })
			},
		},
		{
			Name: "update", Usage: "change the resource limits of a running container", ArgsUsage: "ID",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "LinuxResources JSON file, - for stdin"},
				&cli.StringFlag{Name: "memory", Usage: "memory limit (e.g. 64m)"},
				&cli.StringFlag{Name: "memory-reservation", Usage: "memory soft limit"},
				&cli.StringFlag{Name: "memory-swap", Usage: "memory plus swap limit, -1 for unlimited"},
				&cli.Uint64Flag{Name: "cpu-shares", Usage: "relative CPU weight"},
				&cli.Int64Flag{Name: "cpu-quota", Usage: "CPU quota per period in µs, -1 for none"},
				&cli.Uint64Flag{Name: "cpu-period", Usage: "CPU period in µs"},
				&cli.StringFlag{Name: "cpuset-cpus", Usage: "CPUs to run on"},
				&cli.StringFlag{Name: "cpuset-mems", Usage: "memory nodes to use"},
				&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of processes"},
				&cli.UintFlag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
			},
			Action: ociUpdate,
		},
		{
			Name: "features", Usage: "print the runtime-spec features document",
			Action: func(c *cli.Context) error { return printJSON(os.Stdout, runtime.Features()) },
		},
	}
}

func eachID(c *cli.Context, f func(*runtime.Runtime, string) error) error {
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	for _, id := range c.Args().Slice() {
		if err := f(rt, id); err != nil {
			return err
		}
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseSignal(s string) (unix.Signal, error) { return runtime.ParseSignal(s) }

type listEntry struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func ociList(c *cli.Context) error {
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	cs, err := rt.List()
	if err != nil {
		return err
	}
	entries := []listEntry{}
	for _, ct := range cs {
		st := rt.Status(ct)
		pid := ct.Pid
		if st == runtime.StatusStopped {
			pid = 0
		}
		e := listEntry{ID: ct.ID, Pid: pid, Status: st, Bundle: ct.Bundle, Rootfs: ct.Rootfs, Created: ct.Created, Owner: "root"}
		if ct.Config != nil {
			e.Annotations = ct.Config.Annotations
		}
		entries = append(entries, e)
	}
	if c.Bool("quiet") {
		for _, e := range entries {
			fmt.Println(e.ID)
		}
		return nil
	}
	switch c.String("format") {
	case "json":
		return printJSON(os.Stdout, entries)
	case "table":
	default:
		return fmt.Errorf("unknown format %q (want table or json)", c.String("format"))
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner)
	}
	return w.Flush()
}

func ociExec(c *cli.Context) error {
	rt, err := runtimeFor(c)
	if err != nil {
		return err
	}
	id := c.Args().First()
	ct, err := rt.Load(id)
	if err != nil {
		return err
	}
	var p specs.Process
	if path := c.String("process"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read process file: %w", err)
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("parse process file %s: %w", path, err)
		}
	} else {
		if c.NArg() < 2 {
			return errors.New("exec: needs a command or --process")
		}
		// Start from the container's own process: env, user, caps, limits.
		p = *ct.Config.Process
		p.Args = c.Args().Slice()[1:]
		p.Terminal = c.Bool("tty")
		p.ConsoleSize = nil
		p.Env = append(append([]string(nil), p.Env...), c.StringSlice("env")...)
		if cwd := c.String("cwd"); cwd != "" {
			p.Cwd = cwd
		}
		if u := c.String("user"); u != "" {
			uid, gid, err := parseUser(u)
			if err != nil {
				return err
			}
			p.User.UID, p.User.GID = uid, gid
		}
		for _, g := range c.Int64Slice("additional-gids") {
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
		}
		if caps := c.StringSlice("cap"); len(caps) > 0 {
			cp := *p.Capabilities
			cp.Bounding = append(append([]string(nil), cp.Bounding...), caps...)
			cp.Effective = append(append([]string(nil), cp.Effective...), caps...)
			cp.Permitted = append(append([]string(nil), cp.Permitted...), caps...)
			p.Capabilities = &cp
		}
		if c.Bool("no-new-privs") {
			p.NoNewPrivileges = true
		}
	}
	detach := c.Bool("detach")
	var sigs chan os.Signal
	if !detach {
		sigs = runtime.CatchSignals()
	}
	proc, err := rt.Exec(id, runtime.ExecOpts{
		Process: &p, PidFile: c.String("pid-file"), ConsoleSocket: c.String("console-socket"),
		PreserveFDs: c.Int("preserve-fds"), Foreground: !detach,
	})
	if err != nil {
		return initExit(err)
	}
	if detach {
		return nil
	}
	code, err := proc.Forward(sigs, os.Stdin, os.Stdout)
	if err != nil {
		return err
	}
	return exitCode(code)
}

func parseUser(s string) (uint32, uint32, error) {
	us, gs, hasGID := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
	}
	gid := uint64(0)
	if hasGID {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}

func ociUpdate(c *cli.Context) error {
	if err := needArgs(c, 1, "a container id"); err != nil {
		return err
	}
	res := &specs.LinuxResources{}
	if path := c.String("resources"); path != "" {
		var data []byte
		var err error
		if path == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			return fmt.Errorf("read resources: %w", err)
		}
		if err := json.Unmarshal(data, res); err != nil {
			return fmt.Errorf("parse resources: %w", err)
		}
	}
	mem := func() *specs.LinuxMemory {
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		return res.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		return res.CPU
	}
	for _, f := range []struct {
		name string
		dst  func() **int64
	}{
		{"memory", func() **int64 { return &mem().Limit }},
		{"memory-reservation", func() **int64 { return &mem().Reservation }},
		{"memory-swap", func() **int64 { return &mem().Swap }},
	} {
		if v := c.String(f.name); v != "" {
			n, err := units.ParseLimit(v)
			if err != nil {
				return fmt.Errorf("--%s: %w", f.name, err)
			}
			*f.dst() = &n
		}
	}
	if c.IsSet("cpu-shares") {
		v := c.Uint64("cpu-shares")
		cpu().Shares = &v
	}
	if c.IsSet("cpu-quota") {
		v := c.Int64("cpu-quota")
		cpu().Quota = &v
	}
	if c.IsSet("cpu-period") {
		v := c.Uint64("cpu-period")
		cpu().Period = &v
	}
	if c.IsSet("cpuset-cpus") {
		cpu().Cpus = c.String("cpuset-cpus")
	}
	if c.IsSet("cpuset-mems") {
		cpu().Mems = c.String("cpuset-mems")
	}
	if c.IsSet("pids-limit") {
		limit := c.Int64("pids-limit")
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}
	if c.IsSet("blkio-weight") {
		w := uint16(c.Uint("blkio-weight"))
		res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	rt, err := openRuntime(c)
	if err != nil {
		return err
	}
	return rt.Update(c.Args().First(), res)
}
