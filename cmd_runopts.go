package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/runopts"
	"github.com/berth-project/berth/runtime"
)

// runFlags are Docker's run/create flags.
func runFlags() []cli.Flag {
	str := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	list := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.StringSliceFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	flag := func(name string, aliases []string, usage string) cli.Flag {
		return &cli.BoolFlag{Name: name, Aliases: aliases, Usage: usage}
	}
	return []cli.Flag{
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
		list("group-add", nil, "additional group ids"),
		&cli.StringFlag{Name: "entrypoint", Usage: "override the image's ENTRYPOINT (\"\" clears it)"},
		str("hostname", []string{"h"}, "container hostname"),
		str("domainname", nil, "container NIS domain name"),
		list("label", []string{"l"}, "set a label (key=value)"),
		list("label-file", nil, "read labels from a file"),
		list("annotation", nil, "set an OCI annotation (key=value)"),
		list("volume", []string{"v"}, "bind mount or volume: SRC:DST[:ro|rw|propagation], or DST for an anonymous volume"),
		list("mount", nil, "type=bind|volume|tmpfs,src=,dst=[,readonly]..."),
		list("tmpfs", nil, "mount a tmpfs: DST[:OPTIONS]"),
		flag("read-only", nil, "mount the root filesystem read-only"),
		str("memory", []string{"m"}, "memory limit (e.g. 64m)"),
		str("memory-swap", nil, "memory plus swap limit; -1 unlimited"),
		str("memory-reservation", nil, "memory soft limit"),
		flag("oom-kill-disable", nil, "disable the OOM killer (cgroup v1)"),
		&cli.IntFlag{Name: "oom-score-adj", Usage: "OOM score adjustment"},
		str("cpus", nil, "number of CPUs (e.g. 0.5)"),
		&cli.Int64Flag{Name: "cpu-shares", Aliases: []string{"c"}, Usage: "relative CPU weight"},
		str("cpuset-cpus", nil, "CPUs to run on (0-3, 0,1)"),
		str("cpuset-mems", nil, "memory nodes to use"),
		&cli.Int64Flag{Name: "pids-limit", Usage: "process limit (-1 unlimited)"},
		&cli.UintFlag{Name: "blkio-weight", Usage: "block IO weight (10-1000)"},
		list("device-read-bps", nil, "read rate limit of a device (/dev/sda:1mb)"),
		list("device-write-bps", nil, "write rate limit of a device"),
		list("device-read-iops", nil, "read IO/s limit of a device (/dev/sda:100)"),
		list("device-write-iops", nil, "write IO/s limit of a device"),
		list("ulimit", nil, "resource limit: name=soft[:hard]"),
		list("cap-add", nil, "add a capability (or ALL)"),
		list("cap-drop", nil, "drop a capability (or ALL)"),
		flag("privileged", nil, "all capabilities, all devices, no seccomp or masked paths"),
		list("security-opt", nil, "no-new-privileges[:true|false], seccomp=unconfined|PROFILE.json"),
		list("sysctl", nil, "namespaced kernel parameter (key=value)"),
		str("shm-size", nil, "size of /dev/shm (default 64m)"),
		flag("init", nil, "run berth's minimal init as pid 1 (reaps zombies, forwards signals)"),
		str("stop-signal", nil, "signal that stops the container (default SIGTERM)"),
		&cli.IntFlag{Name: "stop-timeout", Value: -1, Usage: "seconds to wait for a stop before killing (default 10)"},
		str("restart", nil, "restart policy: no, on-failure[:N], always, unless-stopped"),
		str("network", []string{"net"}, "network: none (default) or host"),
		str("pid", nil, "pid namespace: private (default) or host"),
		str("ipc", nil, "ipc namespace: private (default) or host"),
		str("uts", nil, "uts namespace: private (default) or host"),
		list("publish", []string{"p"}, "publish a port (needs bridge networking, not available yet)"),
		str("pid-file", nil, "write the container's pid to this file"),
		str("cgroup-parent", nil, "cgroup under which the container's cgroup is made"),
		str("sdnotify", nil, "container: pass NOTIFY_SOCKET in; conmon: berth sends READY=1; ignore"),
	}
}

