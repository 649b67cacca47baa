package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/detachkeys"
	proto "github.com/berth-project/berth/internal/monitorproto"
	"github.com/berth-project/berth/runconfig"
	"github.com/berth-project/berth/runtime"
	"github.com/berth-project/berth/sdnotify"
	"github.com/berth-project/berth/volume"
)

func init() {
	register(func() []*cli.Command {
		return []*cli.Command{
			runCommand(false), runCommand(true), startCommand(), stopCommand(), restartCommand(),
			killCommand(), rmCommand("rm"), psCommand("ps"), logsCommand(), execCommand(),
			inspectCommand(), topCommand(), statsCommand(), waitCommand(), pauseCommand(true),
			pauseCommand(false), renameCommand(), attachCommand(),
			&cli.Command{
				Name:  "container",
				Usage: "manage containers",
				Subcommands: []*cli.Command{
					runCommand(false), runCommand(true), startCommand(), stopCommand(), restartCommand(),
					killCommand(), rmCommand("rm"), psCommand("ls"), psCommand("ps"), logsCommand(), execCommand(),
					containerInspectCommand(), topCommand(), statsCommand(), waitCommand(), pauseCommand(true),
					pauseCommand(false), renameCommand(), attachCommand(), containerPruneCommand(),
					commitCommand(), diffCommand(), exportCommand(), cpCommand(), updateCommand(),
				},
			},
		}
	})
}

// stores are the engine and the stores it is built on, for the commands
// that also use those directly (run resolves and pulls images, system df
// lists them).
type stores struct {
	containers *container.Store
	images     *image.Store
	volumes    *volume.Store
}

// openStores opens the image and volume stores, which learn from the
// container records what is in use, and the engine on them.
func openStores(c *cli.Context) (*stores, error) {
	dataRoot := c.String("data-root")
	records := container.Records{DataRoot: dataRoot}
	images, err := image.OpenWithUsers(dataRoot, records)
	if err != nil {
		return nil, err
	}
	vols, err := volume.Open(dataRoot, records)
	if err != nil {
		return nil, err
	}
	rt, err := container.NewRuntime(c.String("root"), c.String("data-root"))
	if err != nil {
		return nil, err
	}
	net, err := openNetwork(c)
	if err != nil {
		return nil, err
	}
	cs, err := container.New(dataRoot, c.String("root"), container.Deps{Images: images, Volumes: vols, Runtime: rt, Network: net})
	if err != nil {
		return nil, err
	}
	return &stores{containers: cs, images: images, volumes: vols}, nil
}

// openContainers opens the engine.
func openContainers(c *cli.Context) (*container.Store, error) {
	st, err := openStores(c)
	if err != nil {
		return nil, err
	}
	return st.containers, nil
}

// globalArgs are the global flags a monitor is started with.
func globalArgs(c *cli.Context) []string {
	return []string{"--root", c.String("root"), "--data-root", c.String("data-root"),
		"--log-level", c.String("log-level"), "--log-format", c.String("log-format")}
}

// startExit turns a failed start into Docker's exit status.
func startExit(err error) error {
	var se *container.StartError
	if errors.As(err, &se) {
		return &exitError{code: se.Code, err: err}
	}
	return initExit(err)
}

// monitorCommand is the hidden command of a container's monitor. It is the
// only command of the CLI a monitor builds: the rest would stay in its
// memory for the container's lifetime.
func monitorCommand() *cli.Command {
	return &cli.Command{Name: container.MonitorArg, Hidden: true, Action: monitorAction,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "wait-attach"}}}
}

func monitorAction(c *cli.Context) error {
	s, err := openContainers(c)
	if err != nil {
		return err
	}
	var ready, goPipe *os.File
	if !container.LeanReturned() {
		// Descriptors 3 and 4 are there only in a monitor berth started;
		// the lean monitor hands back none.
		ready, goPipe = os.NewFile(3, "ready"), os.NewFile(4, "go")
	}
	os.Exit(s.Monitor(c.Args().First(), ready, goPipe, c.Bool("wait-attach")))
	return nil
}

