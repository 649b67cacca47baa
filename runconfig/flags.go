package runconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/rlimit"
	"github.com/berth-project/berth/internal/units"
	"github.com/berth-project/berth/runtime"
)

// Flags are run/create's command-line values, as the CLI read them. The
// pointer fields are nil when the flag was not given.
type Flags struct {
	Detach, Interactive, Tty, Remove bool
	Name, DetachKeys                 string

	Env, EnvFile         []string
	Workdir, User        string
	GroupAdd             []string
	Entrypoint           *string
	Hostname, Domainname string
	Label, LabelFile     []string
	Annotation           []string

	Volume, Mount, Tmpfs []string
	ReadOnly             bool

	Memory, MemorySwap, MemoryReservation, ShmSize string
	OOMKillDisable                                 bool
	OOMScoreAdj                                    *int
	CPUs                                           string
	CPUShares                                      int64
	CpusetCPUs, CpusetMems                         string
	PidsLimit                                      *int64
	BlkioWeight                                    uint64
	DeviceReadBps, DeviceWriteBps                  []string
	DeviceReadIOps, DeviceWriteIOps                []string
	Ulimit                                         []string

	CapAdd, CapDrop []string
	Privileged      bool
	SecurityOpt     []string
	Sysctl          []string
	Init            bool

	StopSignal  string
	StopTimeout *int
	Restart     string

	Pid, Ipc, UTS string
	NetFlags

	PidFile, CgroupParent, Sdnotify string
	Cgroups                         string

	// Run flags of issue 19.
	Device, DeviceCgroupRule []string
	CIDFile                  string
	CPUPeriod, CPUQuota      int64
	CPURtRuntime             int64
	MemorySwappiness         *int64
	BlkioWeightDevice        []string
	Pull, Platform           string
	VolumesFrom              []string
	Cgroupns, Userns         string
	// UIDMap, GIDMap are podman's --uidmap/--gidmap.
	UIDMap, GIDMap []string
	SigProxy       *bool
	Attach         []string
	StorageOpt     []string
	Health         HealthFlags
	LogDriver      string
	LogOpt         []string
}

