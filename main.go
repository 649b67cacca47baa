// Command berth is a daemonless container runtime: a Docker-style CLI and a
// runc-compatible OCI runtime in one static binary.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/containerinit"
	"github.com/berth-project/berth/internal/cliargs"
	"github.com/berth-project/berth/internal/monitorcore"
	"github.com/berth-project/berth/reaper"
)

// version is set at link time.
var version = "dev"

// commandGroups build the top-level commands; each cmd_*.go file registers
// its own group from init, so command groups stay out of each other's
// files. They are built only when the CLI runs: the container init, the
// --init reaper and the monitor are this binary too, and building every
// flag of every command cost each of them over a millisecond at start.
var commandGroups []func() []*cli.Command

func register(group func() []*cli.Command) { commandGroups = append(commandGroups, group) }

func commands() []*cli.Command {
	var cmds []*cli.Command
	for _, g := range commandGroups {
		cmds = append(cmds, g()...)
	}
	return cmds
}

func init() {
	// Keep main on the process's main thread: a time namespace's offsets
	// belong to the process, so its init must be forked from this thread
	// (see runtime.startInit).
	goruntime.LockOSThread()
}

// exitError carries the exit status a command wants; Docker's convention is
// 125 for berth's own errors, 126/127 for a program that cannot run or is
// not found, and the container's own status otherwise.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode returns a silent error that makes berth exit with code.
func exitCode(code int) error { return &exitError{code: code} }

// signalExit makes berth end by sig, as its container did.
type signalExit struct{ sig unix.Signal }

func (e *signalExit) Error() string { return "terminated by " + unix.SignalName(e.sig) }

// raise ends the process by e.sig; it returns 128+n only if the signal
// did not end it.
func (e *signalExit) raise() int {
	signal.Reset(e.sig)
	_ = unix.Kill(os.Getpid(), e.sig)
	time.Sleep(time.Second)
	logrus.Warnf("%s did not end berth; exiting %d", unix.SignalName(e.sig), 128+int(e.sig))
	return 128 + int(e.sig)
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: "/run/berth", Usage: "directory for live container state"},
		&cli.StringFlag{Name: "data-root", Value: "/var/lib/berth", Usage: "directory for images, volumes and container data"},
		&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "log level: debug, info, warn, error"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log format: text or json"},
		&cli.StringFlag{Name: "log", Usage: "write logs to this file instead of stderr"},
		&cli.BoolFlag{Name: "debug", Usage: "same as --log-level debug"},
		&cli.BoolFlag{Name: "systemd-cgroup", Usage: "accepted for runc compatibility; cgroupsPath is used as a cgroupfs path"},
		&cli.BoolFlag{Name: "rootless", Hidden: true, Usage: "accepted for runc compatibility"},
	}
}

func setupLogging(c *cli.Context) error {
	lvl, err := logrus.ParseLevel(c.String("log-level"))
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if c.Bool("debug") {
		lvl = logrus.DebugLevel
	}
	logrus.SetLevel(lvl)
	switch c.String("log-format") {
	case "json":
		logrus.SetFormatter(&logrus.JSONFormatter{})
	case "text", "":
		logrus.SetFormatter(&logrus.TextFormatter{DisableTimestamp: false, FullTimestamp: true})
	default:
		return fmt.Errorf("--log-format: unknown format %q (want text or json)", c.String("log-format"))
	}
	if p := c.String("log"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		logrus.SetOutput(f)
	}
	return nil
}

func newApp(name string, cmds []*cli.Command) *cli.App {
	return &cli.App{
		Name:                   name,
		Usage:                  "a daemonless container runtime",
		Version:                version,
		Flags:                  globalFlags(),
		Commands:               cmds,
		Before:                 setupLogging,
		UseShortOptionHandling: true,
		// Docker never splits flag values on commas (--mount, --filter).
		DisableSliceFlagSeparator: true,
		// Errors are printed once, by main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
	}
}

// usageError is a command line berth cannot parse: one line on stderr,
// a hint to the command's --help, status 125.
type usageError struct {
	cmd string // "berth logs"
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func onUsageError(c *cli.Context, err error, _ bool) error {
	path := commandPath(c)
	if path == "" {
		return &usageError{cmd: c.App.Name, err: err}
	}
	return &usageError{cmd: c.App.Name + " " + path, err: fmt.Errorf("%s: %w", path, err)}
}

// usage is a command's own check of its arguments, reported as a usage
// error.
func usage(c *cli.Context, format string, a ...any) error {
	path := commandPath(c)
	return &usageError{cmd: c.App.Name + " " + path, err: fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))}
}

// given is a flag's value where the command line gives the flag, and nil
// where it does not, so that the default comes from elsewhere (the image,
// the container's current settings). get is the context's getter of the
// flag's type (c.Int64, c.String ...).
func given[T any](c *cli.Context, name string, get func(string) T) *T {
	if !c.IsSet(name) {
		return nil
	}
	v := get(name)
	return &v
}

// commandPath is the names of c's command from the top ("volume rm"):
// urfave/cli's FullName leaves out the groups.
func commandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		// The root context has the app itself for its command.
		if x.Command != nil && x.Command.Name != "" && x.Command.Name != c.App.Name {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// prepare makes every command report its usage errors through
// onUsageError (urfave/cli prints them to stdout otherwise).
func prepare(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		if c.SkipFlagParsing && c.Action != nil {
			// Its words are another program's, but --help is berth's.
			act, cmd := c.Action, c
			c.Action = func(ctx *cli.Context) error {
				if a := ctx.Args().First(); a == "--help" || a == "-h" {
					cli.HelpPrinter(ctx.App.Writer, cli.CommandHelpTemplate, cmd)
					return nil
				}
				return act(ctx)
			}
		}
		prepare(c.Subcommands)
	}
}