func runCommand(create bool) *cli.Command {
	name, help := "run", "create and run a container"
	if create {
		name, help = "create", "create a container"
	}
	return &cli.Command{
		Name: name, Usage: help, ArgsUsage: "IMAGE [COMMAND [ARG...]]",
		// -h is --hostname, as in Docker; --help stays.
		HideHelp: true,
		Flags:    cachedNames(append(runConfigFlags(), &cli.BoolFlag{Name: "help", Usage: "show help"})),
		Action: func(c *cli.Context) error {
			if c.Bool("help") {
				return cli.ShowCommandHelp(c, name)
			}
			if c.NArg() < 1 {
				return usage(c, "needs an image")
			}
			args := c.Args().Slice()
			o, err := parseRunConfig(c, args[0], args[1:])
			if err != nil {
				return err
			}
			if err := checkInputTTY(o.Interactive, o.Tty, o.Detach || create); err != nil {
				return err
			}
			return runContainer(c, o, create)
		},
	}
}

// resolveOrPull finds an image, pulling it when it is not there, as Docker does.
func resolveOrPull(images *image.Store, ref string) (*image.Image, error) {
	img, err := images.Resolve(ref)
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, image.ErrNotFound) {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", ref)
	ctx, stop := signalContext()
	defer stop()
	return images.Pull(ctx, ref, image.PullOptions{})
}

func runContainer(c *cli.Context, o *runconfig.Options, createOnly bool) error {
	container.WarmCodec()
	if !o.Detach {
		container.SurviveBrokenPipe()
	}
	st, err := openStores(c)
	if err != nil {
		return err
	}
	s := st.containers
	cid, err := createCIDFile(o.Host.ContainerIDFile)
	if err != nil {
		return err
	}
	defer cid.closeUnwritten()
	if createOnly {
		if o.Host.Cgroups == "split" {
			return errors.New("--cgroups=split places the container beside the berth that runs it: use it with run")
		}
		if o.Host.Cgroups != "" {
			// Checked now, not when it starts (the default is settled
			// then: a unit's start may be elsewhere).
			if _, err := runconfig.ResolveCgroups(o); err != nil {
				return err
			}
		}
	} else {
		split, err := runconfig.ResolveCgroups(o)
		if err != nil {
			return err
		}
		if split != "" {
			// Out of the unit's own cgroup before anything starts (the
			// monitor of -d too): the container's goes beside it.
			if err := cgroupfs.MoveSelf(split); err != nil {
				return err
			}
		}
	}
	id := container.NewID()
	var mon *container.Monitor
	var lean *container.LeanMonitor
	if o.Detach && !createOnly {
		// The lean monitor program: its start-up overlaps the work below,
		// then it forks the container's init for this process.
		if lean = s.PrestartLean(id); lean == nil {
			if mon, err = s.PrestartMonitor(id, globalArgs(c), false); err != nil {
				return err
			}
		}
		defer func() {
			if mon != nil {
				mon.Abort()
			}
			if lean != nil {
				lean.Abort()
			}
		}()
	}
	img, err := runImage(st.images, o)
	if err != nil {
		return err
	}
	runconfig.ApplyImage(o, img.Config.Config)
	if err := inheritVolumes(s, o); err != nil {
		return err
	}
	if err := runconfig.ApplyImageHealth(o, img.RawConfig); err != nil {
		return err
	}
	foreground := !o.Detach && !o.Tty && !(o.Interactive && o.DetachKeys != "")
	var proxy *sdnotify.Proxy
	if !createOnly && foreground && sdnotify.Wanted(o.Host.Sdnotify) {
		if proxy, err = listenNotify(); err != nil {
			return err
		}
		defer closeNotify(proxy)
		go proxy.Serve(os.Getpid())
	}
	spec, mounts, err := runconfig.Spec(id, o, st.volumes)
	if err != nil {
		removeVolumes(st.volumes, o.CreatedVolumes)
		return err
	}
	rec := &container.Record{ID: id, Name: o.Name, Image: img.ID.String(), ImageName: o.Config.Image,
		Config: o.Config, HostConfig: o.Host, NetworkingConfig: o.Networking, Mounts: mounts, Spec: spec,
		CreateCommand: createCommand()}
	rec.Config.Image = o.Config.Image
	if err := s.Create(rec); err != nil {
		removeVolumes(st.volumes, o.CreatedVolumes)
		return err
	}
	if err := cid.write(id); err != nil {
		_ = s.Remove(id, container.RemoveOpts{Force: true, Volumes: true})
		return err
	}
	if createOnly {
		fmt.Println(id)
		return nil
	}
	switch {
	case o.Detach && lean != nil && s.LeanFits(rec):
		l := lean
		lean = nil
		if err := runLean(c, l, rec); err != nil {
			if o.Remove {
				_ = s.Remove(id, container.RemoveOpts{Force: true, Volumes: true})
			}
			return startExit(err)
		}
		fmt.Println(id)
		return nil
	case o.Detach:
		if lean != nil {
			// Berth's own monitor starts this one (see LeanFits).
			lean.Abort()
			lean = nil
			if mon, err = s.PrestartMonitor(id, globalArgs(c), false); err != nil {
				if o.Remove {
					_ = s.Remove(id, container.RemoveOpts{Force: true, Volumes: true})
				}
				return err
			}
		}
		// The monitor is still starting up: mount the root meanwhile.
		// Should that fail, the monitor's start fails the same way and
		// says so.
		if err := s.Premount(rec); err != nil {
			logrus.Debugf("premount %.12s: %v", id, err)
		}
		m := mon
		mon = nil
		if err := goMonitor(m, rec.HostConfig.Sdnotify, nil); err != nil {
			if o.Remove {
				_ = s.Remove(id, container.RemoveOpts{Force: true, Volumes: true})
			}
			return startExit(err)
		}
		fmt.Println(id)
		return nil
	case o.Tty || o.Interactive && o.DetachKeys != "":
		sel := runStreams(&rec.Config)
		sel.In = sel.In && o.Interactive
		printIDUnattached(rec)
		return attachRun(c, s, rec, sel, o.DetachKeys, true)
	default:
		return runForeground(c, s, rec, o, proxy)
	}
}