// FromFlags turns the command line into Options: image is the image
// reference, cmd the command after it. lookupEnv reads berth's own
// environment (os.LookupEnv) for -e KEY and --env-file lines without a
// value. It checks the syntax of every value; Spec checks the rest.
func FromFlags(image string, cmd []string, f Flags, lookupEnv func(string) (string, bool)) (*Options, error) {
	if image == "" {
		return nil, errors.New("no image given")
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	o := &Options{
		Detach: f.Detach, Interactive: f.Interactive, Tty: f.Tty, Remove: f.Remove,
		Name: f.Name, DetachKeys: f.DetachKeys,
		Volumes: clean(f.Volume), Mounts: clean(f.Mount),
		GroupAdd: clean(f.GroupAdd), OOMKillDisable: f.OOMKillDisable, CpusetMems: f.CpusetMems,
		PidMode: f.Pid, IpcMode: f.Ipc, UTSMode: f.UTS,
	}
	if o.Name != "" {
		if err := container.ValidateName(o.Name); err != nil {
			return nil, err
		}
	}
	cfg := &o.Config
	cfg.Image = image
	if len(cmd) > 0 {
		cfg.Cmd = append([]string{}, cmd...)
	}
	cfg.Tty, cfg.OpenStdin = f.Tty, f.Interactive
	cfg.AttachStdin = f.Interactive && !f.Detach
	cfg.AttachStdout, cfg.AttachStderr = !f.Detach, !f.Detach
	cfg.Hostname, cfg.Domainname = f.Hostname, f.Domainname
	cfg.User = f.User
	if f.Workdir != "" {
		if !path.IsAbs(f.Workdir) {
			return nil, fmt.Errorf("-w: the working directory %q is invalid: it needs to be an absolute path", f.Workdir)
		}
		cfg.WorkingDir = f.Workdir
	}
	if f.Entrypoint != nil {
		cfg.Entrypoint = []string{}
		if *f.Entrypoint != "" {
			cfg.Entrypoint = []string{*f.Entrypoint}
		}
	}
	for _, file := range f.EnvFile {
		env, err := ParseEnvFile(file, lookupEnv)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		cfg.Env = append(cfg.Env, env...)
	}
	env, err := ParseEnv(f.Env, lookupEnv)
	if err != nil {
		return nil, err
	}
	cfg.Env = append(cfg.Env, env...)

	var labels []string
	for _, file := range f.LabelFile {
		l, err := ParseLabelFile(file)
		if err != nil {
			return nil, fmt.Errorf("--label-file: %w", err)
		}
		labels = append(labels, l...)
	}
	if cfg.Labels, err = ParseLabels(append(labels, f.Label...)); err != nil {
		return nil, err
	}
	if o.Annotations, err = ParseKV("--annotation", f.Annotation); err != nil {
		return nil, err
	}
	if o.Sysctls, err = ParseKV("--sysctl", f.Sysctl); err != nil {
		return nil, err
	}
	if f.StopSignal != "" {
		if _, err := runtime.ParseSignal(f.StopSignal); err != nil {
			return nil, fmt.Errorf("--stop-signal: %w", err)
		}
		cfg.StopSignal = f.StopSignal
	}
	if f.StopTimeout != nil {
		t := *f.StopTimeout
		if t < -1 {
			return nil, fmt.Errorf("--stop-timeout: %d is invalid (-1 waits forever)", t)
		}
		cfg.StopTimeout = &t
	}
	for _, v := range o.Volumes {
		// -v /path is an anonymous volume, which Docker lists in
		// Config.Volumes.
		if !strings.Contains(v, ":") && path.IsAbs(v) {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[path.Clean(v)] = struct{}{}
		}
	}

	h := &o.Host
	h.AutoRemove, h.Privileged, h.ReadonlyRootfs, h.Init = f.Remove, f.Privileged, f.ReadOnly, f.Init
	h.CapAdd, h.CapDrop, h.SecurityOpt = clean(f.CapAdd), clean(f.CapDrop), clean(f.SecurityOpt)
	h.CgroupParent, h.PidFile, h.Sdnotify = f.CgroupParent, f.PidFile, f.Sdnotify
	h.Cgroups = f.Cgroups
	if err := applyNetFlags(o, f.NetFlags); err != nil {
		return nil, err
	}
	if h.RestartPolicy, err = ParseRestart(f.Restart); err != nil {
		return nil, err
	}
	if f.Remove && h.RestartPolicy.Name != "no" {
		return nil, errors.New("conflicting options: --restart and --rm")
	}
	if h.Memory, err = sizeFlag("--memory", f.Memory, false); err != nil {
		return nil, err
	}
	if h.MemorySwap, err = sizeFlag("--memory-swap", f.MemorySwap, true); err != nil {
		return nil, err
	}
	if h.MemoryReservation, err = sizeFlag("--memory-reservation", f.MemoryReservation, false); err != nil {
		return nil, err
	}
	if o.ShmSize, err = sizeFlag("--shm-size", f.ShmSize, false); err != nil {
		return nil, err
	}
	if f.ShmSize != "" && o.ShmSize == 0 {
		return nil, fmt.Errorf("--shm-size: invalid size %q", f.ShmSize)
	}
	if f.CPUs != "" {
		if h.NanoCpus, err = ParseCPUs(f.CPUs); err != nil {
			return nil, err
		}
	}
	if f.CPUShares < 0 {
		return nil, fmt.Errorf("--cpu-shares: %d is negative", f.CPUShares)
	}
	h.CpuShares, h.CpusetCpus = f.CPUShares, f.CpusetCPUs
	if f.PidsLimit != nil {
		n := *f.PidsLimit
		h.PidsLimit = &n
	}
	if f.OOMScoreAdj != nil {
		n := *f.OOMScoreAdj
		if n < -1000 || n > 1000 {
			return nil, fmt.Errorf("--oom-score-adj: %d is not between -1000 and 1000", n)
		}
		o.OOMScoreAdj = &n
	}
	if f.BlkioWeight != 0 && (f.BlkioWeight < 10 || f.BlkioWeight > 1000) {
		return nil, fmt.Errorf("--blkio-weight: %d is not between 10 and 1000", f.BlkioWeight)
	}
	o.BlkioWeight = uint16(f.BlkioWeight)
	for _, t := range []struct {
		flag  string
		vals  []string
		bytes bool
		out   *[]container.ThrottleDevice
	}{
		{"--device-read-bps", f.DeviceReadBps, true, &h.BlkioDeviceReadBps},
		{"--device-write-bps", f.DeviceWriteBps, true, &h.BlkioDeviceWriteBps},
		{"--device-read-iops", f.DeviceReadIOps, false, &h.BlkioDeviceReadIOps},
		{"--device-write-iops", f.DeviceWriteIOps, false, &h.BlkioDeviceWriteIOps},
	} {
		for _, v := range t.vals {
			d, err := ParseThrottle(t.flag, v, t.bytes)
			if err != nil {
				return nil, err
			}
			*t.out = append(*t.out, d)
		}
	}
	for _, v := range f.Ulimit {
		u, err := ParseUlimit(v)
		if err != nil {
			return nil, err
		}
		for i, prev := range h.Ulimits {
			if prev.Name == u.Name {
				h.Ulimits = append(h.Ulimits[:i], h.Ulimits[i+1:]...)
				break
			}
		}
		h.Ulimits = append(h.Ulimits, u)
	}
	if h.Tmpfs, err = ParseTmpfs(f.Tmpfs); err != nil {
		return nil, err
	}
	if err := applyIssue19Flags(o, f); err != nil {
		return nil, err
	}
	if err := applyHealth(o, f.Health); err != nil {
		return nil, err
	}
	if h.LogConfig, err = ParseLogConfig(f.LogDriver, f.LogOpt); err != nil {
		return nil, err
	}
	return o, nil
}

// ParseLogConfig reads --log-driver (json-file when empty) and its
// --log-opt KEY=VALUE values.
func ParseLogConfig(driver string, opts []string) (container.LogConfig, error) {
	lc := container.DefaultLogConfig()
	if driver != "" {
		lc.Type = driver
	}
	for _, kv := range opts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return lc, fmt.Errorf("--log-opt %q: want KEY=VALUE", kv)
		}
		lc.Config[k] = v
	}
	if err := container.CheckLogConfig(lc); err != nil {
		return lc, err
	}
	return lc, nil
}

