package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/internal/detachkeys"
	"github.com/berth-project/berth/runconfig"
)

// runConfigFlags are Docker's run/create flags, read by parseRunConfig.
//
// The command using them needs HideHelp (-h is --hostname, as in Docker)
// and the app's DisableSliceFlagSeparator (so -e A=1,2 stays one value),
// both of which berth has. urfave/cli stops at the first argument that is
// not a flag, so `run IMAGE cmd --foo` passes --foo to the container.
func runConfigFlags() []cli.Flag {
	str := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	list := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.StringSliceFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	flag := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.BoolFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	flags := []cli.Flag{
		flag("detach", []string{"d"}, "run in the background and print the container ID"),
		flag("interactive", []string{"i"}, "keep stdin open"),
		flag("tty", []string{"t"}, "allocate a pseudo-terminal"),
		flag("rm", nil, "remove the container when it exits"),
		str("name", nil, "container name"),
		str("detach-keys", nil, "keys that detach from -it (default ctrl-p,ctrl-q)"),
		list("env", []string{"e"}, "set an environment variable (KEY=VALUE, or KEY to pass berth's)"),
		list("env-file", nil, "read environment variables from a file"),
		str("workdir", []string{"w"}, "working directory inside the container"),
		str("user", []string{"u"}, "user[:group] to run as (name or id)"),
		list("group-add", nil, "additional group id"),
		str("entrypoint", nil, "override the image's ENTRYPOINT (\"\" clears it)"),
		str("hostname", []string{"h"}, "container host name"),
		str("domainname", nil, "container NIS domain name"),
		list("label", []string{"l"}, "set a label (KEY=VALUE)"),
		list("label-file", nil, "read labels from a file"),
		list("annotation", nil, "set an OCI annotation (KEY=VALUE)"),
		list("volume", []string{"v"}, "bind mount or volume: SOURCE:DEST[:ro|rw|PROPAGATION|nocopy], or DEST for an anonymous volume"),
		list("mount", nil, "type=bind|volume|tmpfs,source=,destination=[,readonly][,bind-propagation=][,volume-nocopy][,tmpfs-size=][,tmpfs-mode=]"),
		list("tmpfs", nil, "mount a tmpfs: DEST[:OPTIONS]"),
		flag("read-only", nil, "mount the root filesystem read-only"),
		str("memory", []string{"m"}, "memory limit (e.g. 64m)"),
		str("memory-swap", nil, "memory plus swap limit; -1 unlimited (default twice --memory)"),
		str("memory-reservation", nil, "memory soft limit"),
		flag("oom-kill-disable", nil, "disable the OOM killer (cgroup v1)"),
		&cli.IntFlag{Name: "oom-score-adj", Usage: "OOM score adjustment (-1000 to 1000)"},
		str("cpus", nil, "number of CPUs (e.g. 0.5)"),
		&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "relative CPU weight"},
		str("cpuset-cpus", nil, "CPUs to run on (0-3, 0,1)"),
		str("cpuset-mems", nil, "memory nodes to use (0-3, 0,1)"),
		&cli.Int64Flag{Name: "pids-limit", Usage: "process limit (0 or -1 unlimited)"},
		&cli.Uint64Flag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
		list("device-read-bps", nil, "read rate limit of a device (/dev/sda:1mb)"),
		list("device-write-bps", nil, "write rate limit of a device (/dev/sda:1mb)"),
		list("device-read-iops", nil, "read IO/s limit of a device (/dev/sda:100)"),
		list("device-write-iops", nil, "write IO/s limit of a device (/dev/sda:100)"),
		list("ulimit", nil, "resource limit: NAME=SOFT[:HARD]"),
		list("cap-add", nil, "add a capability (or ALL)"),
		list("cap-drop", nil, "drop a capability (or ALL)"),
		flag("privileged", nil, "all capabilities and devices, no seccomp filter or masked paths"),
		list("security-opt", nil, "no-new-privileges[=true|false] (default true), seccomp=unconfined|PROFILE.json, systempaths=unconfined"),
		list("sysctl", nil, "namespaced kernel parameter (KEY=VALUE)"),
		str("shm-size", nil, "size of /dev/shm (default 64m)"),
		flag("init", nil, "run berth's minimal init as pid 1 (reaps zombies, forwards signals)"),
		str("stop-signal", nil, "signal that stops the container (default SIGTERM)"),
		&cli.IntFlag{Name: "stop-timeout", DefaultText: "10", Usage: "seconds to wait for a stop before killing (-1: forever)"},
		str("restart", nil, "restart policy: no, always, unless-stopped, on-failure[:N]"),
		str("network", []string{"net"}, "network: bridge (default), none, host, container:NAME|ID or a network's name"),
		list("network-alias", []string{"net-alias"}, "a name of the container on a user network"),
		str("ip", nil, "IPv4 address on a user network"),
		str("ip6", nil, "IPv6 address on a user network"),
		str("mac-address", nil, "the container's Ethernet address"),
		list("dns", nil, "DNS server"),
		list("dns-search", nil, "DNS search domain"),
		list("dns-option", nil, "resolv.conf option"),
		list("add-host", nil, "add NAME:ADDRESS (or NAME:host-gateway) to /etc/hosts"),
		list("expose", nil, "expose a port or range (PORT[-END][/PROTO])"),
		flag("publish-all", []string{"P"}, "publish every exposed port on a free host port"),
		str("pid", nil, "pid namespace: private (default) or host"),
		str("ipc", nil, "ipc namespace: private (default) or host"),
		str("uts", nil, "uts namespace: private (default) or host"),
		list("publish", []string{"p"}, "publish a port: [IP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp]"),
		str("pid-file", []string{"pidfile"}, "write the container's pid to this file (removed with the container)"),
		str("cgroup-parent", nil, "cgroup under which the container's cgroup is made"),
		str("sdnotify", nil, "container: relay the container's notify messages; conmon: berth sends READY=1; healthy: READY=1 once the healthcheck passed; ignore"),
		str("health-cmd", nil, "command that checks the container's health (run with /bin/sh -c)"),
		str("health-interval", nil, "time between health checks (default 30s)"),
		str("health-timeout", nil, "time a health check may take (default 30s)"),
		&cli.IntFlag{Name: "health-retries", DefaultText: "3", Usage: "failures in a row that make the container unhealthy"},
		str("health-start-period", nil, "time after the start in which failed checks do not count (default 0s)"),
		str("health-start-interval", nil, "time between checks in the start period (default 5s)"),
		flag("no-healthcheck", nil, "disable the image's HEALTHCHECK"),
		str("health-on-failure", nil, "what to do when the container turns unhealthy: none, kill, restart, stop"),
		str("log-driver", nil, "where the output is logged: json-file (default), journald or none"),
		list("log-opt", nil, "log driver option: max-size=10m, max-file=3, compress=true (json-file); tag=, labels=, env=, labels-regex=, env-regex="),
		str("cgroups", nil, "enabled: the container's cgroup is /berth/<id>; split: beside berth under its own cgroup (the default in a systemd unit); disabled: no cgroup, the container stays in the caller's (no limits)"),
	}
	return append(flags, runFlags19()...)
}