// runForeground runs a container with berth as its parent and the
// caller's own stdio, for scripts and systemd units: nothing is copied,
// the exit status is the container's, signals are forwarded.
func runForeground(c *cli.Context, s *container.Store, rec *container.Record, o *runconfig.Options, proxy *sdnotify.Proxy) error {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	stdio := runtime.IO{Stdin: null, Stdout: os.Stdout, Stderr: os.Stderr}
	if o.Interactive {
		stdio.Stdin = os.Stdin
	}
	closeNull, err := attachStreams(&stdio, &o.Config)
	if err != nil {
		return err
	}
	defer closeNull()
	printIDUnattached(rec)
	preserve, env := listenFDs()
	// The signals forwarded to the container are caught here too: one
	// that comes while no container runs ends the restarts.
	sigs := runtime.CatchSignals()
	fo := container.ForegroundOpts{
		Start:     container.StartOpts{IO: stdio, PreserveFDs: preserve, Env: env},
		Wait:      func(p *runtime.Proc) (int, error) { return p.Forward(proxied(sigs, o.NoSigProxy), os.Stdin, os.Stdout) },
		Interrupt: sigs,
	}
	if proxy != nil {
		fo.Start.NotifySocket = proxy.Path()
	}
	if rec.HostConfig.Sdnotify == "conmon" {
		fo.Started = notifyReady
	}
	if rec.Config.Healthcheck.Enabled() {
		fo.HealthCheck = append(globalArgs(c), proto.HealthCommand, "--scheduled", rec.ID)
		if rec.HostConfig.Sdnotify == "healthy" {
			// READY=1 once, when the first check passed.
			var once sync.Once
			fo.Healthy = func() { once.Do(notifyReady) }
		}
	}
	code, err := s.RunForeground(rec.ID, fo)
	if err != nil {
		return startExit(err)
	}
	if sig, ok := cleanSignal(code); ok && runconfig.InUnit() {
		// A transparent wrapper dies of the signal its child died of:
		// systemd takes SIGTERM, SIGINT, SIGHUP ... of the main process
		// for a clean stop, but not an exit status 128+n.
		return &signalExit{sig: sig}
	}
	return exitCode(code)
}

