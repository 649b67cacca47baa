package runconfig

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/berth-project/berth/cgroupfs"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/internal/units"
)

// applyIssue19Flags reads the run flags added by issue 19 (devices,
// cgroup, pull, id files) into o.
func applyIssue19Flags(o *Options, f Flags) error {
	h := &o.Host
	for _, v := range f.Device {
		d, err := ParseDevice(v)
		if err != nil {
			return err
		}
		h.Devices = append(h.Devices, d)
	}
	for _, v := range f.DeviceCgroupRule {
		if _, err := ParseDeviceCgroupRule(v); err != nil {
			return err
		}
		h.DeviceCgroupRules = append(h.DeviceCgroupRules, v)
	}
	h.ContainerIDFile = f.CIDFile
	h.CpuPeriod, h.CpuQuota, h.CpuRealtimeRuntime = f.CPUPeriod, f.CPUQuota, f.CPURtRuntime
	if f.MemorySwappiness != nil {
		n := *f.MemorySwappiness
		h.MemorySwappiness = &n
	}
	for _, v := range f.BlkioWeightDevice {
		d, err := ParseWeightDevice(v)
		if err != nil {
			return err
		}
		h.BlkioWeightDevice = append(h.BlkioWeightDevice, d)
	}
	for _, v := range f.VolumesFrom {
		ref, mode, _ := strings.Cut(v, ":")
		if ref == "" || (mode != "" && mode != "ro" && mode != "rw") {
			return fmt.Errorf("--volumes-from %q: want CONTAINER[:ro|rw]", v)
		}
		h.VolumesFrom = append(h.VolumesFrom, v)
	}
	switch f.Cgroupns {
	case "", "private", "host":
		h.CgroupnsMode = f.Cgroupns
		if h.CgroupnsMode == "" {
			h.CgroupnsMode = "private"
		}
	default:
		return fmt.Errorf("--cgroupns %q: want host or private", f.Cgroupns)
	}
	if err := applyUserns(o, f); err != nil {
		return err
	}
	// With -t nothing is proxied anyway, as in Docker: the terminal's
	// keys reach the container as input.
	if f.SigProxy != nil && !*f.SigProxy && !f.Tty {
		o.NoSigProxy = true
	}
	if len(f.Attach) > 0 {
		if f.Detach {
			return errors.New("conflicting options: -a and -d")
		}
		c := &o.Config
		c.AttachStdin, c.AttachStdout, c.AttachStderr = false, false, false
		for _, a := range f.Attach {
			switch strings.ToLower(a) {
			case "stdin":
				c.AttachStdin = true
			case "stdout":
				c.AttachStdout = true
			case "stderr":
				c.AttachStderr = true
			default:
				return fmt.Errorf("-a %q: valid streams are stdin, stdout and stderr", a)
			}
		}
	}
	for _, v := range f.StorageOpt {
		k, val, _ := strings.Cut(v, "=")
		if k != "size" {
			return fmt.Errorf("--storage-opt %q: only size=SIZE is supported", v)
		}
		n, err := units.ParseSize(val)
		if err != nil || n <= 0 {
			return fmt.Errorf("--storage-opt %q: invalid size %q", v, val)
		}
		h.StorageOpt = map[string]string{"size": strconv.FormatInt(n, 10)}
	}
	switch f.Pull {
	case "", "missing", "always", "never":
		o.Pull = f.Pull
	default:
		return fmt.Errorf("--pull %q: want always, missing or never", f.Pull)
	}
	if f.Platform != "" {
		if err := checkPlatform(f.Platform); err != nil {
			return err
		}
		o.Platform = f.Platform
	}
	return checkResources19(h)
}

