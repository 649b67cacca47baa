package runopts

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/container"
)

var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
	"as": "RLIMIT_AS",
}

// RlimitType maps --ulimit's name to the spec's.
func RlimitType(name string) (string, bool) {
	t, ok := rlimitNames[name]
	return t, ok
}

func resources(s *specs.Spec, o *Options) error {
	h := &o.Host
	r := s.Linux.Resources
	if h.Memory > 0 || h.MemoryReservation > 0 || h.MemorySwap != 0 || o.OOMKillDisable {
		r.Memory = &specs.LinuxMemory{}
		if h.Memory > 0 {
			r.Memory.Limit = ptr(h.Memory)
		}
		if h.MemoryReservation > 0 {
			r.Memory.Reservation = ptr(h.MemoryReservation)
		}
		switch {
		case h.MemorySwap == -1:
			r.Memory.Swap = ptr(int64(-1))
		case h.MemorySwap > 0:
			if h.Memory <= 0 {
				return fmt.Errorf("--memory-swap needs --memory")
			}
			if h.MemorySwap < h.Memory {
				return fmt.Errorf("--memory-swap (%d) must not be smaller than --memory (%d)", h.MemorySwap, h.Memory)
			}
			r.Memory.Swap = ptr(h.MemorySwap)
		}
		if o.OOMKillDisable {
			r.Memory.DisableOOMKiller = ptr(true)
		}
	}
	if h.NanoCpus > 0 || h.CpuShares > 0 || h.CpusetCpus != "" || o.CpusetMems != "" {
		r.CPU = &specs.LinuxCPU{Cpus: h.CpusetCpus, Mems: o.CpusetMems}
		if h.NanoCpus > 0 {
			period := uint64(100000)
			r.CPU.Period = &period
			r.CPU.Quota = ptr(h.NanoCpus * int64(period) / 1e9)
		}
		if h.CpuShares > 0 {
			r.CPU.Shares = ptr(uint64(h.CpuShares))
		}
	}
	if h.PidsLimit != nil && *h.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(*h.PidsLimit)}
	}
	if o.BlkioWeight > 0 || len(h.BlkioDeviceReadBps)+len(h.BlkioDeviceWriteBps)+len(h.BlkioDeviceReadIOps)+len(h.BlkioDeviceWriteIOps) > 0 {
		r.BlockIO = &specs.LinuxBlockIO{}
		if o.BlkioWeight > 0 {
			r.BlockIO.Weight = ptr(o.BlkioWeight)
		}
		var err error
		if r.BlockIO.ThrottleReadBpsDevice, err = throttles(h.BlkioDeviceReadBps, "--device-read-bps"); err != nil {
			return err
		}
		if r.BlockIO.ThrottleWriteBpsDevice, err = throttles(h.BlkioDeviceWriteBps, "--device-write-bps"); err != nil {
			return err
		}
		if r.BlockIO.ThrottleReadIOPSDevice, err = throttles(h.BlkioDeviceReadIOps, "--device-read-iops"); err != nil {
			return err
		}
		if r.BlockIO.ThrottleWriteIOPSDevice, err = throttles(h.BlkioDeviceWriteIOps, "--device-write-iops"); err != nil {
			return err
		}
	}
	for _, u := range h.Ulimits {
		t, ok := rlimitNames[u.Name]
		if !ok {
			return fmt.Errorf("--ulimit: unknown limit %q", u.Name)
		}
		rl := specs.POSIXRlimit{Type: t, Soft: uint64(u.Soft), Hard: uint64(u.Hard)}
		replaced := false
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == t {
				s.Process.Rlimits[i], replaced = rl, true
			}
		}
		if !replaced {
			s.Process.Rlimits = append(s.Process.Rlimits, rl)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// throttles resolves the devices of --device-read-bps and friends.
func throttles(list []container.ThrottleDevice, flag string) ([]specs.LinuxThrottleDevice, error) {
	var out []specs.LinuxThrottleDevice
	for _, t := range list {
		var st unix.Stat_t
		if err := unix.Stat(t.Path, &st); err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, t.Path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return nil, fmt.Errorf("%s %s: not a block device", flag, t.Path)
		}
		d := specs.LinuxThrottleDevice{Rate: t.Rate}
		d.Major, d.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		out = append(out, d)
	}
	return out, nil
}