// cleanSignal says whether exit status code is 128+n for a signal that
// ends a process without a core dump and that berth re-raises under a
// unit. (Core-dumping signals stay exit statuses: berth dumped no core.)
func cleanSignal(code int) (unix.Signal, bool) {
	switch sig := unix.Signal(code - 128); sig {
	case unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGKILL, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM:
		return sig, true
	}
	return 0, false
}

// listenFDs passes systemd's socket-activation fds to the container.
func listenFDs() (int, []string) {
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 || os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	env := []string{"LISTEN_FDS=" + strconv.Itoa(n), "LISTEN_PID=1"}
	if names := os.Getenv("LISTEN_FDNAMES"); names != "" {
		env = append(env, "LISTEN_FDNAMES="+names)
	}
	return n, env
}

// startDetached starts an existing container under a monitor of its own:
// the lean program from the start where it fits (see runLean).
// Its cgroup goes where a run's would go now (runconfig.StartCgroups):
// started from a systemd unit (berth generate systemd's Type=forking
// units), the container belongs to the unit, which tracks and stops it.
func startDetached(c *cli.Context, s *container.Store, r *container.Record) error {
	path, split, err := runconfig.StartCgroups(r.HostConfig, r.ID)
	if err != nil {
		return err
	}
	if path != "" && path != r.Spec.Linux.CgroupsPath {
		if _, err := s.Update(r.ID, func(x *container.Record) error {
			x.Spec.Linux.CgroupsPath = path
			if x.HostConfig.Cgroups == "split" {
				x.HostConfig.CgroupParent = split
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if split != "" {
		// Out of the unit's own cgroup before the monitor starts: the
		// container's goes beside it.
		if err := cgroupfs.MoveSelf(split); err != nil {
			return err
		}
	}
	if r, err = s.Load(r.ID); err != nil {
		return err
	}
	if lm := s.LeanFor(r); lm != nil {
		return runLean(c, lm, r)
	}
	m, err := s.PrestartMonitor(r.ID, globalArgs(c), false)
	if err != nil {
		return err
	}
	return goMonitor(m, r.HostConfig.Sdnotify, nil)
}

// goMonitor lets a detached container's monitor start it, and tells
// systemd, when berth runs in a notify unit, that the monitor is the
// unit's main process from now on: before the start with
// --sdnotify=container, so that the container's own READY=1, which the
// monitor relays, comes from the main process; with READY=1 once the
// container runs with --sdnotify=conmon. With --sdnotify=healthy READY=1
// comes later from the monitor, once a check passed.
func goMonitor(m *container.Monitor, sdmode string, connect func() error) error {
	if os.Getenv("NOTIFY_SOCKET") != "" && (sdmode == "container" || sdmode == "healthy") {
		if err := sdnotify.Send(fmt.Sprintf("MAINPID=%d\n", m.Pid())); err != nil {
			logrus.Warn(err)
		}
	}
	if err := m.Go(connect); err != nil {
		return err
	}
	if sdmode == "conmon" {
		if err := sdnotify.Send(fmt.Sprintf("READY=1\nMAINPID=%d\n", m.Pid())); err != nil {
			logrus.Warn(err)
		}
	}
	return nil
}

// runLean starts a detached container under its lean monitor and, with
// --sdnotify=conmon in a notify unit, tells systemd the monitor is the
// unit's main process and ready.
func runLean(c *cli.Context, lm *container.LeanMonitor, rec *container.Record) error {
	pid := lm.Pid()
	if err := lm.Run(rec, globalArgs(c)); err != nil {
		return err
	}
	if rec.HostConfig.Sdnotify == "conmon" {
		if err := sdnotify.Send(fmt.Sprintf("READY=1\nMAINPID=%d\n", pid)); err != nil {
			logrus.Warn(err)
		}
	}
	return nil
}

// notifyReady tells systemd the unit is ready (--sdnotify=conmon).
func notifyReady() {
	if err := sdnotify.Send(fmt.Sprintf("READY=1\nMAINPID=%d\n", os.Getpid())); err != nil {
		logrus.Warn(err)
	}
}

// listenNotify makes the relay socket of a foreground container
// (--sdnotify=container) in a directory of its own under /run: a socket's
// path must fit in 108 bytes, which a path under the state root may not.
func listenNotify() (*sdnotify.Proxy, error) {
	dir, err := os.MkdirTemp("/run", "berth-notify-")
	if err != nil {
		return nil, fmt.Errorf("--sdnotify=container: %w", err)
	}
	p, err := sdnotify.Listen(filepath.Join(dir, "notify.sock"))
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("--sdnotify=container: %w", err)
	}
	return p, nil
}

func closeNotify(p *sdnotify.Proxy) {
	if err := p.Close(); err != nil {
		logrus.Warnf("notify relay: %v", err)
	}
	_ = os.Remove(filepath.Dir(p.Path()))
}

// streams are the streams an attach relays; the others are discarded.
type streams struct{ In, Out, Err bool }

// runStreams are the streams run's -a names (all without -a). With a
// terminal the container's output is one stream, stdout, as in Docker.
func runStreams(c *container.Config) streams {
	return streams{In: c.AttachStdin, Out: c.AttachStdout, Err: c.AttachStderr && !c.Tty}
}

// printIDUnattached prints the container's ID when run attaches neither
// stdout nor stderr (-a stdin), as Docker does.
func printIDUnattached(rec *container.Record) {
	if !rec.Config.AttachStdout && !rec.Config.AttachStderr {
		fmt.Println(rec.ID)
	}
}

// attachRun starts a container under a monitor and attaches to it: run -it,
// start -a. With start, the monitor waits for the attach before starting.
func attachRun(c *cli.Context, s *container.Store, rec *container.Record, sel streams, detachKeys string, start bool) error {
	keys, err := detachkeys.Parse(detachKeys)
	if err != nil {
		return err
	}
	var client *container.AttachClient
	connect := func() error {
		conn, err := s.WaitSocket(rec.ID, 10*time.Second)
		if err != nil {
			return err
		}
		client = &container.AttachClient{Conn: conn, Stdout: io.Discard, Stderr: io.Discard, DetachKeys: keys}
		if sel.Out {
			client.Stdout = os.Stdout
		}
		if sel.Err {
			client.Stderr = os.Stderr
		}
		if sel.In {
			client.Stdin = os.Stdin
		}
		return nil
	}
	if start {
		if err := s.SpawnMonitor(rec.ID, globalArgs(c), true, connect); err != nil {
			if rec.HostConfig.AutoRemove {
				_ = s.Remove(rec.ID, container.RemoveOpts{Force: true, Volumes: true})
			}
			return startExit(err)
		}
	} else if err := connect(); err != nil {
		return err
	}
	return relay(s, rec, client)
}

// relay runs an attach client with the terminal in raw mode and returns
// the container's exit status (or 0 after a detach).
func relay(s *container.Store, rec *container.Record, client *container.AttachClient) error {
	if rec.Config.Tty && term.IsTerminal(int(os.Stdin.Fd())) {
		if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			defer term.Restore(int(os.Stdin.Fd()), old)
		}
		resize := func() {
			if w, h, err := term.GetSize(int(os.Stdin.Fd())); err == nil {
				_ = client.Resize(uint16(h), uint16(w))
			}
		}
		resize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize()
			}
		}()
	}
	if err := client.Run(); err != nil {
		return err
	}
	if client.Detached {
		return nil
	}
	if client.ExitCode >= 0 {
		// Return once the monitor has recorded it, as docker does, so the
		// next inspect agrees; --rm may have removed the record already.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			cur, err := s.Find(rec.ID)
			if err != nil || !cur.State.Running {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return exitCode(client.ExitCode)
	}
	code, err := s.Wait(rec.ID)
	if err != nil {
		if errors.Is(err, container.ErrNotFound) {
			return nil // removed by --rm after the exit
		}
		return err
	}
	return exitCode(code)
}

// eachContainer runs fn for each named container, printing the name on
// success as Docker does, and fails with the last error.
func eachContainer(c *cli.Context, what string, fn func(s *container.Store, ref string) error) error {
	return eachContainerQuiet(c, what, func(s *container.Store, ref string) error {
		if err := fn(s, ref); err != nil {
			return err
		}
		fmt.Println(ref)
		return nil
	})
}

// eachContainerQuiet is eachContainer for commands that print their own
// line per container (wait, start's already-running case).
func eachContainerQuiet(c *cli.Context, what string, fn func(s *container.Store, ref string) error) error {
	if c.NArg() < 1 {
		return usage(c, "needs %s", what)
	}
	s, err := openContainers(c)
	if err != nil {
		return err
	}
	var last error
	for _, ref := range c.Args().Slice() {
		if err := fn(s, ref); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %s\n", c.App.Name, oneLine(err.Error()))
			last = err
			continue
		}
	}
	if last != nil {
		return exitCode(1)
	}
	return nil
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name: "start", Usage: "start stopped containers", ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "attach", Aliases: []string{"a"}, Usage: "attach to the output and exit with the container's status"},
			&cli.BoolFlag{Name: "interactive", Aliases: []string{"i"}, Usage: "attach stdin"},
			&cli.StringFlag{Name: "detach-keys", Usage: "keys that detach (default ctrl-p,ctrl-q)"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("attach") {
				if c.NArg() != 1 {
					return errors.New("start: you cannot start and attach multiple containers at once")
				}
				s, r, err := findContainer(c, c.Args().First())
				if err != nil {
					return err
				}
				if r.State.Running {
					return fmt.Errorf("container %s is already running", r.Name)
				}
				return attachRun(c, s, r, streams{In: c.Bool("interactive"), Out: true, Err: true}, c.String("detach-keys"), true)
			}
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				r, err := s.Find(ref)
				if err != nil {
					return err
				}
				if r.State.Running {
					return nil
				}
				return startDetached(c, s, r)
			})
		},
	}
}