// clean copies a list, nil when empty.
func clean(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return append([]string{}, l...)
}

func sizeFlag(flag, v string, allowUnlimited bool) (int64, error) {
	if v == "" {
		return 0, nil
	}
	parse := units.ParseSize
	if allowUnlimited {
		parse = units.ParseLimit
	}
	n, err := parse(v)
	if err != nil {
		return 0, fmt.Errorf("%s: invalid size %q", flag, v)
	}
	return n, nil
}

// ParseCPUs parses --cpus (a decimal number of CPUs) into nano CPUs.
func ParseCPUs(v string) (int64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
		return 0, fmt.Errorf("--cpus: invalid number %q", v)
	}
	n := int64(math.Round(f * 1e9))
	if n < 1e7 {
		return 0, fmt.Errorf("--cpus: %q is below the minimum of 0.01", v)
	}
	return n, nil
}

// checkEnvKey refuses what Docker refuses in a variable name.
func checkEnvKey(k, kv string) error {
	if k == "" {
		return fmt.Errorf("invalid environment variable %q", kv)
	}
	if strings.IndexFunc(k, unicode.IsSpace) >= 0 {
		return fmt.Errorf("invalid environment variable %q: the name contains whitespace", kv)
	}
	if strings.ContainsRune(kv, 0) {
		return fmt.Errorf("invalid environment variable %q: NUL byte", kv)
	}
	return nil
}

// ParseEnv parses -e values: KEY=VALUE as is; KEY alone takes the value
// from berth's environment (lookupEnv) and is dropped when unset there.
func ParseEnv(vals []string, lookupEnv func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, v := range vals {
		k, _, hasVal := strings.Cut(v, "=")
		if err := checkEnvKey(k, v); err != nil {
			return nil, err
		}
		if hasVal {
			out = append(out, v)
		} else if val, ok := lookupEnv(k); ok {
			out = append(out, k+"="+val)
		}
	}
	return out, nil
}

// readLines reads a Docker env or label file: UTF-8 (a BOM is skipped),
// blank lines and lines starting with # skipped, leading whitespace
// trimmed.
func readLines(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8", file, n)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// ParseEnvFile reads an --env-file: KEY=VALUE lines (the value as is, no
// quotes removed), KEY lines taking berth's value (dropped when unset),
// comments and blank lines skipped.
func ParseEnvFile(file string, lookupEnv func(string) (string, bool)) ([]string, error) {
	lines, err := readLines(file)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lines {
		k, _, hasVal := strings.Cut(l, "=")
		if !hasVal {
			k = strings.TrimRightFunc(k, unicode.IsSpace)
		}
		if err := checkEnvKey(k, l); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if hasVal {
			out = append(out, l)
		} else if val, ok := lookupEnv(k); ok {
			out = append(out, k+"="+val)
		}
	}
	return out, nil
}

// ParseLabelFile reads a --label-file: KEY=VALUE or KEY lines.
func ParseLabelFile(file string) ([]string, error) {
	lines, err := readLines(file)
	if err != nil {
		return nil, err
	}
	for i, l := range lines {
		lines[i] = strings.TrimRightFunc(l, unicode.IsSpace)
	}
	return lines, nil
}

// ParseLabels turns KEY=VALUE (or KEY, an empty value) into a map; the
// last of one key wins.
func ParseLabels(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range vals {
		k, v, _ := strings.Cut(kv, "=")
		if strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--label %q: empty key", kv)
		}
		m[k] = v
	}
	return m, nil
}