// checkPlatform accepts only the host's platform: berth runs no emulator.
func checkPlatform(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("--platform %q: want os/arch[/variant]", p)
	}
	if parts[0] != goruntime.GOOS || parts[1] != goruntime.GOARCH {
		return fmt.Errorf("--platform %s: berth runs only this host's platform, %s/%s (it has no emulator)", p, goruntime.GOOS, goruntime.GOARCH)
	}
	if len(parts) == 3 && goruntime.GOARCH == "amd64" && parts[2] != "v1" {
		// amd64's variants above v1 need CPU features berth does not check.
		return fmt.Errorf("--platform %s: berth runs only this host's platform, %s/%s", p, goruntime.GOOS, goruntime.GOARCH)
	}
	return nil
}

// ParseWeightDevice parses --blkio-weight-device DEVICE:WEIGHT.
func ParseWeightDevice(v string) (container.WeightDevice, error) {
	i := strings.LastIndex(v, ":")
	if i <= 0 {
		return container.WeightDevice{}, fmt.Errorf("--blkio-weight-device %q: want DEVICE:WEIGHT", v)
	}
	dev, w := v[:i], v[i+1:]
	n, err := strconv.ParseUint(w, 10, 16)
	if err != nil || n < 10 || n > 1000 {
		return container.WeightDevice{}, fmt.Errorf("--blkio-weight-device %q: the weight must be between 10 and 1000", v)
	}
	if _, _, err := statBlockDevice(dev); err != nil {
		return container.WeightDevice{}, fmt.Errorf("--blkio-weight-device %q: %s: %v", v, dev, err)
	}
	return container.WeightDevice{Path: dev, Weight: uint16(n)}, nil
}

// checkResources19 checks the limits of issue 19's flags as Docker does.
func checkResources19(h *container.HostConfig) error {
	if h.NanoCpus > 0 && h.CpuPeriod != 0 {
		return errors.New("conflicting options: --cpus and --cpu-period cannot both be set")
	}
	if h.NanoCpus > 0 && h.CpuQuota != 0 {
		return errors.New("conflicting options: --cpus and --cpu-quota cannot both be set")
	}
	if h.CpuPeriod != 0 && (h.CpuPeriod < 1000 || h.CpuPeriod > 1000000) {
		return fmt.Errorf("--cpu-period: %d is not between 1000 and 1000000 (microseconds)", h.CpuPeriod)
	}
	if h.CpuQuota != 0 && h.CpuQuota != -1 && h.CpuQuota < 1000 {
		return fmt.Errorf("--cpu-quota: %d is below the minimum of 1000 (microseconds; -1 is unlimited)", h.CpuQuota)
	}
	if h.CpuRealtimeRuntime < 0 || h.CpuRealtimeRuntime > rtPeriod {
		return fmt.Errorf("--cpu-rt-runtime: %d is not between 0 and the real-time period %d", h.CpuRealtimeRuntime, rtPeriod)
	}
	if p := h.MemorySwappiness; p != nil && (*p < -1 || *p > 100) {
		return fmt.Errorf("--memory-swappiness: %d is not between 0 and 100 (-1: the kernel's)", *p)
	}
	return nil
}

// rtPeriod is the kernel's default real-time period (cpu.rt_period_us).
const rtPeriod = 1000000