func stopFlags() []cli.Flag {
	return []cli.Flag{&cli.IntFlag{Name: "time", Aliases: []string{"t", "timeout"}, DefaultText: "the container's stop timeout, 10", Usage: "seconds to wait before killing (-1: wait as long as it takes)"},
		&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Usage: "signal to stop with instead of the container's stop signal"}}
}

func stopOpts(c *cli.Context) container.StopOpts {
	o := container.StopOpts{Signal: c.String("signal")}
	if c.IsSet("time") {
		t := c.Int("time")
		o.Timeout = &t
	}
	return o
}

func stopCommand() *cli.Command {
	return &cli.Command{
		Name: "stop", Usage: "stop running containers", ArgsUsage: "CONTAINER...", Flags: stopFlags(),
		Action: func(c *cli.Context) error {
			if sig := c.String("signal"); sig != "" {
				if _, err := runtime.ParseSignal(sig); err != nil {
					return usage(c, "--signal: %v", err)
				}
			}
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				return s.Stop(ref, stopOpts(c))
			})
		},
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name: "restart", Usage: "restart containers", ArgsUsage: "CONTAINER...", Flags: stopFlags(),
		Action: func(c *cli.Context) error {
			if sig := c.String("signal"); sig != "" {
				if _, err := runtime.ParseSignal(sig); err != nil {
					return usage(c, "--signal: %v", err)
				}
			}
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				return s.Restart(ref, stopOpts(c), globalArgs(c))
			})
		},
	}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name: "kill", Usage: "send a signal to running containers", ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{&cli.StringFlag{Name: "signal", Aliases: []string{"s"}, Value: "KILL", Usage: "signal to send"}},
		Action: func(c *cli.Context) error {
			sig, err := runtime.ParseSignal(c.String("signal"))
			if err != nil {
				return err
			}
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				_, err := s.Signal(ref, sig, sig == unix.SIGKILL || sig == unix.SIGTERM)
				return err
			})
		},
	}
}