// readKV reads KEY=VALUE lines (env and label files).
func readKV(path string, fromEnv bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") && fromEnv {
			if v, ok := os.LookupEnv(line); ok {
				out = append(out, line+"="+v)
			}
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

func kvMap(list []string, flag string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func sizeFlag(c *cli.Context, name string) (int64, error) {
	v := c.String(name)
	if v == "" {
		return 0, nil
	}
	n, err := parseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("--%s: %w", name, err)
	}
	return n, nil
}

func throttleFlag(c *cli.Context, name string, bytes bool) ([]container.ThrottleDevice, error) {
	var out []container.ThrottleDevice
	for _, v := range c.StringSlice(name) {
		dev, rate, ok := strings.Cut(v, ":")
		if !ok || dev == "" {
			return nil, fmt.Errorf("--%s %q: want DEVICE:RATE", name, v)
		}
		var n int64
		var err error
		if bytes {
			n, err = parseBytes(rate)
		} else {
			n, err = strconv.ParseInt(rate, 10, 64)
		}
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("--%s %q: invalid rate", name, v)
		}
		out = append(out, container.ThrottleDevice{Path: dev, Rate: uint64(n)})
	}
	return out, nil
}

// parseRestart parses --restart.
func parseRestart(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("--restart %q: invalid retry count", s)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("--restart %q: want no, on-failure[:N], always or unless-stopped", s)
	}
	if hasCount {
		return p, fmt.Errorf("--restart %q: only on-failure takes a retry count", s)
	}
	return p, nil
}