// resources19 puts issue 19's limits into the spec: the CFS period and
// quota, the real-time runtime (only where the kernel has real-time group
// scheduling, which cgroup v2 lacks: refused there as Docker does),
// swappiness (cgroup v1 only: ignored with a warning on v2, as Docker)
// and per-device IO weights.
func resources19(s *specs.Spec, o *Options) error {
	h := &o.Host
	if err := checkResources19(h); err != nil {
		return err
	}
	r := s.Linux.Resources
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	if h.CpuPeriod > 0 {
		cpu().Period = ptr(uint64(h.CpuPeriod))
	}
	if h.CpuQuota != 0 {
		cpu().Quota = ptr(h.CpuQuota)
	}
	if h.CpuRealtimeRuntime > 0 {
		if !cgroupfs.RealtimeSupported() {
			return errors.New("--cpu-rt-runtime: your kernel does not support CPU real-time scheduler (no real-time group scheduling, or cgroup v2)")
		}
		cpu().RealtimeRuntime = ptr(h.CpuRealtimeRuntime)
	}
	if h.MemorySwappiness != nil && *h.MemorySwappiness >= 0 {
		if cgroupfs.DetectMode() == cgroupfs.Unified {
			logrus.Warn("--memory-swappiness: cgroup v2 has no swappiness; discarded")
			h.MemorySwappiness = nil
		} else {
			if r.Memory == nil {
				r.Memory = &specs.LinuxMemory{}
			}
			r.Memory.Swappiness = ptr(uint64(*h.MemorySwappiness))
		}
	}
	for _, wd := range h.BlkioWeightDevice {
		major, minor, err := statBlockDevice(wd.Path)
		if err != nil {
			return fmt.Errorf("--blkio-weight-device %s: %v", wd.Path, err)
		}
		if wd.Weight < 10 || wd.Weight > 1000 {
			return fmt.Errorf("--blkio-weight-device %s: the weight %d is not between 10 and 1000", wd.Path, wd.Weight)
		}
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		d := specs.LinuxWeightDevice{Weight: ptr(wd.Weight)}
		d.Major, d.Minor = major, minor
		r.BlockIO.WeightDevice = append(r.BlockIO.WeightDevice, d)
	}
	return nil
}

// applyUserns reads --userns (host, or maps) and podman's --uidmap and
// --gidmap: the container gets a user namespace of its own, and its
// root filesystem is mounted for it (container's mountMapped).
func applyUserns(o *Options, f Flags) error {
	switch {
	case f.Userns == "" || f.Userns == "host":
		o.Host.UsernsMode = f.Userns
	case strings.Contains(f.Userns, ":") && len(f.UIDMap) == 0 && len(f.GIDMap) == 0:
		// --userns=CONTAINER_ID:HOST_ID:AMOUNT[,...]: both maps.
		f.UIDMap = strings.Split(f.Userns, ",")
	default:
		return fmt.Errorf("--userns %q: want host, or id maps (--userns CONTAINER_ID:HOST_ID:AMOUNT, or --uidmap and --gidmap); keep-id and auto are not supported", f.Userns)
	}
	if len(f.UIDMap) == 0 && len(f.GIDMap) == 0 {
		return nil
	}
	parse := func(flag string, vals []string) ([]specs.LinuxIDMapping, error) {
		var out []specs.LinuxIDMapping
		for _, v := range vals {
			p := strings.Split(v, ":")
			var n [3]uint64
			ok := len(p) == 3
			for i := 0; ok && i < 3; i++ {
				var err error
				n[i], err = strconv.ParseUint(p[i], 10, 32)
				ok = err == nil
			}
			if !ok || n[2] == 0 {
				return nil, fmt.Errorf("--%s %q: want CONTAINER_ID:HOST_ID:AMOUNT", flag, v)
			}
			out = append(out, specs.LinuxIDMapping{ContainerID: uint32(n[0]), HostID: uint32(n[1]), Size: uint32(n[2])})
		}
		return out, nil
	}
	var err error
	if o.UIDMappings, err = parse("uidmap", f.UIDMap); err != nil {
		return err
	}
	if o.GIDMappings, err = parse("gidmap", f.GIDMap); err != nil {
		return err
	}
	// As podman: one map given serves for both.
	if o.UIDMappings == nil {
		o.UIDMappings = o.GIDMappings
	}
	if o.GIDMappings == nil {
		o.GIDMappings = o.UIDMappings
	}
	return nil
}

// namespaces19 applies --cgroupns.
func namespaces19(s *specs.Spec, o *Options) {
	if o.Host.CgroupnsMode == "host" {
		dropNamespace(s, specs.CgroupNamespace)
	}
	if len(o.UIDMappings) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = o.UIDMappings, o.GIDMappings
	}
}