// parseRunConfig reads run/create's flags (runConfigFlags) into options;
// image and cmd are the positional arguments.
func parseRunConfig(c *cli.Context, image string, cmd []string) (*runconfig.Options, error) {
	f := runconfig.Flags{
		Detach: c.Bool("detach"), Interactive: c.Bool("interactive"), Tty: c.Bool("tty"), Remove: c.Bool("rm"),
		Name: c.String("name"), DetachKeys: c.String("detach-keys"),
		Env: c.StringSlice("env"), EnvFile: c.StringSlice("env-file"),
		Workdir: c.String("workdir"), User: c.String("user"), GroupAdd: c.StringSlice("group-add"),
		Hostname: c.String("hostname"), Domainname: c.String("domainname"),
		Label: c.StringSlice("label"), LabelFile: c.StringSlice("label-file"), Annotation: c.StringSlice("annotation"),
		Volume: c.StringSlice("volume"), Mount: c.StringSlice("mount"), Tmpfs: c.StringSlice("tmpfs"),
		ReadOnly: c.Bool("read-only"),
		Memory:   c.String("memory"), MemorySwap: c.String("memory-swap"), MemoryReservation: c.String("memory-reservation"),
		ShmSize: c.String("shm-size"), OOMKillDisable: c.Bool("oom-kill-disable"),
		CPUs: c.String("cpus"), CPUShares: c.Int64("cpu-shares"),
		CpusetCPUs: c.String("cpuset-cpus"), CpusetMems: c.String("cpuset-mems"),
		BlkioWeight:   c.Uint64("blkio-weight"),
		DeviceReadBps: c.StringSlice("device-read-bps"), DeviceWriteBps: c.StringSlice("device-write-bps"),
		DeviceReadIOps: c.StringSlice("device-read-iops"), DeviceWriteIOps: c.StringSlice("device-write-iops"),
		Ulimit: c.StringSlice("ulimit"),
		CapAdd: c.StringSlice("cap-add"), CapDrop: c.StringSlice("cap-drop"), Privileged: c.Bool("privileged"),
		SecurityOpt: c.StringSlice("security-opt"), Sysctl: c.StringSlice("sysctl"), Init: c.Bool("init"),
		StopSignal: c.String("stop-signal"), Restart: c.String("restart"),
		Pid: c.String("pid"), Ipc: c.String("ipc"), UTS: c.String("uts"),
		NetFlags: runconfig.NetFlags{
			Network: c.String("network"), Publish: c.StringSlice("publish"), PublishAll: c.Bool("publish-all"),
			Expose: c.StringSlice("expose"), IP: c.String("ip"), IP6: c.String("ip6"), MacAddress: c.String("mac-address"),
			NetworkAlias: c.StringSlice("network-alias"), DNS: c.StringSlice("dns"), DNSSearch: c.StringSlice("dns-search"),
			DNSOption: c.StringSlice("dns-option"), AddHost: c.StringSlice("add-host"),
		},
		PidFile: c.String("pid-file"), CgroupParent: c.String("cgroup-parent"), Sdnotify: c.String("sdnotify"),
		Cgroups:   c.String("cgroups"),
		LogDriver: c.String("log-driver"), LogOpt: c.StringSlice("log-opt"),
	}
	if !c.IsSet("network") {
		// BERTH_DEFAULT_NETWORK changes the network of containers that
		// name none (Docker's daemon has --bridge=none for that); the
		// test suites that do not test networking set it to none, so
		// they leave no bridge or firewall table on the machine.
		f.Network = os.Getenv("BERTH_DEFAULT_NETWORK")
	}
	f.Health = healthFlags(c)
	f.Entrypoint, f.OOMScoreAdj = given(c, "entrypoint", c.String), given(c, "oom-score-adj", c.Int)
	f.PidsLimit, f.StopTimeout = given(c, "pids-limit", c.Int64), given(c, "stop-timeout", c.Int)
	if _, err := detachkeys.Parse(f.DetachKeys); err != nil {
		return nil, err
	}
	readRunFlags19(c, &f)
	return runconfig.FromFlags(image, cmd, f, os.LookupEnv)
}