// unknownCommand names the first word of args that should name a
// command (or a group's subcommand) and does not, with the path of the
// group it was looked up in ("" for none).
func unknownCommand(app *cli.App, args []string) (word, group string) {
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-" {
		if args[i] == "--" {
			return "", ""
		}
		if !strings.Contains(args[i], "=") && takesValue(app.Flags, strings.TrimLeft(args[i], "-")) {
			i++
		}
		i++
	}
	cmds, path := app.Commands, app.Name
	for i < len(args) {
		w := args[i]
		if w == "help" || w == "h" {
			return "", ""
		}
		var cmd *cli.Command
		for _, c := range cmds {
			if c.HasName(w) {
				cmd = c
			}
		}
		if cmd == nil {
			return w, path
		}
		if len(cmd.Subcommands) == 0 {
			return "", ""
		}
		cmds, path = cmd.Subcommands, path+" "+cmd.Name
		i++
		if i < len(args) && strings.HasPrefix(args[i], "-") {
			return "", "" // the group's own flags, or --help
		}
	}
	return "", ""
}

func takesValue(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		for _, n := range f.Names() {
			if d, ok := f.(cli.DocGenerationFlag); ok && n == name {
				return d.TakesValue()
			}
		}
	}
	return false
}

// passthrough names the commands whose words after the first positional
// one are another program's command line.
func passthrough(path []string) bool {
	if len(path) > 0 && path[0] == "oci" || strings.HasPrefix(os.Args[0], "berth-oci") {
		return path[len(path)-1] == "exec"
	}
	switch path[len(path)-1] {
	case "run", "create", "exec":
		return true
	}
	return false
}

// docsMain is the man page generator's main in a build with -tags
// docsgen (docsgen.go); nil in berth itself.
var docsMain func(args []string) int

func main() {
	if docsMain != nil {
		os.Exit(docsMain(os.Args[1:]))
	}
	if os.Args[0] == reaper.Path {
		// berth run --init: this binary is the container's pid 1.
		os.Exit(reaper.Main(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == containerinit.InitArg {
		containerinit.Main() // never returns
	}
	if len(os.Args) > 1 && os.Args[1] == monitorcore.CompressArg {
		// A monitor compresses a rotated log.
		os.Exit(container.CompressLogMain(os.Args[2:]))
	}
	if filepath.Base(os.Args[0]) == generatorName {
		os.Exit(generatorMain(os.Args[1:]))
	}
	if os.Args[0] == container.MonitorName || mayStartContainers(os.Args[1:]) {
		// Read while the command line is parsed and the record loaded.
		cgroupfs.Prefetch()
	}
	var app *cli.App
	if os.Args[0] == container.MonitorName {
		// The monitor also runs the healthchecks, as berth-monitor.
		app = newApp("berth", []*cli.Command{monitorCommand(), healthCommand()})
	} else if strings.HasPrefix(filepath.Base(os.Args[0]), "berth-oci") {
		// Called as an OCI runtime (podman --runtime, containerd): the OCI
		// commands are top-level, as in runc.
		app = newApp("berth-oci", ociCommands())
	} else {
		app = newApp("berth", commands())
	}
	os.Exit(run(app, os.Args))
}

// mayStartContainers tells, from the words alone, whether this command
// may start a container or a process in one itself, and so needs the
// host's cgroup layout (see cgroupfs.Prefetch). run -d starts its
// container itself too (under a lean monitor); with exec -d another
// process starts it, and reading the layout here would only take CPU
// from it. A wrong guess costs a read or the overlap, nothing else.
func mayStartContainers(args []string) bool {
	start, run := false, false
	for _, a := range args {
		switch a {
		case "run":
			start, run = true, true
		case "create", "start", "restart", "exec":
			start = true
		case "-d", "--detach":
			if !run {
				return false
			}
		}
	}
	return start
}

func run(app *cli.App, args []string) int {
	prepare(app.Commands)
	if len(args) > 1 && args[len(args)-1] == "--generate-bash-completion" {
		// A shell asks what may come next (see cmd_completion.go).
		complete(app, args[1:len(args)-1])
		return 0
	}
	if w, group := unknownCommand(app, args); w != "" {
		fmt.Fprintf(os.Stderr, "%s: '%s' is not a %s command\nSee '%s --help'.\n", app.Name, w, group, group)
		return 125
	}
	args = cliargs.Intersperse(app.Flags, app.Commands, args, cliargs.Options{Passthrough: passthrough})
	cmdLine = args
	return runApp(app, args)
}

// cmdLine is berth's command line as the app parses it (flags moved
// before the positional arguments), for a container's CreateCommand.
var cmdLine []string

func runApp(app *cli.App, args []string) int {
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var se *signalExit
	if errors.As(err, &se) {
		return se.raise()
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "%s: %s\nSee '%s --help'.\n", app.Name, oneLine(err.Error()), ue.cmd)
		return 125
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(os.Stderr, "%s: %s\n", app.Name, oneLine(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", app.Name, oneLine(err.Error()))
	return 125
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