func rmCommand(name string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: "remove containers", ArgsUsage: "CONTAINER...",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running container first"},
			&cli.BoolFlag{Name: "volumes", Aliases: []string{"v"}, Usage: "remove the container's anonymous volumes"},
		},
		Action: func(c *cli.Context) error {
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				return s.Remove(ref, container.RemoveOpts{Force: c.Bool("force"), Volumes: c.Bool("volumes")})
			})
		},
	}
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name: "wait", Usage: "wait for containers to stop and print their exit codes", ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return eachContainerQuiet(c, "a container", func(s *container.Store, ref string) error {
				code, err := s.Wait(ref)
				if err != nil {
					return err
				}
				fmt.Println(code)
				return nil
			})
		},
	}
}

func pauseCommand(pause bool) *cli.Command {
	name, usage := "pause", "freeze every process in containers"
	if !pause {
		name, usage = "unpause", "thaw paused containers"
	}
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "CONTAINER...",
		Action: func(c *cli.Context) error {
			return eachContainer(c, "a container", func(s *container.Store, ref string) error {
				r, err := s.Find(ref)
				if err != nil {
					return err
				}
				if pause {
					return s.Pause(r)
				}
				return s.Unpause(r)
			})
		},
	}
}

func renameCommand() *cli.Command {
	return &cli.Command{
		Name: "rename", Usage: "rename a container", ArgsUsage: "CONTAINER NEW_NAME",
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usage(c, "needs a container and a new name")
			}
			s, err := openContainers(c)
			if err != nil {
				return err
			}
			return s.Rename(c.Args().Get(0), c.Args().Get(1))
		},
	}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name: "attach", Usage: "attach to a running container's input and output", ArgsUsage: "CONTAINER",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "detach-keys", Usage: "keys that detach (default ctrl-p,ctrl-q)"},
			&cli.BoolFlag{Name: "no-stdin", Usage: "do not attach stdin"},
			&cli.BoolFlag{Name: "sig-proxy", Value: true, Usage: "pass the signals berth receives to the container (without a tty)"},
		},
		Action: func(c *cli.Context) error {
			s, r, err := runningContainer(c, 1, 1, "CONTAINER")
			if err != nil {
				return err
			}
			if c.Bool("sig-proxy") && !r.Config.Tty {
				stop := proxySignals(s, r.ID)
				defer stop()
			}
			return attachRun(c, s, r, streams{In: !c.Bool("no-stdin") && r.Config.OpenStdin, Out: true, Err: true}, c.String("detach-keys"), false)
		},
	}
}