// cachedNames wraps flags so that Names() returns a slice computed once.
// On every parse urfave/cli v2 looks each flag up by name among all the
// others (runFlagActions, IsSet, lookupFlag), and Names() runs a regexp
// per name each time: for run's hundred-odd flags that was 2-2.5 ms of
// every `berth run`. The wrappers embed the flag, so every other method
// and interface of it stays as it was. The names are taken from the flag
// as written (see plainNames), since run's flags are built for each of
// the four commands that take them, on every start of the CLI.
func cachedNames(flags []cli.Flag) []cli.Flag {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			out[i] = &namedString{f, plainNames(f, f.Name, f.Aliases)}
		case *cli.StringSliceFlag:
			out[i] = &namedStringSlice{f, plainNames(f, f.Name, f.Aliases)}
		case *cli.BoolFlag:
			out[i] = &namedBool{f, plainNames(f, f.Name, f.Aliases)}
		case *cli.IntFlag:
			out[i] = &namedInt{f, plainNames(f, f.Name, f.Aliases)}
		case *cli.Int64Flag:
			out[i] = &namedInt64{f, plainNames(f, f.Name, f.Aliases)}
		case *cli.Uint64Flag:
			out[i] = &namedUint64{f, plainNames(f, f.Name, f.Aliases)}
		default:
			out[i] = f
		}
	}
	return out
}

// plainNames is f.Names() without its regexp: urfave/cli strips what
// follows a comma or a space in a name (the v1 form "name, n"), and a
// name without either is its own; for one with either, it asks f.
func plainNames(f cli.Flag, name string, aliases []string) []string {
	names := make([]string, 0, 1+len(aliases))
	for _, n := range append([]string{name}, aliases...) {
		if strings.ContainsAny(n, ", \t\n\r\v\f") {
			return f.Names()
		}
		names = append(names, n)
	}
	return names
}

type namedString struct {
	*cli.StringFlag
	names []string
}

func (f *namedString) Names() []string { return f.names }

type namedStringSlice struct {
	*cli.StringSliceFlag
	names []string
}

func (f *namedStringSlice) Names() []string { return f.names }

type namedBool struct {
	*cli.BoolFlag
	names []string
}

func (f *namedBool) Names() []string { return f.names }

type namedInt struct {
	*cli.IntFlag
	names []string
}

func (f *namedInt) Names() []string { return f.names }

type namedInt64 struct {
	*cli.Int64Flag
	names []string
}

func (f *namedInt64) Names() []string { return f.names }

type namedUint64 struct {
	*cli.Uint64Flag
	names []string
}

func (f *namedUint64) Names() []string { return f.names }

// healthFlags reads the --health-* flags: only those given are set.
func healthFlags(c *cli.Context) runconfig.HealthFlags {
	h := runconfig.HealthFlags{None: c.Bool("no-healthcheck"), OnFailure: c.String("health-on-failure")}
	opt := func(name string) *string { return given(c, name, c.String) }
	h.Cmd, h.Interval, h.Timeout = opt("health-cmd"), opt("health-interval"), opt("health-timeout")
	h.StartPeriod, h.StartInterval = opt("health-start-period"), opt("health-start-interval")
	h.Retries = given(c, "health-retries", c.Int)
	return h
}