// ParseKV turns KEY=VALUE values of flag (--annotation, --sysctl) into a
// map; the "=" is required.
func ParseKV(flag string, vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// ParseRestart parses --restart: no, always, unless-stopped,
// on-failure[:N].
func ParseRestart(s string) (container.RestartPolicy, error) {
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
				return p, fmt.Errorf("--restart %q: invalid maximum retry count %q", s, count)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("--restart %q: want no, always, unless-stopped or on-failure[:N]", s)
	}
	if hasCount {
		return p, fmt.Errorf("--restart %q: only on-failure takes a maximum retry count", s)
	}
	return p, nil
}

// ParseUlimit parses --ulimit NAME=SOFT[:HARD]; -1 (or "unlimited") is
// no limit.
func ParseUlimit(v string) (container.Ulimit, error) {
	name, val, ok := strings.Cut(v, "=")
	if !ok || val == "" {
		return container.Ulimit{}, fmt.Errorf("--ulimit %q: want NAME=SOFT[:HARD]", v)
	}
	if _, ok := rlimit.SpecType(name); !ok {
		return container.Ulimit{}, fmt.Errorf("--ulimit %q: unknown limit %q", v, name)
	}
	num := func(s string) (int64, error) {
		if s == "unlimited" || s == "-1" {
			return -1, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("--ulimit %q: invalid value %q", v, s)
		}
		return n, nil
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := num(softS)
	if err != nil {
		return container.Ulimit{}, err
	}
	hard := soft
	if hasHard {
		if hard, err = num(hardS); err != nil {
			return container.Ulimit{}, err
		}
	}
	if rlimitValue(soft) > rlimitValue(hard) {
		return container.Ulimit{}, fmt.Errorf("--ulimit %q: the soft limit must not be above the hard limit", v)
	}
	return container.Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// ParseThrottle parses --device-read-bps and friends: DEVICE:RATE, a
// size (bytes) for the bps flags, a plain number for the iops ones. The
// device must be a block device.
func ParseThrottle(flag, v string, bytes bool) (container.ThrottleDevice, error) {
	i := strings.LastIndex(v, ":")
	if i <= 0 || i == len(v)-1 {
		return container.ThrottleDevice{}, fmt.Errorf("%s %q: want DEVICE:RATE", flag, v)
	}
	dev, rate := v[:i], v[i+1:]
	if !strings.HasPrefix(dev, "/dev/") {
		return container.ThrottleDevice{}, fmt.Errorf("%s %q: %s is not a path under /dev", flag, v, dev)
	}
	var n int64
	var err error
	if bytes {
		n, err = units.ParseSize(rate)
	} else {
		var u uint64
		u, err = strconv.ParseUint(rate, 10, 63)
		n = int64(u)
	}
	if err != nil || n <= 0 {
		return container.ThrottleDevice{}, fmt.Errorf("%s %q: invalid rate %q", flag, v, rate)
	}
	if _, _, err := statBlockDevice(dev); err != nil {
		return container.ThrottleDevice{}, fmt.Errorf("%s %q: %s: %v", flag, v, dev, err)
	}
	return container.ThrottleDevice{Path: dev, Rate: uint64(n)}, nil
}

// ParseTmpfs parses --tmpfs DST[:OPTIONS] values into Host.Tmpfs.
func ParseTmpfs(vals []string) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, v := range vals {
		dst, opts, _ := strings.Cut(v, ":")
		r, err := tmpfsReq(dst, opts)
		if err != nil {
			return nil, err
		}
		if _, dup := m[r.mp.Destination]; dup {
			return nil, fmt.Errorf("duplicate mount point: %s", r.mp.Destination)
		}
		m[r.mp.Destination] = opts
	}
	return m, nil
}