// proxySignals passes the signals this berth receives on to the
// container's process, as docker attach does, until stop is called.
func proxySignals(s *container.Store, id string) (stop func()) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-ch:
				if _, err := s.Signal(id, sig.(unix.Signal), false); err != nil {
					logrus.Warnf("pass %v to %.12s: %v", sig, id, err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}

// findContainer opens the container store and finds ref in it.
func findContainer(c *cli.Context, ref string) (*container.Store, *container.Record, error) {
	s, err := openContainers(c)
	if err != nil {
		return nil, nil, err
	}
	r, err := s.Find(ref)
	if err != nil {
		return nil, nil, err
	}
	return s, r, nil
}

// oneContainer checks the argument count (min..max, max < 0 for any) and
// finds the container named by the first argument.
func oneContainer(c *cli.Context, min, max int, argsUsage string) (*container.Store, *container.Record, error) {
	if c.NArg() < min || max >= 0 && c.NArg() > max {
		return nil, nil, usage(c, "usage: berth %s %s", commandPath(c), argsUsage)
	}
	return findContainer(c, c.Args().First())
}

// runningContainer is oneContainer for commands that need it running.
func runningContainer(c *cli.Context, min, max int, argsUsage string) (*container.Store, *container.Record, error) {
	s, r, err := oneContainer(c, min, max, argsUsage)
	if err != nil {
		return nil, nil, err
	}
	if !r.State.Running {
		return nil, nil, fmt.Errorf("container %s is not running", r.Name)
	}
	return s, r, nil
}