// parseRunOptions reads run/create's flags.
func parseRunOptions(c *cli.Context, image string, cmd []string) (*runopts.Options, error) {
	o := &runopts.Options{
		Detach: c.Bool("detach"), Interactive: c.Bool("interactive"), Tty: c.Bool("tty"),
		Remove: c.Bool("rm"), Name: c.String("name"), DetachKeys: c.String("detach-keys"),
		Volumes: c.StringSlice("volume"), Mounts: c.StringSlice("mount"), Publish: c.StringSlice("publish"),
		GroupAdd: c.StringSlice("group-add"), CpusetMems: c.String("cpuset-mems"),
		OOMKillDisable: c.Bool("oom-kill-disable"), BlkioWeight: uint16(c.Uint("blkio-weight")),
		PidMode: c.String("pid"), IpcMode: c.String("ipc"), UTSMode: c.String("uts"),
	}
	if o.Name != "" {
		if err := container.ValidateName(o.Name); err != nil {
			return nil, err
		}
	}
	if o.Detach && o.Remove && c.String("restart") != "" && c.String("restart") != "no" {
		return nil, fmt.Errorf("conflicting options: --restart and --rm")
	}
	if _, err := parseDetachKeys(o.DetachKeys); err != nil {
		return nil, err
	}
	cfg := &o.Config
	cfg.Image = image
	cfg.Cmd = cmd
	cfg.Tty, cfg.OpenStdin = o.Tty, o.Interactive
	cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = o.Interactive && !o.Detach, !o.Detach, !o.Detach
	cfg.Hostname, cfg.Domainname = c.String("hostname"), c.String("domainname")
	cfg.User, cfg.WorkingDir = c.String("user"), c.String("workdir")
	if c.IsSet("entrypoint") {
		ep := []string{}
		if e := c.String("entrypoint"); e != "" {
			ep = []string{e}
		}
		cfg.Entrypoint = ep
	}
	for _, f := range c.StringSlice("env-file") {
		kv, err := readKV(f, true)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		cfg.Env = append(cfg.Env, kv...)
	}
	cfg.Env = append(cfg.Env, envList(c.StringSlice("env"))...)
	labels := []string{}
	for _, f := range c.StringSlice("label-file") {
		kv, err := readKV(f, false)
		if err != nil {
			return nil, fmt.Errorf("--label-file: %w", err)
		}
		labels = append(labels, kv...)
	}
	var err error
	if cfg.Labels, err = kvMap(append(labels, c.StringSlice("label")...), "--label"); err != nil {
		return nil, err
	}
	if o.Annotations, err = kvMap(c.StringSlice("annotation"), "--annotation"); err != nil {
		return nil, err
	}
	if o.Sysctls, err = kvMap(c.StringSlice("sysctl"), "--sysctl"); err != nil {
		return nil, err
	}
	if s := c.String("stop-signal"); s != "" {
		if _, err := runtime.ParseSignal(s); err != nil {
			return nil, fmt.Errorf("--stop-signal: %w", err)
		}
		cfg.StopSignal = s
	}
	if t := c.Int("stop-timeout"); t >= 0 {
		cfg.StopTimeout = &t
	}
	h := &o.Host
	h.AutoRemove, h.Privileged, h.ReadonlyRootfs, h.Init = o.Remove, c.Bool("privileged"), c.Bool("read-only"), c.Bool("init")
	h.CapAdd, h.CapDrop, h.SecurityOpt = c.StringSlice("cap-add"), c.StringSlice("cap-drop"), c.StringSlice("security-opt")
	h.CgroupParent, h.PidFile, h.Sdnotify = c.String("cgroup-parent"), c.String("pid-file"), c.String("sdnotify")
	h.NetworkMode = c.String("network")
	if h.RestartPolicy, err = parseRestart(c.String("restart")); err != nil {
		return nil, err
	}
	if h.Memory, err = sizeFlag(c, "memory"); err != nil {
		return nil, err
	}
	if h.MemorySwap, err = sizeFlag(c, "memory-swap"); err != nil {
		return nil, err
	}
	if h.MemoryReservation, err = sizeFlag(c, "memory-reservation"); err != nil {
		return nil, err
	}
	if o.ShmSize, err = sizeFlag(c, "shm-size"); err != nil {
		return nil, err
	}
	if v := c.String("cpus"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return nil, fmt.Errorf("--cpus: invalid number %q", v)
		}
		h.NanoCpus = int64(f * 1e9)
	}
	h.CpuShares, h.CpusetCpus = c.Int64("cpu-shares"), c.String("cpuset-cpus")
	if c.IsSet("pids-limit") {
		n := c.Int64("pids-limit")
		h.PidsLimit = &n
	}
	if c.IsSet("oom-score-adj") {
		n := c.Int("oom-score-adj")
		if n < -1000 || n > 1000 {
			return nil, fmt.Errorf("--oom-score-adj %d: must be between -1000 and 1000", n)
		}
		o.OOMScoreAdj = &n
	}
	if h.BlkioDeviceReadBps, err = throttleFlag(c, "device-read-bps", true); err != nil {
		return nil, err
	}
	if h.BlkioDeviceWriteBps, err = throttleFlag(c, "device-write-bps", true); err != nil {
		return nil, err
	}
	if h.BlkioDeviceReadIOps, err = throttleFlag(c, "device-read-iops", false); err != nil {
		return nil, err
	}
	if h.BlkioDeviceWriteIOps, err = throttleFlag(c, "device-write-iops", false); err != nil {
		return nil, err
	}
	for _, u := range c.StringSlice("ulimit") {
		name, val, ok := strings.Cut(u, "=")
		if !ok {
			return nil, fmt.Errorf("--ulimit %q: want name=soft[:hard]", u)
		}
		if _, ok := runopts.RlimitType(name); !ok {
			return nil, fmt.Errorf("--ulimit %q: unknown limit %q", u, name)
		}
		softS, hardS, hasHard := strings.Cut(val, ":")
		soft, err := strconv.ParseInt(softS, 10, 64)
		hard := soft
		if err == nil && hasHard {
			hard, err = strconv.ParseInt(hardS, 10, 64)
		}
		if err != nil || soft > hard && hard >= 0 {
			return nil, fmt.Errorf("--ulimit %q: invalid values", u)
		}
		h.Ulimits = append(h.Ulimits, container.Ulimit{Name: name, Soft: soft, Hard: hard})
	}
	tmpfs := map[string]string{}
	for _, t := range c.StringSlice("tmpfs") {
		dst, opts, _ := strings.Cut(t, ":")
		tmpfs[dst] = opts
	}
	if len(tmpfs) > 0 {
		h.Tmpfs = tmpfs
	}
	return o, nil
}
